"""The numeric limits of the bundle contract (docs/numerics.md) and how requant parameters are
chosen within them.

They live with the bundle because loading validates against them; the golden model's
``runtime.requant`` computes with the same constants.
"""

from __future__ import annotations

import numpy as np

MULT_LIMIT = 1 << 23  # |mult|, |res_mult| < 2^23
BIAS_LIMIT = 1 << 24  # |bias| < 2^24
ACC_LIMIT = 1 << 24  # |acc| < 2^24 keeps float32 accumulation exact
INT32_LIMIT = 1 << 31  # beyond 2^24 a layer takes an exact wider path, but acc stays int32
EXACT_LIMIT = 1 << 53  # every requantization intermediate stays exact in float64
MAX_SHIFT = 48


def quantize_multiplier(
    ratio: np.ndarray | float, max_shift: int = MAX_SHIFT
) -> tuple[np.ndarray, int]:
    """Choose integer ``mult`` and one ``shift`` with ``mult / 2^shift ≈ ratio``.

    The shift is the largest that keeps every ``|mult| < 2^23``, so the relative error is at
    most 2^-22 for the largest ratio. Returns (mult int32 array, shift).

    >>> m, s = quantize_multiplier(np.array([0.5, 0.25]))
    >>> (m / 2.0**s).tolist()
    [0.5, 0.25]
    """
    ratio = np.atleast_1d(np.asarray(ratio, dtype=np.float64))
    if not np.all(np.isfinite(ratio)):
        raise ValueError("requantization ratio must be finite")
    peak = float(np.max(np.abs(ratio))) if ratio.size else 0.0
    if peak == 0.0:
        return np.zeros(ratio.shape, np.int32), 0
    # largest shift with round(peak * 2^shift) < 2^23
    shift = int(np.floor(np.log2((MULT_LIMIT - 1) / peak)))
    shift = max(0, min(max_shift, shift))
    mult = np.rint(ratio * (2.0**shift))
    if np.max(np.abs(mult)) >= MULT_LIMIT:
        raise ValueError(f"requantization ratio {peak:g} is too large for a 23-bit multiplier")
    return mult.astype(np.int32), shift
