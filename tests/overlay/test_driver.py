"""The overlay driver on the csim device: exactness, batching, buffer reuse, limits, faults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ternpynq.overlay.backends import simulated_device
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.device import DeviceError, DeviceTimeout
from ternpynq.overlay.driver import Driver, OverlayLimitError, assign_slots, batched, check_fits
from ternpynq.overlay.fmap import fmap_bytes, fmap_types
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import INT16, GraphBuilder, random_bundle


def codes_for(bundle, n, seed=0):
    c, (h, w) = bundle.input.channels, bundle.input.size
    return np.random.default_rng(seed).integers(-128, 128, (n, c, h, w)).astype(np.int8)


@pytest.fixture(scope="module")
def resnet20():
    return random_bundle("resnet20", prune=0.4, seed=3)


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_every_tensor_matches_the_golden_model(resnet20, board):
    x = codes_for(resnet20, 3)
    with Driver(simulated_device(board), board, resnet20) as driver:
        got = driver.run_all(x)
    want = Network(resnet20).run_all(x)
    assert got.keys() == want.keys()
    for name in want:
        assert np.array_equal(got[name], want[name]), name


def test_batches_split_and_buffers_are_reused():
    bundle = random_bundle("tiny", seed=5)
    device = simulated_device()
    driver = Driver(device, "pynq-z2", bundle, max_batch=3)
    x = codes_for(bundle, 7)
    assert np.array_equal(driver.run(x), Network(bundle).run(x))
    assert device.starts == 3 * len(bundle.layers)  # batches of 3, 3, 1: one start per layer
    buffers, in_use = list(driver.fmaps), device.allocated_bytes
    assert np.array_equal(driver.run(x[:2]), Network(bundle).run(x[:2]))
    assert driver.fmaps == buffers and device.allocated_bytes == in_use  # nothing reallocated
    assert driver.run(x[:0]).shape == (0, 10)
    driver.close()
    assert device.allocated_bytes == 0


def test_slots_never_alias_a_layers_own_operands(resnet20):
    types = fmap_types(resnet20)
    shapes = {"input": (1, 28, 28), **{la.name: la.out_shape for la in resnet20.layers}}
    sizes = {name: fmap_bytes(shape, types[name]) for name, shape in shapes.items()}
    slot_of, slot_bytes = assign_slots(resnet20, sizes)
    assert len(slot_bytes) <= 4  # 22 tensors share a handful of buffers
    for layer in resnet20.layers:
        operands = {layer.input, layer.residual} - {None}
        assert slot_of[layer.name] not in {slot_of[t] for t in operands}
        assert all(slot_bytes[slot_of[t]] >= sizes[t] for t in operands | {layer.name})


def test_wrong_input_shape_is_a_clear_error():
    bundle = random_bundle("tiny")
    driver = Driver(simulated_device(), "pynq-z2", bundle)
    with driver, pytest.raises(ValueError, match=r"expected input codes of shape \(N, 1, 8, 8\)"):
        driver.run(np.zeros((2, 1, 9, 8), np.int8))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_channels", 6, r"64 channel bytes per pixel > 2 \* max_channels = 12"),
        ("max_kernel", 1, "kernel 3 > max_kernel = 1"),
        ("input_elems", 20, "> input_elems = 20"),
        ("weight_bytes", 16, r"weight_bytes"),
    ],
)
def test_a_layer_beyond_the_overlay_buffers_is_refused_naming_the_limit(field, value, message):
    board = dataclasses.replace(load_board("pynq-z2"), **{field: value})
    device = simulated_device()
    with pytest.raises(OverlayLimitError, match=f"does not fit the pynq-z2 overlay: .*{message}"):
        Driver(device, board, random_bundle("tiny"))


@pytest.mark.parametrize("fault", ["hang", "bad_address"])
def test_a_faulting_layer_is_named_and_the_next_call_works(fault):
    bundle = random_bundle("tiny", seed=2)
    device = simulated_device()
    x = codes_for(bundle, 2)
    with Driver(device, "pynq-z2", bundle, timeout_s=0.3) as driver:
        device.inject(fault)
        expected = DeviceTimeout if fault == "hang" else DeviceError
        message = "did not finish within 0.3 s" if fault == "hang" else r"bad_address \(4\)"
        with pytest.raises(expected, match=f"layer 'conv1': .*{message}"):
            driver.run(x)
        assert np.array_equal(driver.run(x), Network(bundle).run(x))


def test_batch_is_capped_where_the_linear_layer_stops_fitting():
    """A linear layer takes n images as a 1 x n map, so its input row grows with the batch."""
    # fc: 16 codes per image, a 64-element pixel (padded to g); every other layer fits 4096
    board = dataclasses.replace(load_board("pynq-z2"), input_elems=4096)
    bundle = random_bundle("tiny", seed=9)
    with Driver(simulated_device(), board, bundle, max_batch=256) as driver:
        assert driver.max_batch == 4096 // 64
        fc = driver.steps[-1].packed
        with pytest.raises(OverlayLimitError, match="input_elems = 4096"):
            check_fits(batched(fc, driver.max_batch + 1), board)
        x = codes_for(bundle, 40)
        assert np.array_equal(driver.run(x), Network(bundle).run(x))


def test_a_16_bit_intermediate_tensor_is_refused():
    builder = GraphBuilder(1, 8, 16, 0.0, 0)
    x = builder.conv("wide", "input", 8, clamp=INT16)  # 16-bit codes feeding the next layer
    builder.linear("fc", builder.gap("gap", builder.conv("next", x, 8)), 4)
    with pytest.raises(OverlayLimitError, match="layer 'next' .* 16-bit codes"):
        Driver(simulated_device(), "pynq-z2", builder.bundle("wide", 4))
