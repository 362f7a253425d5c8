"""The golden model's fast path: integer layers computed with float GEMM.

Exact because every partial sum is an integer that the float type holds exactly in any
summation order: float32 while the layer's accumulator bound is below 2^24, float64 (exact
below 2^53) for the few layers that can exceed it, such as the wide 1×1 projections of a
post-training-quantized network (docs/numerics.md). ``ternpynq.runtime.reference`` computes
the same values with integers only; tests assert the two are identical.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ternpynq.bundle.numerics import ACC_LIMIT
from ternpynq.bundle.schema import Bundle, Layer, Op, Padding, Requant, pads
from ternpynq.runtime.requant import requantize


def out_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Output length of a sliding window along one axis."""
    return (size + before + after - kernel) // stride + 1


def weight_peak(weight: np.ndarray) -> int:
    """max over output channels of Σ|w|: with max|x| it bounds the layer's accumulator."""
    w = np.abs(np.asarray(weight).reshape(len(weight), -1).astype(np.int64))
    return int(w.sum(axis=1).max(initial=0))


def float_type(weight: np.ndarray, x: np.ndarray, peak: int | None = None) -> type:
    """float32 when Σ|w|·max|x| < 2^24 for every output channel, else float64 (exact < 2^53).

    ``peak`` is ``weight_peak(weight)`` when the caller prepared it once."""
    peak = weight_peak(weight) if peak is None else peak
    return (
        np.float32 if peak * int(np.abs(np.asarray(x)).max(initial=0)) < ACC_LIMIT else np.float64
    )


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: Padding) -> np.ndarray:
    """(N, C, H, W) codes * (Cout, C, k, k) integer weights -> (N, Cout, Ho, Wo) int32 acc."""
    return _conv2d_f(x, w, stride, padding).astype(np.int32)


def _conv2d_f(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: Padding,
    wf: np.ndarray | None = None,
    peak: int | None = None,
) -> np.ndarray:
    """``conv2d`` as float integer values, an NCHW view of the NHWC GEMM result (no copy).

    ``wf`` and ``peak`` are ``gemm_weight(w)`` and ``weight_peak(w)`` when the caller prepared
    them once. float32 unless the accumulator bound needs float64 (``float_type``).
    """
    n, c, h, width = x.shape
    cout, _, k, _ = w.shape
    top, left, bottom, right = pads(padding)
    padded = any((top, left, bottom, right))
    ft = float_type(w, x, peak)
    if k == 1 and not padded and stride > 1:  # a strided 1×1 conv reads only the kept pixels
        x, stride = x[:, :, ::stride, ::stride], 1
        h, width = x.shape[2:]
    ho, wo = out_size(h, k, stride, top, bottom), out_size(width, k, stride, left, right)
    xf = _nhwc(x, padding, ft)  # each window's channels contiguous
    if k == 1:
        cols = xf[:, : stride * ho : stride, : stride * wo : stride].reshape(n * ho * wo, c)
    else:
        win = sliding_window_view(xf, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # (N,Ho,Wo,C,k,k)
        # copy with channels innermost (contiguous runs of C), weights ordered to match
        cols = win[:, :ho, :wo].transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)
    acc = cols @ (gemm_weight(w) if wf is None else wf).astype(ft, copy=False)  # (N·Ho·Wo, Cout)
    return acc.reshape(n, ho, wo, cout).transpose(0, 3, 1, 2)


def gemm_weight(w: np.ndarray) -> np.ndarray:
    """Conv (Cout, C, k, k) or linear (Cout, C) weights as the (K, Cout) float32 GEMM operand,
    rows in the im2col order (kernel tap, then channel)."""
    w = w.transpose(0, 2, 3, 1) if w.ndim == 4 else w
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=np.float32)


def _nhwc(x: np.ndarray, padding: Padding, ft: type) -> np.ndarray:
    """(N, C, H, W) codes -> (N, H', W', C) of type ``ft`` with zero padding per side, in one
    copy (cast, transpose and pad together)."""
    n, c, h, width = x.shape
    top, left, bottom, right = pads(padding)
    padded = any((top, left, bottom, right))
    xf = (np.zeros if padded else np.empty)((n, h + top + bottom, width + left + right, c), ft)
    xf[:, top : top + h, left : left + width] = x.transpose(0, 2, 3, 1)
    return xf


