"""Export a bundle as an ONNX graph that reproduces the golden model bit for bit.

Convolutions run in float32 on integer-valued tensors (exact under the accumulator bound);
requantization runs in float64, where ``(acc + bias) · mult + residual · res_mult + 2^(s−1)``
stays below 2^53 and the shift is a multiply by an exact power of two followed by Floor, so
every value equals the int64 reference (docs/numerics.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ternpynq.bundle.schema import Bundle, Layer, Op

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


def to_onnx(bundle: Bundle) -> onnx.ModelProto:
    """Build the ONNX model: int8 input codes (N, C, H, W) -> int32 output codes (N, K)."""
    gr = _Graph()
    c, (h, w) = bundle.input.channels, bundle.input.size
    gr.node("Cast", ["codes"], "input", to=TensorProto.FLOAT)
    for layer in bundle.layers:
        x, n = layer.input, layer.name
        if layer.op is Op.MAXPOOL:
            p = layer.padding
            gr.node(
                "MaxPool",
                [x],
                n,
                kernel_shape=[layer.kernel] * 2,
                strides=[layer.stride] * 2,
                pads=[p] * 4,
            )
            continue
        if layer.op is Op.CONV:
            wt = gr.const(f"{n}/weight", layer.weight.astype(np.float32))
            acc = gr.node(
                "Conv",
                [x, wt],
                f"{n}/acc",
                kernel_shape=[layer.kernel] * 2,
                strides=[layer.stride] * 2,
                pads=[layer.padding] * 4,
            )
        elif layer.op is Op.LINEAR:
            wt = gr.const(f"{n}/weight", layer.weight.astype(np.float32))
            acc = gr.node("Gemm", [x, wt], f"{n}/acc", transB=1)
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
