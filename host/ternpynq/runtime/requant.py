"""Integer requantization: the one reference every backend matches bit for bit.

See docs/numerics.md. Bounds on the parameters (``bundle.numerics``, checked when a bundle
loads) keep every intermediate below 2^53, so int64 here and float64 elsewhere both compute
it exactly.
"""

from __future__ import annotations

import numpy as np


def requantize(
    acc: np.ndarray,
    mult: np.ndarray,
    bias: np.ndarray,
    shift: int,
    lo: int,
    hi: int,
    residual: np.ndarray | None = None,
    res_mult: int = 0,
) -> np.ndarray:
    """Map int32 accumulators to output codes.

    acc: (N, C, ...) integers; mult, bias: (C,) per output channel; residual: codes shaped like
    acc. Returns int32 codes in [lo, hi].

    >>> requantize(np.array([[10, -10]]), np.array([3, 3]), np.array([0, 0]), 2, -128, 127)
    array([[ 8, -7]], dtype=int32)
    """
    acc = np.asarray(acc, dtype=np.int64)
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    t = (acc + np.asarray(bias, np.int64).reshape(shape)) * np.asarray(mult, np.int64).reshape(
        shape
    )
    if residual is not None:
        t = t + np.asarray(residual, np.int64) * np.int64(res_mult)
    if shift > 0:
        t = (t + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    return np.clip(t, lo, hi).astype(np.int32)
