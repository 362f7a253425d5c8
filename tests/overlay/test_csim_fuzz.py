"""Random single layers through the csim kernel: bit-exact against the golden model and
cycle-exact against the model, over shapes, strides, padding, trits, types and residuals."""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_loops, run_csim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import Layer, Op, Requant, pads
from ternpynq.bundle.validate import output_shape
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.csim_vectors import make_case
from ternpynq.overlay.fmap import ELEM_I8, ELEM_I16, ELEM_RANGE, ELEM_U8, StreamError

CLAMPS = [ELEM_RANGE[ELEM_U8], ELEM_RANGE[ELEM_I8], ELEM_RANGE[ELEM_I16], (0, 6), (-3, 200)]


@st.composite
def layers(draw):
    op = draw(st.sampled_from([Op.CONV, Op.CONV, Op.LINEAR, Op.MAXPOOL, Op.GAP]))
    cin, h, w = draw(st.integers(1, 20)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = draw(st.sampled_from([1, 2, 3, 5])) if op in (Op.CONV, Op.MAXPOOL) else 1
    side = st.integers(0, k - 1)
    pad = draw(st.one_of(side, st.tuples(side, side, side, side)))  # TF SAME is (0, 0, 1, 1)
    top, left, bottom, right = pads(pad)
    h, w = max(h, k - top - bottom), max(w, k - left - right)
    stride = draw(st.integers(1, 2)) if op in (Op.CONV, Op.MAXPOOL) else 1
    in_shape = (cin,) if op is Op.LINEAR else (cin, h, w)
    layer = Layer("y", op, "x", in_shape, (), 1.0, kernel=k, stride=stride, padding=pad)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if op in (Op.CONV, Op.LINEAR):
        cout, trits = draw(st.integers(1, 12)), draw(st.integers(1, 5))
        shape = (cout, cin, k, k) if op is Op.CONV else (cout, cin)
        limit = trit_limit(trits)
        weight = rng.integers(-limit, limit + 1, shape) * (rng.random(shape) < 0.6)
        drop = rng.random((cout, cin)) < draw(st.sampled_from([0.0, 0.5, 1.0]))
        weight = weight * ~drop.reshape(drop.shape + (1,) * (weight.ndim - 2))
        layer.weight, layer.trits = weight.astype(np.int16), trits
    layer.out_shape = output_shape(layer)
    if op is not Op.MAXPOOL:
        lo, hi = draw(st.sampled_from(CLAMPS))
        cout = layer.out_shape[0]
        mult = rng.integers(-(2**22), 2**22, cout).astype(np.int32)
        bias = (
            rng.integers(-(2**20), 2**20, cout).astype(np.int32) if op is not Op.GAP else 0 * mult
        )
        shift = draw(st.integers(0, 30))
        res_mult = 0
        if op is Op.CONV and draw(st.booleans()):
            layer.residual, res_mult = "r", int(rng.integers(-(2**22), 2**22))
        layer.requant = Requant(mult, bias, shift, lo, hi, res_mult)
    return layer, rng


def _check(board, layer, rng, batch, in_kind):
    lo, hi = ELEM_RANGE[in_kind]
    x = rng.integers(lo, hi + 1, (batch, *layer.in_shape))
    types = {"x": in_kind, "r": ELEM_U8 if rng.random() < 0.5 else ELEM_I8}
    residual = None
    if layer.residual:
        r_lo, r_hi = ELEM_RANGE[types["r"]]
        residual = rng.integers(r_lo, r_hi + 1, (batch, *layer.out_shape))
    try:
        case = make_case(layer, x, residual, types, board)
    except StreamError as exc:  # refusing a filter larger than the weight buffer is correct
        assert "weight buffer" in str(exc)
        return
    status, cycles, out = run_csim(case, board)
    assert status == 0
    assert np.array_equal(case.decode(out), case.expected)
    assert_loops(case, board)
    assert cycles == case.cycles


def _board(name, small_board):
    return small_board if name == "small" else load_board(name)


@pytest.mark.parametrize("board_name", ["small", "zcu104"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=layers(), batch=st.integers(1, 3), in_kind=st.sampled_from([ELEM_U8, ELEM_I8]))
def test_random_layers(board_name, small_board, drawn, batch, in_kind):
    _check(_board(board_name, small_board), *drawn, batch, in_kind)


@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["small", "pynq-z2", "zcu104"])
@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=layers(), batch=st.integers(1, 3), in_kind=st.sampled_from([ELEM_U8, ELEM_I8]))
def test_random_layers_long(board_name, small_board, drawn, batch, in_kind):
    _check(_board(board_name, small_board), *drawn, batch, in_kind)