def depthwise2d(x: np.ndarray, w: np.ndarray, stride: int, padding: Padding) -> np.ndarray:
    """(N, C, H, W) codes * (C, 1, k, k) weights -> (N, C, Ho, Wo): channel c sees only c."""
    n, c, h, width = x.shape
    k = w.shape[2]
    top, left, bottom, right = pads(padding)
    ho, wo = out_size(h, k, stride, top, bottom), out_size(width, k, stride, left, right)
    ft = float_type(w, x)
    xf = _nhwc(x, padding, ft)
    wf = w[:, 0].astype(ft)  # (C, k, k)
    acc = np.zeros((n, ho, wo, c), ft)
    for i in range(k):  # k·k strided taps, each a broadcast multiply over channels
        for j in range(k):
            acc += xf[:, i : i + stride * ho : stride, j : j + stride * wo : stride] * wf[:, i, j]
    return acc.transpose(0, 3, 1, 2).astype(np.int32)


def linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, Cin) codes * (Cout, Cin) weights -> (N, Cout) int32 acc."""
    return _linear_f(x, w).astype(np.int32)


def _linear_f(
    x: np.ndarray, w: np.ndarray, wf: np.ndarray | None = None, peak: int | None = None
) -> np.ndarray:
    ft = float_type(w, x, peak)
    return x.astype(ft) @ (gemm_weight(w) if wf is None else wf).astype(ft, copy=False)


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


def _accumulate_f(layer: Layer, x: np.ndarray, prepared: tuple | None = None) -> np.ndarray:
    """``accumulate`` without the final int32 copy: float integer values (or int32 sums).

    ``prepared`` is ``(gemm_weight, weight_peak)`` of the layer when made once."""
    wf, peak = prepared if prepared is not None else (None, None)
    if layer.op is Op.CONV:
        return _conv2d_f(x, layer.weight, layer.stride, layer.padding, wf, peak)
    if layer.op is Op.LINEAR:
        return _linear_f(x, layer.weight, wf, peak)
    return accumulate(layer, x)


def run_layer(
    layer: Layer,
    x: np.ndarray,
    residual: np.ndarray | None = None,
    accumulate=None,
    prepared: tuple | None = None,
) -> np.ndarray:
    """Run one layer on codes: accumulate, then requantize (or max-pool).

    ``accumulate`` is swappable so the integer reference shares this exact dispatch; a given
    one is followed by the int64 ``requantize``, the default fast path by its float64 twin
    ``requantize_f64`` (tests assert the two paths identical). ``prepared`` is the layer's
    ``(gemm_weight, weight_peak)``, when made once (``layer_runner``).
    """
    if layer.op is Op.MAXPOOL:
        return maxpool2d(x, layer.kernel, layer.stride, layer.padding)
    rq = layer.requant
    if accumulate is None:
        return requantize_f64(_accumulate_f(layer, x, prepared), rq, residual)
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


def layer_runner(bundle: Bundle) -> Callable[..., np.ndarray]:
    """``run_layer`` for one bundle with its GEMM weights prepared once (about 55 ms of casts
    and transposes per ResNet-18 forward otherwise). The bundle's weights must not change
    afterwards."""
    prepared = {
        layer.name: (gemm_weight(layer.weight), weight_peak(layer.weight))
        for layer in bundle.layers
        if layer.op in (Op.CONV, Op.LINEAR)
    }

    def run(layer: Layer, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        return run_layer(layer, x, residual, prepared=prepared.get(layer.name))

    return run


def requantize_f64(acc: np.ndarray, rq: Requant, residual: np.ndarray | None = None) -> np.ndarray:
    """``requantize`` computed in float64, in place: the same codes, about 3× faster.

    ``t = acc·(mult·2^-s) + ((bias·mult + 2^(s−1))·2^-s) [+ res·(res_mult·2^-s)]``: each term is
    an integer times 2^-s and every partial sum is one too, below 2^53 in magnitude (checked
    here from the actual extremes of ``acc``), so each double is exact and ``floor`` is the
    arithmetic shift. Falls back to the int64 ``requantize`` when the check fails.
    """
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    mult, bias = np.asarray(rq.mult, np.int64), np.asarray(rq.bias, np.int64)
    half = (1 << (rq.shift - 1)) if rq.shift > 0 else 0
    const = bias * mult + half
    peak = max(-float(acc.min()), float(acc.max())) if acc.size else 0.0
    worst = peak * float(np.abs(mult).max(initial=0)) + float(np.abs(const).max(initial=0))
    if residual is not None:
        worst += float(np.abs(residual).max(initial=0)) * abs(rq.res_mult)
    if worst >= 2.0**53:
        res_mult = rq.res_mult
        return requantize(acc, mult, bias, rq.shift, rq.lo, rq.hi, residual, res_mult)
    step = 2.0**-rq.shift
    t = acc.astype(np.float64)
    t *= (mult.astype(np.float64) * step).reshape(shape)
    t += (const.astype(np.float64) * step).reshape(shape)
    if residual is not None:
        t += np.asarray(residual, np.float64) * (rq.res_mult * step)
    np.floor(t, out=t)
    np.clip(t, rq.lo, rq.hi, out=t)
    return t.astype(np.int32)
