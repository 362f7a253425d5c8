"""The golden model's fast path: integer layers computed with float32 GEMM.

Exact because every bundle satisfies the accumulator bound (docs/numerics.md): each partial
sum is an integer below 2^24, which float32 represents exactly in any summation order.
``ternpynq.runtime.reference`` computes the same values with integers only; tests assert the
two are identical.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ternpynq.bundle.schema import Layer, Op
from ternpynq.runtime.requant import requantize


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """(N, C, H, W) codes * (Cout, C, k, k) integer weights -> (N, Cout, Ho, Wo) int32 acc."""
    n, c, h, width = x.shape
    cout, _, k, _ = w.shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (width + 2 * padding - k) // stride + 1
    xf = x.astype(np.float32).transpose(0, 2, 3, 1)  # NHWC keeps each window's channels together
    if padding:
        xf = np.pad(xf, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    if k == 1:
        cols = xf[:, ::stride, ::stride, :].reshape(n * ho * wo, c)
        wf = w.reshape(cout, c).T
    else:
        win = sliding_window_view(xf, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # (N,Ho,Wo,C,k,k)
        # copy with channels innermost (contiguous runs of C), weights ordered to match
        cols = win[:, :ho, :wo].transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)
        wf = w.transpose(0, 2, 3, 1).reshape(cout, k * k * c).T
    acc = cols @ wf.astype(np.float32)  # (N·Ho·Wo, Cout)
    return acc.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2).astype(np.int32)


def linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, Cin) codes * (Cout, Cin) weights -> (N, Cout) int32 acc."""
    return (x.astype(np.float32) @ w.T.astype(np.float32)).astype(np.int32)


def maxpool2d(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Max over k×k windows of codes; padded positions never win."""
    x = np.asarray(x, dtype=np.int32)
    n, c, h, w = x.shape
    ho, wo = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    if padding:
        low = np.iinfo(np.int32).min
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=low)
    out = None
    for i in range(kernel):  # k·k strided views: far faster than a max over window axes
        for j in range(kernel):
            tap = x[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def gap_sum(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) codes -> (N, C) int32 sums (the pooling accumulator)."""
    return np.asarray(x, dtype=np.int64).sum(axis=(2, 3)).astype(np.int32)


def accumulate(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The int32 accumulator of a conv, linear or gap layer."""
    if layer.op is Op.CONV:
        return conv2d(x, layer.weight, layer.stride, layer.padding)
    if layer.op is Op.LINEAR:
        return linear(x, layer.weight)
    if layer.op is Op.GAP:
        return gap_sum(x)
    raise ValueError(f"{layer.op.value} has no accumulator")


def run_layer(
    layer: Layer, x: np.ndarray, residual: np.ndarray | None = None, accumulate=accumulate
) -> np.ndarray:
    """Run one layer on codes: accumulate, then requantize (or max-pool).

    ``accumulate`` is swappable so the integer reference shares this exact dispatch.
    """
    if layer.op is Op.MAXPOOL:
        return maxpool2d(x, layer.kernel, layer.stride, layer.padding)
    rq = layer.requant
    return requantize(
        accumulate(layer, x),
        rq.mult,
        rq.bias,
        rq.shift,
        rq.lo,
        rq.hi,
        residual=residual,
        res_mult=rq.res_mult,
    )
