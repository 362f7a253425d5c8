"""Format-2 ops (depthwise conv, asymmetric padding, wide accumulators) against the reference."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.numerics import ACC_LIMIT
from ternpynq.bundle.schema import Layer, Op, Requant, same_padding
from ternpynq.bundle.stats import group_mask
from ternpynq.runtime import ops, reference

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def window_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.sampled_from([1, 3, 5]))
    stride = draw(st.integers(1, 2))
    pad = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
    h, w = draw(st.integers(k, 10)), draw(st.integers(k, 10))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 12))
    signed = draw(st.booleans())
    x = rng.integers(-128, 128, (n, c, h, w)) if signed else rng.integers(0, 256, (n, c, h, w))
    return rng, x, k, stride, pad


@SETTINGS
@given(window_case())
def test_depthwise_fast_equals_reference(case):
    rng, x, k, stride, pad = case
    c = x.shape[1]
    w = rng.integers(-121, 122, (c, 1, k, k))
    w[rng.random(c) < 0.2] = 0  # some channels pruned whole
    mask = group_mask(w, 16)
    assert mask.shape == (c, 1)
    expect = reference.depthwise2d(x, w, stride, pad, mask)
    assert np.array_equal(ops.depthwise2d(x, w, stride, pad), expect)


@SETTINGS
@given(window_case(), st.integers(1, 6))
def test_asymmetric_conv_fast_equals_reference(case, cout):
    rng, x, k, stride, pad = case
    w = rng.integers(-4, 5, (cout, x.shape[1], k, k))
    expect = reference.conv2d(x, w, stride, pad, group_mask(w, 4), 4)
    assert np.array_equal(ops.conv2d(x, w, stride, pad), expect)


@SETTINGS
@given(window_case())
def test_asymmetric_maxpool_matches_windows(case):
    _, x, k, stride, pad = case
    out = ops.maxpool2d(x, k, stride, pad)
    top, left = pad[0], pad[1]
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            y0, x0 = i * stride - top, j * stride - left
            win = x[:, :, max(0, y0) : y0 + k, max(0, x0) : x0 + k]
            assert np.array_equal(out[:, :, i, j], win.max(axis=(2, 3)))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, -1, 0]))
def test_wide_accumulators_take_an_exact_path(seed, sign):
    # 1x1 conv with 1152 inputs of uint8 and 5-trit weights: the bound reaches 2^25
    rng = np.random.default_rng(seed)
    cin = 1152
    w = (
        rng.integers(-121, 122, (3, cin, 1, 1))
        if sign == 0
        else np.full((3, cin, 1, 1), 121 * sign)
    )
    x = rng.integers(200, 256, (1, cin, 2, 2))
    assert ops.float_type(w, x) is np.float64
    expect = reference.conv2d(x, w, 1, 0)
    if sign:
        assert np.abs(expect).min() > ACC_LIMIT  # float32 would round these
    assert np.array_equal(ops.conv2d(x, w, 1, 0), expect)
    wl, xl = w[:, :, 0, 0], x[:, :, 0, 0]
    assert np.array_equal(ops.linear(xl, wl), reference.linear(xl, wl))


def test_float32_could_not_hold_the_wide_result():
    # an odd sum above 2^24 has no float32 representation: only the wider path can be exact
    cin = 1152
    x = np.full((1, cin), 255)
    w = np.full((1, cin), 121)
    w[0, 0] = 120
    exact = int((x.astype(np.int64) * w).sum())
    assert exact > ACC_LIMIT and exact % 2 == 1
    assert int(np.float32(exact)) != exact
    assert ops.linear(x, w)[0, 0] == exact == reference.linear(x, w)[0, 0]


def test_depthwise_layer_with_residual_equals_reference():
    rng = np.random.default_rng(3)
    w = rng.integers(-121, 122, (6, 1, 3, 3))
    top, bottom = same_padding(7, 3, 2)
    layer = Layer(
        "d",
        Op.DWCONV,
        "input",
        (6, 7, 7),
        (6, 4, 4),
        0.1,
        kernel=3,
        stride=2,
        padding=(top, top, bottom, bottom),
        trits=5,
        weight=w,
        mask=group_mask(w, 16),
        requant=Requant(
            rng.integers(1, 999, 6).astype(np.int32), np.zeros(6, np.int32), 12, 0, 255
        ),
    )
    x = rng.integers(0, 256, (2, 6, 7, 7))
    assert np.array_equal(ops.run_layer(layer, x), reference.run_layer(layer, x, g=16))


def test_mbconv_network_fast_equals_reference():
    from ternpynq.runtime.network import Network
    from ternpynq.runtime.synthetic import random_bundle

    bundle = random_bundle("mbconv", seed=7)
    x = np.random.default_rng(7).integers(-128, 128, (2, 3, 12, 12))
    fast = Network(bundle).run_all(x)
    ref = Network(bundle, lambda layer, x, r: reference.run_layer(layer, x, r, bundle.g)).run_all(x)
    for name in fast:
        assert np.array_equal(fast[name], ref[name]), name
    assert len({tuple(row) for row in fast[bundle.output]}) == 2  # not degenerate
