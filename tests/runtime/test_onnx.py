"""The onnx backend reproduces the golden model bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle

pytest.importorskip("onnxruntime", reason="needs the onnx extra: pip install 'ternpynq[onnx]'")


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["tiny", "resnet20"]),
    st.integers(0, 10**6),
    st.sampled_from([0.0, 0.5, 0.9]),
    st.sampled_from([4, 16, 64]),
)
def test_onnx_equals_emu_on_random_networks(arch, seed, prune, g):
    bundle = random_bundle(arch, g=g, prune=prune, seed=seed)
    x = np.random.default_rng(seed).integers(-128, 128, (3, *bundle.layers[0].in_shape))
    x = x.astype(np.int8)
    onnx = backends.create("onnx", bundle)
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


def test_onnx_equals_emu_on_resnet18_layout():
    bundle = random_bundle("resnet18", size=32, seed=4)  # maxpool, 7x7 stride-2 stem, 4 stages
    x = np.random.default_rng(1).integers(-128, 128, (2, 3, 32, 32)).astype(np.int8)
    assert np.array_equal(backends.create("onnx", bundle).run(x), Network(bundle).run(x))


def test_auto_prefers_onnx_when_installed_off_board():
    assert backends.resolve("auto") in ("onnx", "pynq")


def test_wrong_shape_is_a_clear_error(tiny_bundle):
    with pytest.raises(ValueError, match="expected input codes of shape"):
        backends.create("onnx", tiny_bundle).run(np.zeros((1, 1, 9, 9), np.int8))
