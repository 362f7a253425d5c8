"""Export a bundle as an integer ONNX graph: ``MatMulInteger`` on the CPU's int8 units, exact.

The float graph (``onnx_export.to_onnx``) runs each conv as float32 ``Conv`` on integer values.
This one keeps activations as uint8 codes in NHWC and runs each conv or linear layer as one
``MatMulInteger`` (uint8 × int8 → int32), which onnxruntime maps to VNNI/AMX integer kernels:

- **im2col in the graph.** A k×k conv pads the NHWC tensor (``Pad``) and builds its rows of
  k·k·C codes with one ``Gather`` of whole C-channel pixels (constant indices, tap-major), which
  match the weight laid out as (k, k, Cin, Cout); then one GEMM per layer. Measured against
  the alternatives the issue names (docs/performance.md): ``Gather`` beat strided ``Slice`` +
  ``Concat`` by 2-6×, and one GEMM per layer beat one ``MatMulInteger`` per tap summed in
  int32 by about 2×.
- **Signed tensors** (the network input, int8 projections) are stored as uint8 with an offset
  of 128 (code + 128), because onnxruntime's int8 × int8 GEMM is several times slower than
  uint8 × int8. Padding is the offset itself (real 0), so every product is shifted by the same
  128·Σw[o] per output channel, which is folded into the requantization constant: exact.
- **Requantization** is the contract's integer arithmetic, evaluated in float64 where it is
  exact: ``t = acc·(mult·2^-s) + ((bias − corr)·mult − zr·res_mult + 2^(s−1))·2^-s
  [+ res·(res_mult·2^-s)]``. Every term is an integer times the power of two 2^-s and every
  partial sum stays below 2^53 (checked per layer at export), so each double is exact and
  ``floor(t)`` is the contract's arithmetic shift. Since ``lo`` and ``hi`` are integers,
  clamping before the floor gives the same codes; for a non-negative range the cast to uint8
  (truncation) is that floor.
- **Max pool** runs as ``MaxPool`` on uint8 (onnxruntime keeps it in NHWC); its padding never
  wins. Right after a conv whose requantization is non-decreasing (every mult ≥ 0, no
  residual), it pools the accumulators (as float32, exact below 2^24) before requantizing:
  the same codes, with a quarter of the requantization work on the ResNet stem.
- **Global average pool** is an int32 ``ReduceSum`` and the same requantization.
- **Depthwise convs** are a float32 grouped ``Conv`` on the integer values (``_depthwise``):
  exact, since their accumulator bound 255·Σ|w| stays below 2^24 (checked), and measured 2×
  faster than per-tap multiply-adds in int32 or float32. Its per-side (TF "SAME") padding
  is the ``Conv``'s own ``pads``.
- **Wide accumulators.** ``MatMulInteger`` accumulates in int32, exact in any order while
  255·Σ|w| < 2^31 (checked per layer), so the layers whose bound passes 2^24 (the 1152-input
  projections of EfficientNet-Lite0 reach about 2^25) need no split.

A layer this exporter cannot express exactly raises ``UnsupportedLayer`` naming it; the
``onnx`` backend then runs the float graph for the whole model (``graph="auto"``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ternpynq.bundle.schema import Bundle, Layer, Op, pads
from ternpynq.runtime.onnx_export import OPSET, _Graph
from ternpynq.runtime.ops import out_size

EXACT_LIMIT = 1 << 53  # doubles hold every integer below this exactly
FLOAT32_EXACT = 1 << 24  # and floats below this
INT32_LIMIT = 1 << 31  # MatMulInteger's int32 accumulator wraps past this
DW_FORMS = ("conv_f32", "taps_f32", "taps_i32")  # depthwise forms, fastest measured first
SIGNED_OFFSET = 128  # an int8 code c is stored as the uint8 c + 128
SPACE_TO_DEPTH_BELOW = 16  # strided convs on fewer channels gather s×s blocks (the stem)


class UnsupportedLayer(ValueError):
    """A layer the integer graph cannot express exactly (the message names it and why)."""


class _Tensor:
    """One activation in the graph: its ONNX name, uint8 offset (None: int32 codes), rank."""

    def __init__(self, name: str, offset: int | None, rank: int) -> None:
        self.name, self.offset, self.rank = name, offset, rank


def _byte_input(layer: Layer, x: _Tensor) -> _Tensor:
    if x.offset is None:
        raise UnsupportedLayer(
            f"layer {layer.name!r} ({layer.op.value}): its input {layer.input!r} has codes wider "
            "than 8 bits, which MatMulInteger and uint8 pooling cannot take"
        )
    return x


def _int8_weight(layer: Layer) -> np.ndarray:
    w = np.asarray(layer.weight)
    if w.size and np.abs(w).max() > 127:
        raise UnsupportedLayer(f"layer {layer.name!r}: weights exceed int8 (|w| > 127)")
    return w.astype(np.int8)


def _conv_cols(
    gr: _Graph, layer: Layer, x: _Tensor, w: np.ndarray
) -> tuple[str, np.ndarray, int, int]:
    """im2col in the graph: (N·Ho·Wo, K) uint8 rows, the (K, Cout) int8 weight, Ho and Wo."""
    n, k, s = layer.name, layer.kernel, layer.stride
    c, h, wd = layer.in_shape
    top, left, bottom, right = pads(layer.padding)
    ho, wo = out_size(h, k, s, top, bottom), out_size(wd, k, s, left, right)
    wk = w.transpose(0, 2, 3, 1)  # (Cout, k, k, C): taps, then channels
    if s > 1 and k > 1 and c < SPACE_TO_DEPTH_BELOW:
        # s×s pixel blocks become channels: a k×k stride-s conv is then a kb×kb stride-1 conv
        # over s·s·C channels (weights zero past k), with s·s times fewer, wider Gather rows
        kb = (k - 1) // s + 1
        hb, wb = ho + kb - 1, wo + kb - 1
        bottom, right = hb * s - h - top, wb * s - wd - left  # may be < 0: Pad then crops
        src = _pad(gr, n, x, (top, left, bottom, right))
        split = gr.const(f"{n}/blocks", np.array([0, hb, s, wb, s, c], np.int64))
        t = gr.node("Reshape", [src, split], f"{n}/split")
        t = gr.node("Transpose", [t], f"{n}/s2d", perm=[0, 1, 3, 2, 4, 5])
        merged = gr.const(f"{n}/merged", np.array([0, hb, wb, s * s * c], np.int64))
        src = gr.node("Reshape", [t, merged], f"{n}/depth")
        wide = np.zeros((w.shape[0], kb * s, kb * s, c), w.dtype)
        wide[:, :k, :k] = wk
        wk = wide.reshape(-1, kb, s, kb, s, c).transpose(0, 1, 3, 2, 4, 5)
        k, s, c, hp, wp = kb, 1, s * s * c, hb, wb
    else:
        src = _pad(gr, n, x, (top, left, bottom, right))
        hp, wp = h + top + bottom, wd + left + right
    weight = np.ascontiguousarray(wk.reshape(w.shape[0], -1).T)  # (K, Cout)
    if k == 1 and s == 1:
        cols = src
    else:  # one Gather of whole C-channel pixels, in the weight's (tap, channel) order
        down = (np.arange(ho) * s)[:, None, None, None] + np.arange(k)[None, None, :, None]
        across = (np.arange(wo) * s)[None, :, None, None] + np.arange(k)[None, None, None, :]
        index = (down * wp + across).reshape(-1).astype(np.int32)  # (Ho·Wo·k·k,)
        flat = gr.const(f"{n}/pixels", np.array([0, hp * wp, c], np.int64))
        pixels = gr.node("Reshape", [src, flat], f"{n}/pixel_rows")
        cols = gr.node("Gather", [pixels, gr.const(f"{n}/taps", index)], f"{n}/cols", axis=1)
    flat = gr.const(f"{n}/flat", np.array([-1, weight.shape[0]], np.int64))
    return gr.node("Reshape", [cols, flat], f"{n}/rows"), weight, ho, wo


def _pad(gr: _Graph, n: str, x: _Tensor, pads: tuple[int, int, int, int]) -> str:
    """Pad (or crop, where negative) H and W of an NHWC tensor with real 0 (the offset)."""
    top, left, bottom, right = pads
    if not any(pads):
        return x.name
    spec = gr.const(f"{n}/pads", np.array([0, top, left, 0, 0, bottom, right, 0], np.int64))
    fill = gr.const(f"{n}/pad_value", np.array(x.offset, np.uint8))
    return gr.node("Pad", [x.name, spec, fill], f"{n}/padded")


def _depthwise(
    gr: _Graph, layer: Layer, x: _Tensor, w: np.ndarray, form: str
) -> tuple[str, np.ndarray]:
    """A depthwise conv's NHWC accumulator (float32 or int32 values) and its offset correction.

    ``conv_f32`` (the default): float32 ``Conv`` with one group per channel on the offset-free
    values, which onnxruntime runs as its blocked depthwise kernel; ``taps_*``: the padded map is
    cast once, then each of the k·k taps is a strided ``Slice`` times the tap's per-channel
    weight, summed. On the ImageNet bundle the whole graph ran 2.0× faster with ``conv_f32``
    than with either tap form (docs/performance.md). float32 holds every partial sum exactly:
    the caller checks the bound 255·Σ|w| < 2^24 (at most 255·121·25 for a 5×5 kernel).
    """
    n, k, s = layer.name, layer.kernel, layer.stride
    c, h, wd = layer.in_shape
    top, left, bottom, right = pads(layer.padding)
    ho, wo = out_size(h, k, s, top, bottom), out_size(wd, k, s, left, right)
    taps = w[:, 0].astype(np.int64)  # (C, k, k)
    if form == "conv_f32":
        t = gr.node("Cast", [x.name], f"{n}/real", to=TensorProto.FLOAT)
        if x.offset:  # real values, so Conv's zero padding is real 0 and no correction is due
            t = gr.node("Sub", [t, gr.const(f"{n}/in_offset", np.float32(x.offset))], f"{n}/signed")
        t = gr.node("Transpose", [t], f"{n}/nchw", perm=[0, 3, 1, 2])
        acc = gr.node(
            "Conv",
            [t, gr.const(f"{n}/weight", w.astype(np.float32))],
            f"{n}/acc_nchw",
            group=c,
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[top, left, bottom, right],
        )
        return gr.node("Transpose", [acc], f"{n}/acc", perm=[0, 2, 3, 1]), np.zeros(c, np.int64)
    kind, dtype = (
        (TensorProto.INT32, np.int32) if form == "taps_i32" else (TensorProto.FLOAT, np.float32)
    )
    src = gr.node("Cast", [_pad(gr, n, x, (top, left, bottom, right))], f"{n}/wide", to=kind)
    axes = gr.const(f"{n}/axes", np.array([1, 2], np.int64))
    steps = gr.const(f"{n}/steps", np.array([s, s], np.int64))
    acc = None
    for i in range(k):
        for j in range(k):
            tap = f"{n}/tap{i}_{j}"
            start = gr.const(f"{tap}/start", np.array([i, j], np.int64))
            end = gr.const(
                f"{tap}/end", np.array([i + s * (ho - 1) + 1, j + s * (wo - 1) + 1], np.int64)
            )
            t = gr.node("Slice", [src, start, end, axes, steps], f"{tap}/x")
            t = gr.node("Mul", [t, gr.const(f"{tap}/w", taps[:, i, j].astype(dtype))], f"{tap}/xw")
            acc = t if acc is None else gr.node("Add", [acc, t], f"{tap}/acc")
    return acc, x.offset * taps.reshape(c, -1).sum(axis=1)


def _accumulate(
    gr: _Graph, layer: Layer, x: _Tensor, depthwise: str
) -> tuple[str, np.ndarray, np.ndarray]:
    """The raw accumulator, the per-channel offset correction and |acc| bound."""
    n = layer.name
    if layer.op is Op.GAP:
        c, h, w = layer.in_shape
        wide = (
            x.name
            if x.offset is None
            else gr.node("Cast", [x.name], f"{n}/wide", to=TensorProto.INT32)
        )
        axes = gr.const(f"{n}/axes", np.array([1, 2], np.int64))
        acc = gr.node("ReduceSum", [wide, axes], f"{n}/acc", keepdims=0)
        corr = np.full(c, (x.offset or 0) * h * w, np.int64)
        peak = 32768 if x.offset is None else 255
        return acc, corr, np.full(c, peak * h * w, np.int64)
    x = _byte_input(layer, x)
    w = _int8_weight(layer)
    cout = w.shape[0]
    per_out = w.reshape(cout, -1).astype(np.int64)
    corr = x.offset * per_out.sum(axis=1)
    bound = 255 * np.abs(per_out).sum(axis=1)
    if layer.op is Op.DWCONV:
        if int(bound.max(initial=0)) >= FLOAT32_EXACT:
            raise UnsupportedLayer(f"layer {n!r}: depthwise accumulator could reach 2^24")
        acc, corr = _depthwise(gr, layer, x, w, depthwise)
        return acc, corr, bound
    if int(bound.max(initial=0)) >= INT32_LIMIT:
        raise UnsupportedLayer(f"layer {n!r}: the int32 accumulator could reach 2^31")
    if layer.op is Op.LINEAR:
        wt = gr.const(f"{n}/weight", np.ascontiguousarray(w.T))
        return gr.node("MatMulInteger", [x.name, wt], f"{n}/acc"), corr, bound
    rows, weight, ho, wo = _conv_cols(gr, layer, x, w)
    acc = gr.node("MatMulInteger", [rows, gr.const(f"{n}/weight", weight)], f"{n}/acc_rows")
    nhwc = gr.const(f"{n}/nhwc", np.array([-1, ho, wo, cout], np.int64))
    return gr.node("Reshape", [acc, nhwc], f"{n}/acc"), corr, bound


def _requant(
    gr: _Graph,
    layer: Layer,
    acc: str,
    corr: np.ndarray,
    bound: np.ndarray,
    res: _Tensor | None,
    out: str | None = None,
) -> _Tensor:
    rq, n, out = layer.requant, layer.name, out or layer.name
    mult, bias = np.asarray(rq.mult, np.int64), np.asarray(rq.bias, np.int64)
    half = (1 << (rq.shift - 1)) if rq.shift > 0 else 0
    res_off = 0 if res is None else (res.offset or 0)
    const = (bias - corr) * mult - res_off * rq.res_mult + half  # exact int64: all below 2^53
    res_peak = 0 if res is None else (255 if res.offset is not None else 32768) * abs(rq.res_mult)
    worst = bound * np.abs(mult) + np.abs(const) + res_peak
    if worst.size and int(worst.max()) >= EXACT_LIMIT:
        raise UnsupportedLayer(f"layer {n!r}: requantization could exceed 2^53 in float64")
    step = 2.0**-rq.shift
    t = gr.node("Cast", [acc], f"{n}/acc64", to=TensorProto.DOUBLE)
    t = gr.node("Mul", [t, gr.const(f"{n}/mult", mult.astype(np.float64) * step)], f"{n}/scaled")
    t = gr.node("Add", [t, gr.const(f"{n}/const", const.astype(np.float64) * step)], f"{n}/biased")
    if res is not None:
        r = gr.node("Cast", [res.name], f"{n}/res64", to=TensorProto.DOUBLE)
        r = gr.node(
            "Mul", [r, gr.const(f"{n}/res_mult", np.float64(rq.res_mult * step))], f"{n}/rs"
        )
        t = gr.node("Add", [t, r], f"{n}/with_res")
    lo, hi = gr.const(f"{n}/lo", np.float64(rq.lo)), gr.const(f"{n}/hi", np.float64(rq.hi))
    rank = len(layer.out_shape) + 1
    if rq.lo >= 0 and rq.hi <= 255:  # clip, then truncation is the floor
        t = gr.node("Clip", [t, lo, hi], f"{n}/clipped")
        return _Tensor(gr.node("Cast", [t], out, to=TensorProto.UINT8), 0, rank)
    t = gr.node("Clip", [gr.node("Floor", [t], f"{n}/floored"), lo, hi], f"{n}/clipped")
    if rq.lo >= -SIGNED_OFFSET and rq.hi <= 127:
        t = gr.node("Add", [t, gr.const(f"{n}/offset", np.float64(SIGNED_OFFSET))], f"{n}/u")
        return _Tensor(gr.node("Cast", [t], out, to=TensorProto.UINT8), SIGNED_OFFSET, rank)
    return _Tensor(gr.node("Cast", [t], out, to=TensorProto.INT32), None, rank)


def _maxpool(gr: _Graph, layer: Layer, src: str, out: str) -> str:
    """MaxPool of an NHWC tensor (onnxruntime keeps uint8 pooling in NHWC); pads never win."""
    top, left, bottom, right = pads(layer.padding)
    nchw = gr.node("Transpose", [src], f"{out}/nchw", perm=[0, 3, 1, 2])
    pooled = gr.node(
        "MaxPool",
        [nchw],
        f"{out}/pooled",
        kernel_shape=[layer.kernel] * 2,
        strides=[layer.stride] * 2,
        pads=[top, left, bottom, right],
    )
    return gr.node("Transpose", [pooled], out, perm=[0, 2, 3, 1])


def _pool_first(bundle: Bundle, layer: Layer) -> Layer | None:
    """The max pool that alone reads ``layer``, when it may run before the requantization.

    With every ``mult`` ≥ 0 and no residual, requantization is non-decreasing in the
    accumulator per channel, so pooling the accumulators and requantizing the maxima gives
    the same codes on a quarter of the elements (the ResNet stem).
    """
    readers = [other for other in bundle.layers if layer.name in (other.input, other.residual)]
    if (
        layer.op is not Op.CONV
        or layer.residual
        or layer.name == bundle.output
        or len(readers) != 1
        or readers[0].op is not Op.MAXPOOL
        or readers[0].residual
        or np.any(np.asarray(layer.requant.mult) < 0)
    ):
        return None
    return readers[0]


def _input(gr: _Graph) -> _Tensor:
    """int8 codes (N, C, H, W) -> uint8 codes + 128 in NHWC."""
    t = gr.node("Transpose", ["codes"], "input/nhwc", perm=[0, 2, 3, 1])
    t = gr.node("Cast", [t], "input/wide", to=TensorProto.INT32)
    t = gr.node("Add", [t, gr.const("input/offset", np.int32(SIGNED_OFFSET))], "input/shifted")
    return _Tensor(gr.node("Cast", [t], "input", to=TensorProto.UINT8), SIGNED_OFFSET, 4)


def _output(gr: _Graph, out: _Tensor) -> None:
    """Back to the interface every backend shares: int32 codes, NCHW for feature maps."""
    t = out.name
    if out.offset is not None:
        t = gr.node("Cast", [t], "output/wide", to=TensorProto.INT32)
        if out.offset:
            t = gr.node("Sub", [t, gr.const("output/offset", np.int32(out.offset))], "output/s")
    if out.rank == 4:
        t = gr.node("Transpose", [t], "output/nchw", perm=[0, 3, 1, 2])
    gr.node("Identity", [t], "output")


def to_onnx_integer(bundle: Bundle, depthwise: str = DW_FORMS[0]) -> onnx.ModelProto:
    """Build the integer ONNX model: int8 input codes (N, C, H, W) -> int32 output codes.

    ``depthwise`` picks the form of depthwise convs (``DW_FORMS``; the first, the default, is
    the fastest measured). All forms give the same codes.

    Raises ``UnsupportedLayer`` (naming the layer) for an op or range it cannot run exactly.
    """
    if depthwise not in DW_FORMS:
        raise ValueError(f"unknown depthwise form {depthwise!r}; choose one of {DW_FORMS}")
    gr = _Graph()
    c, (h, w) = bundle.input.channels, bundle.input.size
    tensors = {"input": _input(gr)}
    for layer in bundle.layers:
        if layer.name in tensors:  # a max pool already run before its conv's requantization
            continue
        x = tensors[layer.input]
        if layer.op is Op.MAXPOOL:
            x = _byte_input(layer, x)
            tensors[layer.name] = _Tensor(_maxpool(gr, layer, x.name, layer.name), x.offset, 4)
            continue
        if layer.op not in (Op.CONV, Op.DWCONV, Op.LINEAR, Op.GAP):
            raise UnsupportedLayer(
                f"layer {layer.name!r}: op {layer.op.value!r} has no integer ONNX form yet"
            )
        acc, corr, bound = _accumulate(gr, layer, x, depthwise)
        res = tensors[layer.residual] if layer.residual else None
        pool = _pool_first(bundle, layer)
        if pool is not None and int(bound.max(initial=0)) < FLOAT32_EXACT:
            acc = gr.node("Cast", [acc], f"{layer.name}/acc32", to=TensorProto.FLOAT)
            acc = _maxpool(gr, pool, acc, f"{pool.name}/acc")
            tensors[pool.name] = _requant(gr, layer, acc, corr, bound, None, pool.name)
            continue
        tensors[layer.name] = _requant(gr, layer, acc, corr, bound, res)
    _output(gr, tensors[bundle.output])
    out_shape = ["N", *bundle.layer(bundle.output).out_shape]
    graph = helper.make_graph(
        gr.nodes,
        bundle.model,
        [helper.make_tensor_value_info("codes", TensorProto.INT8, ["N", c, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.INT32, out_shape)],
        gr.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ternpynq"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
