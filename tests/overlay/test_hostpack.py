"""The first conv's host-packed windows: the same integers as the conv, on the golden model and
through the overlay, and only where the input has that one reader."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.schema import Layer, Op, Requant
from ternpynq.bundle.validate import output_shape
from ternpynq.overlay.hostpack import as_pointwise, overlay_layers, packed_layer, windows
from ternpynq.runtime import ops
from ternpynq.runtime.synthetic import random_bundle


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 4),
    hw=st.integers(3, 11),
    k=st.sampled_from([2, 3, 5, 7]),
    stride=st.integers(1, 2),
    pad=st.sampled_from([0, 1, (0, 0, 1, 1), (2, 1, 0, 3)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_windows_through_a_pointwise_conv_equal_the_conv(c, hw, k, stride, pad, seed):
    rng = np.random.default_rng(seed)
    pad = tuple(min(p, k - 1) for p in pad) if isinstance(pad, tuple) else min(pad, k - 1)
    layer = Layer("stem", Op.CONV, "input", (c, hw + k, hw + k), (), 1.0, kernel=k,
                  stride=stride, padding=pad, trits=5)  # fmt: skip
    layer.weight = rng.integers(-121, 122, (6, c, k, k)).astype(np.int16)
    layer.out_shape = output_shape(layer)
    layer.requant = Requant(rng.integers(1, 2**20, 6).astype(np.int32), np.zeros(6, np.int32),
                            16, -128, 127)  # fmt: skip
    x = rng.integers(-128, 128, (2, *layer.in_shape))
    flat = as_pointwise(layer, 64)
    assert flat.kernel == 1 and flat.in_shape == (k * k * c, *layer.out_shape[1:])
    assert np.array_equal(ops.run_layer(flat, windows(x, layer)), ops.run_layer(layer, x))


def test_only_the_inputs_one_narrow_conv_is_packed():
    bundle = random_bundle("resnet18", size=32)
    first = packed_layer(bundle, 64)
    assert first is bundle.layers[0] and first.kernel == 7
    assert overlay_layers(bundle, 64)[0].in_shape[0] == 7 * 7 * 3
    assert packed_layer(bundle, 2) is None  # 3 channels are not narrow on a 2-lane overlay
    bundle.layers[1].residual = "input"  # a second reader of the input: it stays as it comes
    assert packed_layer(bundle, 64) is None


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_a_resnet18_stem_runs_host_packed_on_csim(board):
    from ternpynq.overlay.backends import simulated_device
    from ternpynq.overlay.driver import Driver
    from ternpynq.runtime.network import Network

    bundle = random_bundle("resnet18", size=32, seed=3)
    x = np.random.default_rng(3).integers(-128, 128, (2, 3, 32, 32)).astype(np.int8)
    with Driver(simulated_device(board), board, bundle) as driver:
        assert driver.steps[0].packed.regs["kernel"] == 1  # the stem as a 1x1 conv
        got = driver.run_all(x)
    want = Network(bundle).run_all(x)
    assert all(np.array_equal(got[name], want[name]) for name in want)
