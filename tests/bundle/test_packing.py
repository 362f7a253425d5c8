import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.packing import (
    from_trit_planes,
    pack_codes,
    pack_mask,
    pack_trits,
    to_trit_planes,
    trit_limit,
    unpack_codes,
    unpack_mask,
    unpack_trits,
)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda t: st.tuples(
            st.just(t),
            arrays(
                np.int16, st.integers(0, 70), elements=st.integers(-trit_limit(t), trit_limit(t))
            ),
        )
    )
)
def test_trit_planes_round_trip(case):
    trits, w = case
    planes = to_trit_planes(w, trits)
    assert set(np.unique(planes)) <= {-1, 0, 1}
    assert np.array_equal(from_trit_planes(planes), w)
    assert np.array_equal(unpack_trits(pack_trits(w, trits), w.shape), w)


def test_ternary_code_layout_is_fixed():
    # 0 -> 00, +1 -> 01, -1 -> 11, first code in the lowest bits
    assert pack_codes(np.array([1, -1, 0, 1])).tolist() == [0b01_00_11_01]
    assert pack_codes(np.array([-1])).tolist() == [0b11]


def test_invalid_code_is_a_bundle_error():
    with pytest.raises(BundleError, match="invalid 2-bit code"):
        unpack_codes(np.array([0b10], np.uint8), 1)


def test_weights_out_of_trit_range_are_refused():
    with pytest.raises(ValueError, match="±1"):
        to_trit_planes(np.array([2]), 1)


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_mask_round_trip(mask):
    assert np.array_equal(unpack_mask(pack_mask(mask), mask.shape), mask)


def test_mask_padding_bits_must_be_zero():
    with pytest.raises(BundleError, match="padding bits"):
        unpack_mask(np.array([0xFF], np.uint8), (3,))
