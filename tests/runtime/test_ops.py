"""The fast float32 golden path must equal the pure-integer reference exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.numerics import ACC_LIMIT
from ternpynq.bundle.schema import Layer, Op, Requant
from ternpynq.bundle.stats import group_mask
from ternpynq.runtime import ops, reference
from ternpynq.runtime.network import Network
from ternpynq.runtime.requant import requantize

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def conv_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 20)), draw(st.integers(1, 6))
    k = draw(st.sampled_from([1, 3, 5]))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
    h = draw(st.integers(k, 9))
    w = draw(st.integers(k, 9))
    trits = draw(st.sampled_from([1, 1, 2, 5]))
    limit = (3**trits - 1) // 2
    weight = rng.integers(-limit, limit + 1, (cout, cin, k, k))
    g = draw(st.sampled_from([1, 4, 16]))
    keep = rng.random((cout, -(-cin // g))) > 0.3
    weight = weight * np.repeat(keep, g, axis=1)[:, :cin, None, None]
    signed = draw(st.booleans())
    x = rng.integers(-128, 128, (n, cin, h, w)) if signed else rng.integers(0, 256, (n, cin, h, w))
    return x, weight, stride, padding, g


@SETTINGS
@given(conv_case())
def test_conv_fast_equals_reference(case):
    x, w, stride, padding, g = case
    expect = reference.conv2d(x, w, stride, padding, group_mask(w, g), g)
    assert np.array_equal(ops.conv2d(x, w, stride, padding), expect)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 300), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_linear_fast_equals_reference(n, cin, cout, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.integers(0, 256, (n, cin)), rng.integers(-121, 122, (cout, cin))
    assert np.array_equal(ops.linear(x, w), reference.linear(x, w, group_mask(w, 16), 16))


@pytest.mark.parametrize("sign", [1, -1])
def test_accumulators_at_the_bound_are_exact(sign):
    # the largest dot product the bound allows, with every term of one sign: 2^24 - 1 exactly
    cin = 8
    x = np.full((1, cin), 255)
    per_term = (ACC_LIMIT - 1) // (255 * cin)
    w = np.full((1, cin), sign * per_term)
    w[0, 0] += sign * ((ACC_LIMIT - 1) - 255 * cin * per_term) // 255
    target = int((x * w).sum())
    assert abs(target) < ACC_LIMIT and abs(target) > ACC_LIMIT - 255
    assert ops.linear(x, w)[0, 0] == target == reference.linear(x, w)[0, 0]
    # and a conv whose every output sits within one input step of the bound
    xc = np.full((1, 64, 4, 4), 255)
    wc = np.full((1, 64, 3, 3), sign * ((ACC_LIMIT - 1) // (255 * 64 * 9)))
    assert np.array_equal(ops.conv2d(xc, wc, 1, 0), reference.conv2d(xc, wc, 1, 0))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from([(2, 2, 0), (3, 2, 1), (3, 1, 1)]))
def test_maxpool_never_picks_padding(seed, params):
    k, s, p = params
    x = np.random.default_rng(seed).integers(-128, 0, (1, 2, 6, 5))  # all negative codes
    out = ops.maxpool2d(x, k, s, p)
    assert out.max() < 0  # a padded zero or int32 minimum would show up here

    def window(c, i, j):
        top, left = i * s - p, j * s - p
        return x[0, c, max(0, top) : top + k, max(0, left) : left + k].max()

    rows, cols = out.shape[2:]
    expect = [[[window(c, i, j) for j in range(cols)] for i in range(rows)] for c in range(2)]
    assert out[0].tolist() == expect


def test_gap_sum_matches_reference():
    x = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 7))
    assert np.array_equal(ops.gap_sum(x), reference.gap_sum(x))


def test_residual_layer_fast_equals_reference():
    rng = np.random.default_rng(5)
    w = rng.integers(-1, 2, (4, 8, 3, 3))
    layer = Layer(
        "c",
        Op.CONV,
        "input",
        (8, 5, 5),
        (4, 5, 5),
        0.1,
        residual="r",
        kernel=3,
        padding=1,
        weight=w,
        mask=group_mask(w, 4),
        requant=Requant(
            np.array([3, 5, 7, 9], np.int32),
            np.array([1, -2, 3, -4], np.int32),
            4,
            0,
            255,
            res_mult=11,
        ),
    )
    x, res = rng.integers(0, 256, (2, 8, 5, 5)), rng.integers(-128, 128, (2, 4, 5, 5))
    assert np.array_equal(ops.run_layer(layer, x, res), reference.run_layer(layer, x, res, g=4))


@pytest.mark.parametrize("arch", ["tiny", "resnet20"])
def test_network_fast_equals_reference(arch, tiny_bundle, resnet20_bundle):
    bundle = tiny_bundle if arch == "tiny" else resnet20_bundle
    x = np.random.default_rng(2).integers(-128, 128, (2, *bundle.layers[0].in_shape))
    fast = Network(bundle).run_all(x)
    ref = Network(bundle, lambda layer, x, r: reference.run_layer(layer, x, r, bundle.g)).run_all(x)
    for name in fast:
        assert np.array_equal(fast[name], ref[name]), name
    # the network is not degenerate: outputs vary across inputs and use the code range
    assert len({tuple(row) for row in fast[bundle.output]}) == 2


def test_wrong_input_shape_is_a_clear_error(tiny_bundle):
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        Network(tiny_bundle).run(np.zeros((1, 3, 8, 8), np.int8))
    with pytest.raises(ValueError, match="int8 range"):
        Network(tiny_bundle).run(np.full((1, 1, 8, 8), 300))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 48),
    st.sampled_from([(0, 255), (-128, 127), (-32768, 32767), (3, 200)]),
    st.booleans(),
    st.sampled_from([1 << 24, 1 << 31]),  # within the bound, and past 2^53 after the multiply
)
def test_float64_requant_equals_int64_reference(seed, shift, clamp, with_res, acc_limit):
    # parameters at the contract's limits: |mult|, |res_mult| < 2^23, |bias| < 2^24
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 6))
    acc = rng.integers(-acc_limit + 1, acc_limit, (2, c, 3, 3))
    acc[0, :, 0, 0] = rng.choice([-acc_limit + 1, acc_limit - 1], c)
    mult = rng.integers(-(2**23) + 1, 2**23, c)
    bias = rng.integers(-(2**24) + 1, 2**24, c)
    res_mult = int(rng.integers(-(2**23) + 1, 2**23))
    residual = rng.integers(-32768, 32768, acc.shape) if with_res else None
    rq = Requant(mult, bias, shift, *clamp, res_mult=res_mult if with_res else 0)
    expect = requantize(acc, mult, bias, shift, *clamp, residual=residual, res_mult=rq.res_mult)
    fast = ops.requantize_f64(
        acc.astype(np.float64 if acc_limit > 1 << 24 else np.float32), rq, residual
    )
    assert fast.dtype == np.int32 and np.array_equal(fast, expect)
