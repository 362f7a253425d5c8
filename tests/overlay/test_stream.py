"""Round trips of the overlay's DDR formats and the packer's refusal of malformed bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.packing import trit_limit
from ternpynq.runtime.stream import (
    ELEM_I8,
    ELEM_I16,
    ELEM_RANGE,
    ELEM_U8,
    StreamError,
    elem_type,
    kept_groups,
    pack_fmap,
    pack_params,
    pack_weights,
    unpack_fmap,
    unpack_params,
    unpack_weights,
)


def _weights(rng, shape, trits, prune_g):
    limit = trit_limit(trits)
    w = rng.integers(-limit, limit + 1, shape)
    drop = rng.random((shape[0], -(-shape[1] // prune_g))) < 0.4
    keep = ~np.repeat(drop, prune_g, axis=1)[:, : shape[1]]
    return (w * keep.reshape(keep.shape + (1,) * (w.ndim - 2))).astype(np.int16)


@settings(max_examples=60, deadline=None)
@given(
    cout=st.integers(1, 5),
    cin=st.integers(1, 40),
    k=st.sampled_from([1, 3, 7]),
    trits=st.integers(1, 5),
    g=st.sampled_from([4, 8, 16, 64]),
    linear=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_weight_stream_round_trip(cout, cin, k, trits, g, linear, seed):
    rng = np.random.default_rng(seed)
    shape = (cout, cin) if linear else (cout, cin, k, k)
    w = _weights(rng, shape, trits, prune_g=max(1, g // 2))
    stream = pack_weights(w, trits, g)
    assert stream.size % 64 == 0
    assert np.array_equal(unpack_weights(stream, shape, trits, g), w)


def test_empty_groups_take_no_lane_words():
    w = np.zeros((2, 32, 3, 3), np.int16)
    w[0, 5, 1, 1] = 1  # filter 0: only group 0 of g=16 is non-empty; filter 1: none
    assert kept_groups(w, 16).tolist() == [[True, False], [False, False]]
    stream = pack_weights(w, 1, 16)
    # filter 0: 4-byte header + 9 lane words of 4 bytes; filter 1: 4-byte header
    assert stream[:2].tolist() == [1, 0] and stream[40:42].tolist() == [0, 0]
    assert not stream[44:].any()


def test_small_groups_pack_several_kernel_positions_per_lane_word():
    w = np.ones((1, 3, 7, 7), np.int16)  # a first conv: 3 channels x 49 positions = 147 elements
    stream = pack_weights(w, 1, 64)
    assert np.array_equal(unpack_weights(stream, w.shape, 1, 64), w)
    header, words = 16, -(-147 // 64)  # 3 lane words instead of 49
    assert stream[header : header + words * 16].any() and not stream[header + words * 16 :].any()


def test_malformed_streams_are_refused():
    w = np.ones((2, 8, 3, 3), np.int16)
    stream = pack_weights(w, 1, 8)
    bad_index = stream.copy()
    bad_index[2] = 9  # group 9 of 1
    with pytest.raises(StreamError, match="group index"):
        unpack_weights(bad_index, w.shape, 1, 8)
    with pytest.raises(StreamError, match="stream ends"):
        unpack_weights(stream[:10], w.shape, 1, 8)
    bad_code = stream.copy()
    bad_code[4] = 0b10  # the invalid 2-bit code
    with pytest.raises(BundleError, match="0b10"):
        unpack_weights(bad_code, w.shape, 1, 8)


@pytest.mark.parametrize("kind", [ELEM_U8, ELEM_I8, ELEM_I16])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7)])
def test_fmap_round_trip(kind, shape):
    lo, hi = ELEM_RANGE[kind]
    codes = np.random.default_rng(0).integers(lo, hi + 1, shape)
    data = pack_fmap(codes, kind)
    assert data.size == codes.size * (2 if kind == ELEM_I16 else 1)
    assert np.array_equal(unpack_fmap(data, shape, kind), codes)


def test_fmap_layout_is_nhwc_little_endian():
    codes = np.arange(12).reshape(1, 3, 2, 2) - 6
    assert (
        pack_fmap(codes, ELEM_I8).view(np.int8).tolist()
        == codes.transpose(0, 2, 3, 1).ravel().tolist()
    )
    assert pack_fmap(np.array([[-2]]), ELEM_I16).tolist() == [0xFE, 0xFF]
    with pytest.raises(StreamError):
        pack_fmap(np.array([[256]]), ELEM_U8)


def test_params_round_trip_and_elem_types():
    mult, bias = np.array([5, -(2**22)]), np.array([-(2**23), 7])
    got = unpack_params(pack_params(mult, bias), 2)
    assert np.array_equal(got[0], mult) and np.array_equal(got[1], bias)
    assert [elem_type(0, 255), elem_type(-128, 127), elem_type(-32768, 32767)] == [
        ELEM_U8,
        ELEM_I8,
        ELEM_I16,
    ]
    with pytest.raises(StreamError):
        elem_type(0, 70000)
