"""Round trips of the overlay's DDR formats and the packer's refusal of malformed bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.stats import group_mask
from ternpynq.overlay.fmap import (
    ELEM_DTYPE,
    ELEM_I8,
    ELEM_I16,
    ELEM_RANGE,
    ELEM_U8,
    StreamError,
    elem_type,
    fmap_bytes,
    pack_fmap,
    pitch,
    unpack_fmap,
)
from ternpynq.overlay.stream import (
    group_words,
    pack_params,
    pack_weights,
    plan_tiles,
    tile_size,
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
    tile=st.sampled_from([None, 4096]),
)
def test_weight_stream_round_trip(cout, cin, k, trits, g, linear, seed, tile):
    rng = np.random.default_rng(seed)
    shape = (cout, cin) if linear else (cout, cin, k, k)
    w = _weights(rng, shape, trits, prune_g=max(1, g // 2))
    stream = pack_weights(w, trits, g, tile_bytes=tile)
    assert stream.size % 64 == 0
    assert np.array_equal(unpack_weights(stream, shape, trits, g), w)


def test_empty_groups_take_no_lane_words():
    w = np.zeros((2, 32, 3, 3), np.int16)
    w[0, 5, 1, 1] = 1  # filter 0 keeps only group 0 (g = 16); filter 1 keeps nothing
    assert group_mask(w, 16).tolist() == [[True, False], [False, False]]
    stream = pack_weights(w, 1, 16)
    # tile: 2 filters, 1 listed group, 8 + 8 + 9 * 4 = 52 bytes in all
    assert stream[:8].tolist() == [2, 0, 1, 0, 52, 0, 0, 0]
    assert stream[8:14].tolist() == [0, 0, 1, 0, 0, 0]  # group 0, 1 keeper: filter 0
    # 9 lane words of 4 bytes follow the 8-byte group header; the centre tap (word 4) holds
    # channel 5 = lane 5 = bits 2-3 of byte 1, code 01
    assert stream[16 + 4 * 4 + 1] == 0b01 << 2 and np.count_nonzero(stream) == 5
    assert stream.size == 64 and not stream[52:].any()


def test_a_narrow_group_takes_one_lane_word_per_tap_with_its_channels_in_lanes_0_to_gc():
    w = np.ones((1, 3, 7, 7), np.int16)  # 3 channels x 49 taps: 49 words, lanes 0-2 set
    stream = pack_weights(w, 1, 64)
    assert np.array_equal(unpack_weights(stream, w.shape, 1, 64), w)
    words = stream[32 : 32 + 49 * 16].reshape(49, 16)  # after the tile and group headers
    assert (words[:, 0] == 0b010101).all() and not words[:, 1:].any()
    assert not stream[32 + 49 * 16 :].any()
    bad = stream.copy()
    bad[32 + 5 * 16] |= 0b01 << 6  # lane 3 of tap 5: past the group's 3 channels
    with pytest.raises(StreamError, match="non-zero padding lanes"):
        unpack_weights(bad, w.shape, 1, 64)


def test_tiles_split_at_the_weight_buffer_and_round_trip():
    rng = np.random.default_rng(5)
    w = _weights(rng, (20, 24, 3, 3), 2, prune_g=8)
    kept = group_mask(w, 8)
    words = group_words(24, 3, 8)
    tiles = plan_tiles(kept, words, 2, 8, 300)
    assert len(tiles) > 1 and tiles[0][0] == 0 and tiles[-1][1] == 20
    for o0, o1 in tiles:
        assert tile_size(kept[o0:o1].sum(axis=0), words, 2, 8) <= 300
    stream = pack_weights(w, 2, 8, tile_bytes=300)
    assert np.array_equal(unpack_weights(stream, w.shape, 2, 8), w)
    with pytest.raises(StreamError, match="alone needs more"):
        plan_tiles(kept, words, 2, 8, 40)


def test_malformed_streams_are_refused():
    w = np.ones((2, 8, 3, 3), np.int16)  # g = 8: 2-byte lane words and header units
    stream = pack_weights(w, 1, 8)
    for index, value, message in [
        (0, 0, "bad header"),  # a tile of no filters
        (4, 9, "header says 9 bytes"),  # tile length disagrees with its contents
        (8, 9, "bad group index"),  # group 9 of 1
        (14, 0, "bad filter list"),  # keepers 0, 0: not ascending
    ]:
        bad = stream.copy()
        bad[index] = value
        with pytest.raises(StreamError, match=message):
            unpack_weights(bad, w.shape, 1, 8)
    with pytest.raises(StreamError, match="stream ends"):
        unpack_weights(stream[:14], w.shape, 1, 8)
    bad_code = stream.copy()
    bad_code[16] = 0b10  # the invalid 2-bit code
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


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(2, 3, 4, 5), (1, 17, 2, 3), (3, 40)]),
    g=st.sampled_from([8, 16, 64]),
    kind=st.sampled_from([ELEM_U8, ELEM_I8, ELEM_I16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_padded_feature_maps_round_trip_with_zero_padding(shape, g, kind, seed):
    lo, hi = ELEM_RANGE[kind]
    codes = np.random.default_rng(seed).integers(lo, hi + 1, shape)
    px = pitch(shape[1], g)
    data = pack_fmap(codes, kind, px)
    assert data.size == fmap_bytes(shape[1:], kind, px) * shape[0]
    assert np.array_equal(unpack_fmap(data, shape, kind, px), codes)
    raw = data.view(ELEM_DTYPE[kind]).reshape(-1, px)
    assert not raw[:, shape[1] :].any()  # the padding channels are zero
    with pytest.raises(StreamError, match="cannot hold"):
        pack_fmap(codes, kind, shape[1] - 1)
