"""The slow, obviously-correct integer reference of the golden model (tests only).

Everything is int64 and sums run group by group over the kept PE groups only, exactly as the
overlay skips pruned groups; ``ternpynq.runtime.ops`` must produce identical results.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Layer, Op, Padding, pads
from ternpynq.runtime import ops


def _padded(x: np.ndarray, k: int, stride: int, padding: Padding):
    """Zero-padded int64 input and the output size (Ho, Wo)."""
    x = np.asarray(x, dtype=np.int64)
    top, left, bottom, right = pads(padding)
    h, width = x.shape[2:]
    ho, wo = (h + top + bottom - k) // stride + 1, (width + left + right - k) // stride + 1
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), ho, wo


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: Padding,
    mask: np.ndarray | None = None,
    g: int = 1,
) -> np.ndarray:
    """Integer conv summing kernel tap by tap and group by group (kept groups only)."""
    w = np.asarray(w, dtype=np.int64)
    n, c = np.shape(x)[:2]
    cout, _, k, _ = w.shape
    xp, ho, wo = _padded(x, k, stride, padding)
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


def depthwise2d(
    x: np.ndarray, w: np.ndarray, stride: int, padding: Padding, mask: np.ndarray | None = None
) -> np.ndarray:
    """Integer depthwise conv: output channel c sums channel c's window only (if kept)."""
    w = np.asarray(w, dtype=np.int64)
    n, c = np.shape(x)[:2]
    k = w.shape[2]
    xp, ho, wo = _padded(x, k, stride, padding)
    acc = np.zeros((n, c, ho, wo), dtype=np.int64)
    for ch in range(c):
        if mask is not None and not mask[ch, 0]:
            continue
        for i in range(k):
            for j in range(k):
                patch = xp[:, ch, i : i + stride * ho : stride, j : j + stride * wo : stride]
                acc[:, ch] += patch * w[ch, 0, i, j]
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
        if layer.op is Op.DWCONV:
            return depthwise2d(x, layer.weight, layer.stride, layer.padding, layer.mask)
        if layer.op is Op.LINEAR:
            return linear(x, layer.weight, layer.mask, g)
        return gap_sum(x)

    return accumulate


def run_layer(layer: Layer, x: np.ndarray, residual: np.ndarray | None = None, g: int = 1):
    """Reference version of ``ops.run_layer`` (same dispatch and requantization)."""
    return ops.run_layer(layer, x, residual, accumulate=make_accumulate(g))
