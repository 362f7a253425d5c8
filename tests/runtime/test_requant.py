import numpy as np
import pytest

from ternpynq.bundle.numerics import MULT_LIMIT, quantize_multiplier
from ternpynq.runtime.requant import requantize


def test_rounding_is_floor_of_half_up_for_negative_values():
    # (acc · 1 + 2^(s-1)) >> s with s = 2: -6 -> floor(-4/4) = -1, -7 -> floor(-5/4) = -2
    acc = np.array([[-6, -7, 6, 2, -2]])
    out = requantize(acc, np.ones(5, np.int32), np.zeros(5, np.int32), 2, -128, 127)
    assert out.tolist() == [[-1, -2, 2, 1, 0]]


def test_bias_residual_and_relu_clamp():
    acc = np.array([[[10]], [[-50]]]).reshape(1, 2, 1, 1)
    res = np.array([4, 4]).reshape(1, 2, 1, 1)
    out = requantize(acc, np.array([2, 2]), np.array([1, 1]), 1, 0, 255, residual=res, res_mult=3)
    # ((10+1)*2 + 4*3 + 1) >> 1 = 17 ; ((-50+1)*2 + 12 + 1) >> 1 = -43 -> ReLU 0
    assert out.ravel().tolist() == [17, 0]


def test_extremes_stay_exact_in_int64():
    acc = np.array([[2**24 - 1]])
    out = requantize(acc, np.array([MULT_LIMIT - 1]), np.array([2**24 - 1]), 48, -32768, 32767)
    expect = ((2**25 - 2) * (MULT_LIMIT - 1) + 2**47) >> 48
    assert out[0, 0] == expect


@pytest.mark.parametrize("ratio", [1e-6, 0.003, 0.77, 1.0, 37.5])
def test_quantize_multiplier_is_close_and_bounded(ratio):
    mult, shift = quantize_multiplier(np.array([ratio, ratio / 3]))
    assert np.all(np.abs(mult) < MULT_LIMIT)
    assert abs(mult[0] / 2.0**shift - ratio) <= ratio * 2**-21


def test_quantize_multiplier_refuses_nan():
    with pytest.raises(ValueError, match="finite"):
        quantize_multiplier(np.array([np.nan]))
