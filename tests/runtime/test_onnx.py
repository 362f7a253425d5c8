"""The onnx backend reproduces the golden model bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle


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


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([4, 16]))
def test_onnx_equals_emu_on_format2_ops(seed, g):
    # depthwise convs, TF "SAME" (asymmetric) padding, a residual int8 projection and a
    # 1152-input 1x1 projection whose accumulator bound passes 2^24 (split by trit planes)
    from ternpynq.bundle.validate import accumulator_peak, code_ranges
    from ternpynq.runtime.onnx_export import plane_parts

    bundle = random_bundle("mbconv", g=g, seed=seed)
    wide = bundle.layer("block3.project")
    in_range = code_ranges(bundle)[wide.input]
    assert accumulator_peak(wide.weight, in_range) >= 2**24
    parts = plane_parts(wide.weight, wide.trits, in_range)
    assert len(parts) > 1 and np.array_equal(sum(p * f for p, f in parts), wide.weight)
    x = np.random.default_rng(seed).integers(-128, 128, (3, 3, 12, 12)).astype(np.int8)
    assert np.array_equal(backends.create("onnx", bundle).run(x), Network(bundle).run(x))
