"""The slow, obviously-correct integer reference of the golden model (tests only).

Everything is int64 and sums run group by group over the kept PE groups only, exactly as the
overlay skips pruned groups; ``ternpynq.runtime.ops`` must produce identical results.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Layer, Op
from ternpynq.runtime import ops


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: int,
    mask: np.ndarray | None = None,
    g: int = 1,
) -> np.ndarray:
    """Integer conv summing kernel tap by tap and group by group (kept groups only)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    n, c, h, width = x.shape
    cout, _, k, _ = w.shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (width + 2 * padding - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    acc = np.zeros((n, cout, ho, wo), dtype=np.int64)
    groups = range(0, c, g)
    for o in range(cout):
        for gi, start in enumerate(groups):
            if mask is not None and not mask[o, gi]:
                continue
            for ci in range(start, min(start + g, c)):
                for i in range(k):
                    for j in range(k):
                        patch = xp[
                            :, ci, i : i + stride * ho : stride, j : j + stride * wo : stride
                        ]
                        acc[:, o] += patch * w[o, ci, i, j]
    return _int32(acc)


def linear(x: np.ndarray, w: np.ndarray, mask: np.ndarray | None = None, g: int = 1) -> np.ndarray:
    """Integer matrix-vector product as a 1×1 conv over a 1×1 map."""
    x = np.asarray(x)
    acc = conv2d(x[:, :, None, None], np.asarray(w)[:, :, None, None], 1, 0, mask, g)
    return acc[:, :, 0, 0]


def gap_sum(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    acc = np.zeros(x.shape[:2], dtype=np.int64)
    for y in range(x.shape[2]):
        for col in range(x.shape[3]):
            acc += x[:, :, y, col]
    return _int32(acc)


def _int32(acc: np.ndarray) -> np.ndarray:
    if acc.size and np.abs(acc).max() >= 1 << 31:
        raise OverflowError("accumulator overflows int32")
    return acc.astype(np.int32)


def make_accumulate(g: int):
    """An ``accumulate(layer, x)`` that honours the layer's group mask for PE width ``g``."""

    def accumulate(layer: Layer, x: np.ndarray) -> np.ndarray:
        if layer.op is Op.CONV:
            return conv2d(x, layer.weight, layer.stride, layer.padding, layer.mask, g)
        if layer.op is Op.LINEAR:
            return linear(x, layer.weight, layer.mask, g)
        return gap_sum(x)

    return accumulate


def run_layer(layer: Layer, x: np.ndarray, residual: np.ndarray | None = None, g: int = 1):
    """Reference version of ``ops.run_layer`` (same dispatch and requantization)."""
    return ops.run_layer(layer, x, residual, accumulate=make_accumulate(g))
