"""The shipped default model: valid, compressed as promised, and right on its sample images."""

from pathlib import Path

import numpy as np

import ternpynq
from ternpynq.bundle import load
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess

SAMPLES = Path(ternpynq.DEFAULT_MODEL).parent / "samples"


def test_default_bundle_is_pe_wise_compressed():
    bundle = load(ternpynq.DEFAULT_MODEL)
    assert bundle.g == 16 and bundle.labels[0] == "t-shirt" and len(bundle.labels) == 10
    assert bundle.stats["cr"] >= 21.0
    assert bundle.extra["pe"]["method"] == "wpc"


def test_sample_images_are_one_per_class_and_classified_correctly():
    bundle = load(ternpynq.DEFAULT_MODEL)
    files = sorted(SAMPLES.glob("*.png"))
    assert [f.stem for f in files] == [f"{k}-{label}" for k, label in enumerate(bundle.labels)]
    codes = np.stack([preprocess(f, bundle.input) for f in files])
    assert Network(bundle).run(codes).argmax(1).tolist() == list(range(10))
