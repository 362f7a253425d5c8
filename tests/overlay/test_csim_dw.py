"""The kernel's depthwise mode (dwconv): bit-exact against the golden model, loop-exact against
the cycle model, its stream's round trip and refusals, and the ImageNet bundle through it."""

from __future__ import annotations

import numpy as np
import pytest
from harness import DDR_BASE, assert_loops, place, run_csim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import Layer, Op, Requant, pads
from ternpynq.bundle.validate import output_shape
from ternpynq.overlay.backends import simulated_device
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.csim_build import load_kernel
from ternpynq.overlay.csim_vectors import make_case
from ternpynq.overlay.driver import Driver
from ternpynq.overlay.fmap import ELEM_I8, ELEM_I16, ELEM_RANGE, ELEM_U8, StreamError
from ternpynq.overlay.regmap import load_regmap
from ternpynq.overlay.stream_dw import dw_words, pack_dw_weights, unpack_dw_weights
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle

CLAMPS = [ELEM_RANGE[ELEM_U8], ELEM_RANGE[ELEM_I8], ELEM_RANGE[ELEM_I16], (0, 6)]


def _dw_layer(rng, c, hw, k, stride, pad, trits, clamp, prune=0.0):
    limit = trit_limit(trits)
    weight = rng.integers(-limit, limit + 1, (c, 1, k, k)) * (rng.random((c, 1, 1, 1)) >= prune)
    top, left, bottom, right = pads(pad)
    h, w = max(hw[0], k - top - bottom), max(hw[1], k - left - right)
    layer = Layer("y", Op.DWCONV, "x", (c, h, w), (), 1.0, kernel=k, stride=stride, padding=pad)
    layer.weight, layer.trits = weight.astype(np.int16), trits
    layer.out_shape = output_shape(layer)
    mult = rng.integers(-(2**22), 2**22, c).astype(np.int32)
    bias = rng.integers(-(2**20), 2**20, c).astype(np.int32)
    layer.requant = Requant(mult, bias, int(rng.integers(0, 24)), *clamp)
    return layer


@st.composite
def dw_layers(draw):
    k = draw(st.sampled_from([1, 3, 5]))
    side = st.integers(0, k - 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layer = _dw_layer(
        rng,
        c=draw(st.integers(1, 140)),
        hw=(draw(st.integers(1, 8)), draw(st.integers(1, 8))),
        k=k,
        stride=draw(st.integers(1, 2)),
        pad=draw(st.one_of(side, st.tuples(side, side, side, side))),
        trits=draw(st.integers(1, 5)),
        clamp=draw(st.sampled_from(CLAMPS)),
        prune=draw(st.sampled_from([0.0, 0.5])),
    )
    return layer, rng


def _check(board, layer, rng, batch, in_kind):
    lo, hi = ELEM_RANGE[in_kind]
    x = rng.integers(lo, hi + 1, (batch, *layer.in_shape))
    case = make_case(layer, x, None, {"x": in_kind}, board)
    status, cycles, out = run_csim(case, board)
    k, trits = layer.kernel, layer.trits
    if dw_words(layer.in_shape[0], k, trits, board.g) * board.g // 4 > board.weight_bytes:
        assert status == 2  # too_large: the whole stream must fit the weight buffer
        return
    assert status == 0
    assert np.array_equal(case.decode(out), case.expected)
    assert_loops(case, board)
    assert cycles == case.cycles


@pytest.mark.parametrize("board_name", ["small", "pynq-z2"])
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=dw_layers(), batch=st.integers(1, 2), in_kind=st.sampled_from([ELEM_U8, ELEM_I8]))
def test_random_depthwise_layers(board_name, small_board, drawn, batch, in_kind):
    board = small_board if board_name == "small" else load_board(board_name)
    _check(board, *drawn, batch, in_kind)


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 70),
    k=st.sampled_from([1, 3, 5, 7]),
    trits=st.integers(1, 5),
    g=st.sampled_from([8, 16, 64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_depthwise_stream_round_trip(c, k, trits, g, seed):
    rng = np.random.default_rng(seed)
    limit = trit_limit(trits)
    w = rng.integers(-limit, limit + 1, (c, 1, k, k)).astype(np.int16)
    data = pack_dw_weights(w, trits, g)
    assert data.size % 64 == 0 and data.size >= dw_words(c, k, trits, g) * g // 4
    assert np.array_equal(unpack_dw_weights(data, w.shape, trits, g), w)


def test_depthwise_stream_refuses_a_weight_past_the_last_channel():
    w = np.ones((5, 1, 3, 3), np.int16)
    data = pack_dw_weights(w, 1, 8)
    data[1] |= 0b01 << 2  # lane 5 (past channel 4) of the first word: byte 1, bits 2-3
    with pytest.raises(StreamError, match="past the last channel"):
        unpack_dw_weights(data, w.shape, 1, 8)


def _run_regs(case, board, wgt=None, **regs):
    out = np.zeros(case.expected_bytes.size, np.uint8)
    ddr, (w, i, r, o) = place([case.wgt if wgt is None else wgt, case.fin, case.res, out])
    rm = load_regmap()
    packed = rm.pack({**case.regs, **regs, "wgt_addr": w, "in_addr": i, "res_addr": r,
                      "out_addr": o})  # fmt: skip
    status, _ = load_kernel(board).start(packed, ddr, DDR_BASE)
    return {v: k for k, v in rm.enums["status"].items()}[status]


def test_bad_depthwise_streams_and_descriptors_give_a_status(small_board):
    rng = np.random.default_rng(3)
    layer = _dw_layer(rng, 11, (5, 5), 3, 1, 1, 2, (0, 255))
    case = make_case(layer, rng.integers(-128, 128, (1, 11, 5, 5)), None, {"x": 1}, small_board)
    assert _run_regs(case, small_board) == "ok"
    bad = case.wgt.copy()
    bad[3] = 0b10  # the invalid 2-bit code
    assert _run_regs(case, small_board, wgt=bad) == "bad_stream"
    pad_lane = case.wgt.copy()
    last_block = dw_words(11, 3, 2, 8) - 1  # lanes 3..7 of block 1 are past channel 10
    pad_lane[last_block * 2 + 1] |= 0b01 << 6  # lane 7
    assert _run_regs(case, small_board, wgt=pad_lane) == "bad_stream"
    assert _run_regs(case, small_board, wgt_bytes=16) == "bad_stream"  # shorter than its words
    assert _run_regs(case, small_board, has_res=1) == "bad_descriptor"
    assert _run_regs(case, small_board, out_c=10) == "bad_descriptor"
    assert _run_regs(case, small_board, in_c=600, out_c=600) == "too_large"  # > 2 max_channels


def test_mbconv_network_on_csim_equals_emu():
    bundle = random_bundle("mbconv", seed=4)
    assert any(layer.op is Op.DWCONV for layer in bundle.layers)
    x = np.random.default_rng(4).integers(-128, 128, (3, bundle.input.channels, *bundle.input.size))
    for board in ("pynq-z2", "zcu104"):
        with Driver(simulated_device(board), board, bundle) as driver:
            got = driver.run_all(x.astype(np.int8))
        want = Network(bundle).run_all(x.astype(np.int8))
        for name, tensor in want.items():
            assert np.array_equal(got[name], tensor), (board, name)
