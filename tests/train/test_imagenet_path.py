"""The ImageNet path on a synthetic ImageFolder: ResNet-18 (torchvision names, --init),
WordNet ids -> readable names, export, emu and `ternpynq evaluate`."""

import json

import numpy as np
import pytest
import torch

from ternpynq.bundle import load
from ternpynq.cli import main
from ternpynq.runtime.network import Network
from ternpynq.train import intsim
from ternpynq.train.imagefolder import make_synthetic_imagefolder, readable_labels
from ternpynq.train.models import resnet18


def test_wordnet_ids_become_imagenet_names():
    assert readable_labels(["n01440764", "n01443537"]) == ["tench", "goldfish"]
    assert readable_labels(["cats", "dogs"]) == ["cats", "dogs"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_synthetic_imagefolder(
        tmp_path_factory.mktemp("imgs"), classes=4, per_class=8, val_per_class=3
    )


def test_resnet18_from_torchvision_init_through_export_and_emu(folder, tmp_path, capsys):
    init = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), init)  # a 1000-class torchvision-layout checkpoint
    run = tmp_path / "run"
    assert (
        main(
            [
                "compress",
                "--arch",
                "resnet18",
                "--dataset",
                "imagefolder",
                "--data",
                str(folder),
                "--image-size",
                "32",
                "--g",
                "64",
                "--epochs",
                "1,1,1",
                "--batch-size",
                "16",
                "--init",
                str(init),
                "--target-density",
                "0.8",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    model = tmp_path / "r18.tpq"
    assert main(["export", str(run / "model.pt"), "--out", str(model), "--calib-batches", "2"]) == 0
    bundle = load(model)
    assert bundle.g == 64 and bundle.input.size == (32, 32) and bundle.input.channels == 3
    assert bundle.labels[0] == "tench" and len(bundle.labels) == 4
    assert [layer.name for layer in bundle.layers][:2] == ["conv1", "maxpool"]
    assert bundle.layer("conv1").kernel == 7 and bundle.layer("conv1").trits == 5
    codes = np.random.default_rng(0).integers(-128, 128, (2, 3, 32, 32)).astype(np.int8)
    assert np.array_equal(
        Network(bundle).run(codes), intsim.run(bundle, torch.from_numpy(codes)).numpy()
    )
    capsys.readouterr()
    assert (
        main(["evaluate", str(model), "--dataset", "imagefolder", "--data", str(folder), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 12 and result["backend"] == "emu"
    assert 0.0 <= result["top1"] <= 100.0 and result["top5"] == 100.0  # 4 classes: top-5 is all


def test_init_with_wrong_keys_is_refused(tmp_path, folder, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"encoder.weight": torch.zeros(1)}, bad)
    code = main(
        [
            "compress",
            "--arch",
            "resnet18",
            "--dataset",
            "imagefolder",
            "--data",
            str(folder),
            "--image-size",
            "32",
            "--init",
            str(bad),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 1
    assert "keys not in the model" in capsys.readouterr().err
