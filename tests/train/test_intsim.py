"""The torch integer simulation refuses an inexact float64 sum instead of rounding it."""

import pytest
import torch

from ternpynq.train.intsim import exact_int


def test_integral_sums_pass_through_as_int64():
    acc = torch.tensor([[-3.0, 0.0, 2.0**40]], dtype=torch.float64)
    out = exact_int(acc, "conv")
    assert out.dtype == torch.int64 and out.tolist() == [[-3, 0, 2**40]]


def test_a_fractional_sum_is_an_error_not_a_rounding():
    acc = torch.tensor([1.0, 2.5], dtype=torch.float64)
    with pytest.raises(ArithmeticError, match="^fc: the float64 accumulator is not integral"):
        exact_int(acc, "fc")
