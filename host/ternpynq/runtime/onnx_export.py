"""Export a bundle as an ONNX graph that reproduces the golden model bit for bit.

Convolutions run in float32 on integer-valued tensors, exact while the layer's accumulator
bound is below 2^24. A wider layer (a 1×1 projection with 1,152 inputs and 5-trit weights) is
split by trit planes into parts that each stay below 2^24; each part runs in float32, is cast
to int32 (exact) and scaled by its power of three, and the parts are summed in int32.
Requantization runs in float64, where ``(acc + bias) · mult + residual · res_mult + 2^(s−1)``
stays below 2^53 and the shift is a multiply by an exact power of two followed by Floor, so
every value equals the int64 reference (docs/numerics.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ternpynq.bundle.numerics import ACC_LIMIT
from ternpynq.bundle.packing import from_trit_planes, to_trit_planes
from ternpynq.bundle.schema import Bundle, Layer, Op, pads
from ternpynq.bundle.validate import accumulator_peak, code_ranges

OPSET = 17


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _requant(gr: _Graph, layer: Layer, acc: str, residual: str | None) -> str:
    rq, n = layer.requant, layer.name
    shape = (1, -1, 1, 1) if len(layer.out_shape) == 3 else (1, -1)
    t = gr.node("Cast", [acc], f"{n}/acc64", to=TensorProto.DOUBLE)
    t = gr.node(
        "Add", [t, gr.const(f"{n}/bias", rq.bias.astype(np.float64).reshape(shape))], f"{n}/biased"
    )
    t = gr.node(
        "Mul", [t, gr.const(f"{n}/mult", rq.mult.astype(np.float64).reshape(shape))], f"{n}/scaled"
    )
    if residual is not None:
        r = gr.node("Cast", [residual], f"{n}/res64", to=TensorProto.DOUBLE)
        r = gr.node(
            "Mul", [r, gr.const(f"{n}/res_mult", np.float64(rq.res_mult))], f"{n}/res_scaled"
        )
        t = gr.node("Add", [t, r], f"{n}/with_res")
    if rq.shift > 0:
        t = gr.node(
            "Add", [t, gr.const(f"{n}/half", np.float64(2.0 ** (rq.shift - 1)))], f"{n}/rounded"
        )
        t = gr.node("Mul", [t, gr.const(f"{n}/step", np.float64(2.0**-rq.shift))], f"{n}/shifted")
        t = gr.node("Floor", [t], f"{n}/floored")
    lo, hi = gr.const(f"{n}/lo", np.float64(rq.lo)), gr.const(f"{n}/hi", np.float64(rq.hi))
    t = gr.node("Clip", [t, lo, hi], f"{n}/clipped")
    return gr.node("Cast", [t], n, to=TensorProto.FLOAT)  # small integers: exact in float32


def plane_parts(
    weight: np.ndarray, trits: int, in_range: tuple[int, int]
) -> list[tuple[np.ndarray, int]]:
    """Split ``weight`` into (part, 3^start) with Σ part·3^start = weight, each part's
    accumulator bound below 2^24; one part (the weight itself) when it already is."""
    if accumulator_peak(weight, in_range) < ACC_LIMIT:
        return [(weight, 1)]
    planes = to_trit_planes(weight, trits)
    parts, start = [], 0
    while start < trits:
        stop = start + 1  # one plane is at most Σ|t| · 255 < 2^24 for any supported layer
        while stop < trits and accumulator_peak(from_trit_planes(planes[start : stop + 1]),
                                                in_range) < ACC_LIMIT:  # fmt: skip
            stop += 1
        parts.append((from_trit_planes(planes[start:stop]), 3**start))
        start = stop
    return parts


def _weighted(gr: _Graph, layer: Layer, x: str, in_range: tuple[int, int]) -> str:
    """The int-valued accumulator of a conv, dwconv or linear layer (float32 or int32)."""
    n = layer.name
    parts = plane_parts(layer.weight, layer.trits, in_range)
    outs = []
    for i, (w, factor) in enumerate(parts):
        tag = f"{n}/part{i}" if len(parts) > 1 else n
        wt = gr.const(f"{tag}/weight", w.astype(np.float32))
        if layer.op is Op.LINEAR:
            acc = gr.node("Gemm", [x, wt], f"{tag}/acc", transB=1)
        else:
            acc = gr.node(
                "Conv",
                [x, wt],
                f"{tag}/acc",
                kernel_shape=[layer.kernel] * 2,
                strides=[layer.stride] * 2,
                pads=list(pads(layer.padding)),  # ONNX order is top, left, bottom, right
                group=layer.in_shape[0] if layer.op is Op.DWCONV else 1,
            )
        if len(parts) == 1:
            return acc
        acc = gr.node("Cast", [acc], f"{tag}/int", to=TensorProto.INT32)
        if factor != 1:
            acc = gr.node("Mul", [acc, gr.const(f"{tag}/factor", np.int32(factor))], f"{tag}/x3")
        outs.append(acc)
    acc = outs[0]
    for i, part in enumerate(outs[1:], start=1):
        acc = gr.node("Add", [acc, part], f"{n}/acc{i}")
    return acc


def to_onnx(bundle: Bundle) -> onnx.ModelProto:
    """Build the ONNX model: int8 input codes (N, C, H, W) -> int32 output codes (N, K)."""
    gr = _Graph()
    c, (h, w) = bundle.input.channels, bundle.input.size
    gr.node("Cast", ["codes"], "input", to=TensorProto.FLOAT)
    ranges = code_ranges(bundle)
    for layer in bundle.layers:
        x, n = layer.input, layer.name
        if layer.op is Op.MAXPOOL:
            gr.node(
                "MaxPool",
                [x],
                n,
                kernel_shape=[layer.kernel] * 2,
                strides=[layer.stride] * 2,
                pads=list(pads(layer.padding)),
            )
            continue
        if layer.weight is not None:
            acc = _weighted(gr, layer, x, ranges[x])
        else:  # gap: a sum, then the same requantization
            acc = gr.node(
                "ReduceSum",
                [x, gr.const(f"{n}/axes", np.array([2, 3], np.int64))],
                f"{n}/acc",
                keepdims=0,
            )
        _requant(gr, layer, acc, layer.residual)
    gr.node("Cast", [bundle.output], "output", to=TensorProto.INT32)
    graph = helper.make_graph(
        gr.nodes,
        bundle.model,
        [helper.make_tensor_value_info("codes", TensorProto.INT8, ["N", c, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.INT32, ["N", len(bundle.labels)])],
        gr.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ternpynq"
    )
    model.ir_version = 8  # readable by every onnxruntime that supports opset 17
    onnx.checker.check_model(model)
    return model
