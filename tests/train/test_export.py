"""Export: the torch integer simulation must equal emu bit for bit, and the bundle must keep
the float model's accuracy on learnable data."""

import numpy as np
import pytest
import torch

from ternpynq.bundle import from_bytes, to_bytes
from ternpynq.runtime.network import Network
from ternpynq.train import intsim
from ternpynq.train.config import StageConfig, TernaryPEConfig, TrainConfig
from ternpynq.train.evaluate import evaluate_bundle
from ternpynq.train.export import (
    calibration_batches,
    export_checkpoint,
    export_model,
    quantize_multi_trit,
)
from ternpynq.train.pipeline import Run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fashion_dir):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        data=str(fashion_dir),
        batch_size=32,
        augment=False,
        pretrain=StageConfig(3, 0.05),
        compress=StageConfig(2, 0.02),
        finetune=StageConfig(3, 0.01),
    )
    result = Run(cfg, TernaryPEConfig(method="wpc", target_density=0.7), out).run()
    return out, result


def test_intsim_equals_emu_on_data_and_random_codes(trained, fashion_dir):
    out, _ = trained
    bundle = from_bytes(to_bytes(export_checkpoint(str(out / "model.pt"), data=str(fashion_dir))))
    rng = np.random.default_rng(0)
    codes = rng.integers(-128, 128, (16, 1, 28, 28)).astype(np.int8)
    net = Network(bundle)
    emu_all = net.run_all(codes)
    sim_all = intsim.run_all(bundle, torch.from_numpy(codes))
    for name, value in emu_all.items():  # every intermediate tensor, not only the output
        assert np.array_equal(value, sim_all[name].numpy()), name


def test_bundle_keeps_the_accuracy_and_stats(trained, fashion_dir, tmp_path):
    out, result = trained
    bundle = export_checkpoint(str(out / "model.pt"), data=str(fashion_dir))
    path = tmp_path / "m.tpq"
    path.write_bytes(to_bytes(bundle))
    res = evaluate_bundle(str(path), "fashion-mnist", str(fashion_dir), "emu")
    assert res["images"] == 200
    assert res["top1"] >= result["test_top1"] - 3.0
    assert res["top1"] > 50  # the synthetic classes are easy
    assert (
        abs(bundle.stats.get("density", from_bytes(to_bytes(bundle)).stats["density"]) - 0.7) < 0.05
    )
    first, fc = bundle.layer("conv1"), bundle.layer("fc")
    assert first.trits == 5 and fc.trits == 5 and bundle.layer("layer1.0.conv1").trits == 1
    assert bundle.layer("layer2.0.conv2").residual == "layer2.0.downsample"
    assert bundle.labels[0] == "t-shirt"


def test_multi_trit_quantizer_respects_the_accumulator_bound():
    w = torch.ones(2, 2000) * 0.5  # 2000 * 121 * 255 is far beyond 2^24
    q = quantize_multi_trit(w, 255)
    assert np.abs(q.weight).sum(1).max() * 255 < 2**24
    assert np.abs(q.weight).max() <= 121


def test_export_model_from_a_fresh_float_model(fashion_dir):
    from ternpynq.train.data import fashion_mnist
    from ternpynq.train.models import resnet20

    torch.manual_seed(0)
    model = resnet20()
    data = fashion_mnist(str(fashion_dir), "train", torch.device("cpu"))
    bundle = export_model(
        model, data.spec, [str(i) for i in range(10)], 16, calibration_batches(data, 2, 64)
    )
    bundle = from_bytes(to_bytes(bundle))  # validates
    x = next(data.batches(8))[0]
    codes = np.clip(np.rint(x.numpy() / bundle.input.scale), -128, 127).astype(np.int8)
    assert np.array_equal(
        Network(bundle).run(codes), intsim.run(bundle, torch.from_numpy(codes)).numpy()
    )


def test_optional_variants_train_and_export_exactly(fashion_dir, tmp_path):
    """Subgradient solver, rank tau, per-channel alpha and a trainable threshold, end to end."""
    cfg = TrainConfig(data=str(fashion_dir), batch_size=128, augment=False,
                      pretrain=StageConfig(1, 0.05), compress=StageConfig(1, 0.02),
                      finetune=StageConfig(1, 0.01))  # fmt: skip
    pe = TernaryPEConfig(method="wpc", solver="subgradient", tau_mode="rank", r=0.3, lam=0.05,
                         per_channel_alpha=True, trainable_threshold=True)  # fmt: skip
    Run(cfg, pe, tmp_path).run()
    bundle = from_bytes(to_bytes(export_checkpoint(str(tmp_path / "model.pt"))))
    assert bundle.extra["pe"]["tau_mode"] == "rank"
    codes = np.random.default_rng(1).integers(-128, 128, (8, 1, 28, 28)).astype(np.int8)
    assert np.array_equal(
        Network(bundle).run(codes), intsim.run(bundle, torch.from_numpy(codes)).numpy()
    )
