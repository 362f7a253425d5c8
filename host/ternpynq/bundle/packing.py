"""Paired pack/unpack functions for the bundle's tensors.

- Trit planes: an integer weight ``w`` with ``|w| <= (3^T - 1) / 2`` is written as ``T``
  balanced-ternary digits ``t_i ∈ {-1, 0, +1}``, ``w = Σ 3^i t_i``, plane 0 least significant.
- 2-bit codes: each trit becomes two bits, ``0 -> 0b00``, ``+1 -> 0b01``, ``-1 -> 0b11``
  (two's complement); ``0b10`` is invalid. Four codes per byte, the first in the lowest bits.
- Masks: one bit per group, ``np.packbits`` little bit order.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.errors import BundleError

_CODE_OF_TRIT = np.array([0b11, 0b00, 0b01], dtype=np.uint8)  # indexed by trit + 1
_TRIT_OF_CODE = np.array([0, 1, 0, -1], dtype=np.int8)  # 0b10 is rejected before lookup
_INVALID_CODE = 0b10


def trit_limit(trits: int) -> int:
    """Largest |w| that ``trits`` balanced-ternary digits can hold: (3^T - 1) / 2."""
    return (3**trits - 1) // 2


def to_trit_planes(weight: np.ndarray, trits: int) -> np.ndarray:
    """Integer weights -> (T, *weight.shape) int8 planes in {-1, 0, +1}, plane 0 = 3^0.

    >>> to_trit_planes(np.array([4, -3, 0]), 2).tolist()
    [[1, 0, 0], [1, -1, 0]]
    """
    w = np.asarray(weight, dtype=np.int64)
    limit = trit_limit(trits)
    if w.size and np.max(np.abs(w)) > limit:
        raise ValueError(f"weights exceed ±{limit}, the range of {trits} trit plane(s)")
    planes = np.empty((trits, *w.shape), dtype=np.int8)
    rest = w.copy()
    for i in range(trits):
        digit = ((rest + 1) % 3) - 1  # balanced remainder in {-1, 0, 1}
        planes[i] = digit
        rest = (rest - digit) // 3
    return planes


def from_trit_planes(planes: np.ndarray) -> np.ndarray:
    """(T, ...) trit planes -> integer weights (int16), the inverse of ``to_trit_planes``."""
    planes = np.asarray(planes, dtype=np.int16)
    powers = (3 ** np.arange(planes.shape[0], dtype=np.int16)).reshape(
        (-1,) + (1,) * (planes.ndim - 1)
    )
    return (planes * powers).sum(axis=0, dtype=np.int16)


def pack_codes(trits: np.ndarray) -> np.ndarray:
    """Flat trits in {-1, 0, +1} -> 2-bit codes, four per byte (uint8, length ceil(n/4))."""
    t = np.asarray(trits, dtype=np.int8).ravel()
    if t.size and (t.min() < -1 or t.max() > 1):
        raise ValueError("only -1, 0 and +1 can be packed as 2-bit codes")
    codes = _CODE_OF_TRIT[t + 1]
    codes = np.concatenate([codes, np.zeros((-t.size) % 4, np.uint8)]).reshape(-1, 4)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8)
    return np.bitwise_or.reduce(codes << shifts, axis=1).astype(np.uint8)


def unpack_codes(packed: np.ndarray, count: int, field: str = "codes") -> np.ndarray:
    """2-bit codes -> ``count`` trits (int8). Raises BundleError on the invalid code 0b10."""
    packed = np.asarray(packed, dtype=np.uint8).ravel()
    if packed.size != -(-count // 4):
        raise BundleError(
            field, f"expected {-(-count // 4)} bytes for {count} codes, got {packed.size}"
        )
    codes = ((packed[:, None] >> np.array([0, 2, 4, 6], np.uint8)) & 0b11).ravel()[:count]
    if np.any(codes == _INVALID_CODE):
        raise BundleError(field, "contains the invalid 2-bit code 0b10")
    return _TRIT_OF_CODE[codes]


def pack_trits(weight: np.ndarray, trits: int) -> np.ndarray:
    """Integer weights -> (T, ceil(n/4)) uint8, one packed row per trit plane."""
    planes = to_trit_planes(weight, trits)
    return np.stack([pack_codes(p) for p in planes])


def unpack_trits(packed: np.ndarray, shape: tuple[int, ...], field: str = "weight") -> np.ndarray:
    """(T, nbytes) packed planes -> integer weights of ``shape`` (int16)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise BundleError(field, f"expected a (trits, bytes) array, got shape {packed.shape}")
    count = int(np.prod(shape))
    planes = np.stack([unpack_codes(row, count, field).reshape(shape) for row in packed])
    return from_trit_planes(planes)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """Boolean group mask -> packed bits (uint8, little bit order)."""
    return np.packbits(np.asarray(mask, dtype=bool).ravel(), bitorder="little")


def unpack_mask(packed: np.ndarray, shape: tuple[int, ...], field: str = "mask") -> np.ndarray:
    """Packed bits -> boolean mask of ``shape``; the padding bits must be zero."""
    packed = np.asarray(packed, dtype=np.uint8).ravel()
    count = int(np.prod(shape))
    if packed.size != -(-count // 8):
        raise BundleError(
            field, f"expected {-(-count // 8)} bytes for {count} groups, got {packed.size}"
        )
    bits = np.unpackbits(packed, bitorder="little")
    if np.any(bits[count:]):
        raise BundleError(field, "padding bits are not zero")
    return bits[:count].astype(bool).reshape(shape)
