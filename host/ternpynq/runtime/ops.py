"""The golden model's fast path: integer layers computed with float GEMM.

Exact because every partial sum is an integer that the float type holds exactly in any
summation order: float32 while the layer's accumulator bound is below 2^24, float64 (exact
below 2^53) for the few layers that can exceed it, such as the wide 1×1 projections of a
post-training-quantized network (docs/numerics.md). ``ternpynq.runtime.reference`` computes
the same values with integers only; tests assert the two are identical.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ternpynq.bundle.numerics import ACC_LIMIT
from ternpynq.bundle.schema import Layer, Op, Padding, pads
from ternpynq.runtime.requant import requantize


def out_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Output length of a sliding window along one axis."""
    return (size + before + after - kernel) // stride + 1


def float_type(weight: np.ndarray, x: np.ndarray) -> type:
    """float32 when Σ|w|·max|x| < 2^24 for every output channel, else float64."""
    w = np.abs(np.asarray(weight).reshape(len(weight), -1).astype(np.int64))
    peak = int(w.sum(axis=1).max(initial=0)) * int(np.abs(np.asarray(x)).max(initial=0))
    return np.float32 if peak < ACC_LIMIT else np.float64


def _pad_nhwc(x: np.ndarray, padding: Padding, value=0) -> np.ndarray:
    top, left, bottom, right = pads(padding)
    if not any((top, left, bottom, right)):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: Padding) -> np.ndarray:
    """(N, C, H, W) codes * (Cout, C, k, k) integer weights -> (N, Cout, Ho, Wo) int32 acc."""
    n, c, h, width = x.shape
    cout, _, k, _ = w.shape
    top, left, bottom, right = pads(padding)
    ho, wo = out_size(h, k, stride, top, bottom), out_size(width, k, stride, left, right)
    ft = float_type(w, x)
    xf = _pad_nhwc(x.astype(ft).transpose(0, 2, 3, 1), padding)  # NHWC: window channels together
    if k == 1:
        cols = xf[:, : stride * ho : stride, : stride * wo : stride, :].reshape(n * ho * wo, c)
        wf = w.reshape(cout, c).T
    else:
        win = sliding_window_view(xf, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # (N,Ho,Wo,C,k,k)
        # copy with channels innermost (contiguous runs of C), weights ordered to match
        cols = win[:, :ho, :wo].transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)
        wf = w.transpose(0, 2, 3, 1).reshape(cout, k * k * c).T
    acc = cols @ wf.astype(ft)  # (N·Ho·Wo, Cout)
    return acc.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2).astype(np.int32)


def depthwise2d(x: np.ndarray, w: np.ndarray, stride: int, padding: Padding) -> np.ndarray:
    """(N, C, H, W) codes * (C, 1, k, k) weights -> (N, C, Ho, Wo): channel c sees only c."""
    n, c, h, width = x.shape
    k = w.shape[2]
    top, left, bottom, right = pads(padding)
    ho, wo = out_size(h, k, stride, top, bottom), out_size(width, k, stride, left, right)
    ft = float_type(w, x)
    xf = _pad_nhwc(x.astype(ft).transpose(0, 2, 3, 1), padding)
    wf = w[:, 0].astype(ft)  # (C, k, k)
    acc = np.zeros((n, ho, wo, c), ft)
    for i in range(k):  # k·k strided taps, each a broadcast multiply over channels
        for j in range(k):
            acc += xf[:, i : i + stride * ho : stride, j : j + stride * wo : stride] * wf[:, i, j]
    return acc.transpose(0, 3, 1, 2).astype(np.int32)


def linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, Cin) codes * (Cout, Cin) weights -> (N, Cout) int32 acc."""
    ft = float_type(w, x)
    return (x.astype(ft) @ w.T.astype(ft)).astype(np.int32)


def maxpool2d(x: np.ndarray, kernel: int, stride: int, padding: Padding) -> np.ndarray:
    """Max over k×k windows of codes; padded positions never win."""
    x = np.asarray(x, dtype=np.int32)
    n, c, h, w = x.shape
    top, left, bottom, right = pads(padding)
    ho, wo = out_size(h, kernel, stride, top, bottom), out_size(w, kernel, stride, left, right)
    low = np.iinfo(np.int32).min
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=low)
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
    """The int32 accumulator of a conv, dwconv, linear or gap layer."""
    if layer.op is Op.CONV:
        return conv2d(x, layer.weight, layer.stride, layer.padding)
    if layer.op is Op.DWCONV:
        return depthwise2d(x, layer.weight, layer.stride, layer.padding)
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
