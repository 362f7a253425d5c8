"""The shipped ImageNet bundle: loads without torch, classifies real photos, exact on backends."""

from __future__ import annotations

import numpy as np
import pytest

import ternpynq
from ternpynq.bundle import load
from ternpynq.bundle.validate import accumulator_peak, code_ranges
from ternpynq.runtime import backends, reference
from ternpynq.runtime.classifier import Classifier
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess

CATS = {"tiger cat", "Egyptian cat", "tabby"}


@pytest.fixture(scope="module")
def bundle():
    return load(ternpynq.resolve_model("imagenet"))


@pytest.fixture(scope="module")
def codes(bundle):
    return np.stack(
        [preprocess(p, bundle.input) for p in sorted(ternpynq.PHOTOS_DIR.glob("*.jpg"))]
    )


def test_shipped_bundle_is_what_it_says(bundle):
    assert ternpynq.IMAGENET_MODEL.stat().st_size <= 8_000_000
    assert bundle.model == "efficientnet-lite0" and bundle.version == 2
    assert len(bundle.labels) == 1000 and len(set(bundle.labels)) == 1000
    assert bundle.labels[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat",
                                      "Egyptian cat"]  # fmt: skip
    ops = {layer.op.value for layer in bundle.layers}
    assert ops == {"conv", "dwconv", "gap", "linear"}
    assert {layer.trits for layer in bundle.layers if layer.weight is not None} == {5}


def test_classifies_the_shipped_photos(bundle):
    photos = sorted(ternpynq.PHOTOS_DIR.glob("*.jpg"))
    assert [p.name for p in photos] == ["chelsea.jpg", "coffee.jpg"]
    with Classifier(bundle, "emu") as clf:
        cat, coffee = clf.classify(photos, top=3)
    assert {p.label for p in cat} == CATS
    assert coffee[0].label == "espresso"


def test_every_layer_stays_in_int32(bundle):
    # at T = 5 the real weights keep every bound below 2^24 (the largest, the FC, near
    # 0.72 * 2^24); the format allows up to 2^31, through the wider exact path
    ranges = code_ranges(bundle)
    peaks = [accumulator_peak(layer.weight, ranges[layer.input])
             for layer in bundle.layers if layer.weight is not None]  # fmt: skip
    assert max(peaks) < 2**31


def test_onnx_equals_emu_on_the_photos(bundle, codes):
    pytest.importorskip("onnxruntime", reason="needs the onnx extra")
    onnx = backends.create("onnx", bundle)
    assert np.array_equal(onnx.run(codes), Network(bundle).run(codes))


@pytest.mark.slow
def test_every_layer_equals_the_integer_reference(bundle, codes):
    ref = Network(bundle, lambda layer, x, r: reference.run_layer(layer, x, r, bundle.g))
    fast, slow = Network(bundle).run_all(codes[:1]), ref.run_all(codes[:1])
    for name in fast:
        assert np.array_equal(fast[name], slow[name]), name


def test_model_names_resolve_everywhere(capsys):
    from ternpynq.cli import main

    assert main(["classify", "--model", "imagenet", str(ternpynq.PHOTOS_DIR / "coffee.jpg")]) == 0
    assert "espresso" in capsys.readouterr().out
    assert main(["inspect", "fashion-mnist", "--json"]) == 0
    assert ternpynq.resolve_model("fashion-mnist") == ternpynq.DEFAULT_MODEL
