"""EfficientNet-Lite0 with batch norms folded: a flat float layer list shaped like a bundle.

Each entry becomes one bundle layer in ``quantize``; ``run`` executes the list in torch so the
folded network can be checked against ``EfficientNetLite0`` and used for calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ternpynq.bundle.schema import Op, same_padding
from ternpynq.zoo.efficientnet import BN_EPS, blocks

SIZE = 224


@dataclass
class FloatLayer:
    """One folded layer: y = act(W * x + b) (+ residual). ``act`` is "relu6" or None."""

    name: str
    op: Op
    input: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = (
        None  # float64, the bundle layout (Cout, Cin|1, k, k) or (Cout, Cin)
    )
    bias: np.ndarray | None = None
    kernel: int = 1
    stride: int = 1
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    act: str | None = None
    residual: str | None = None


def _fold(state: dict, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and BN -> (weight · γ/σ, β − μ·γ/σ) per output channel, in float64."""
    w = state[conv].double().numpy()
    gamma, beta = state[f"{bn}.weight"].double().numpy(), state[f"{bn}.bias"].double().numpy()
    mean, var = state[f"{bn}.running_mean"].double().numpy(), state[f"{bn}.running_var"].double()
    scale = gamma / np.sqrt(var.numpy() + BN_EPS)
    return w * scale.reshape(-1, 1, 1, 1), beta - mean * scale


def fold(state: dict) -> list[FloatLayer]:
    """The checked state_dict (``efficientnet.check_state_dict``) as folded float layers."""
    layers: list[FloatLayer] = []
    shape = (3, SIZE, SIZE)

    def conv(name, src, op, conv_key, bn, stride=1, act="relu6", residual=None) -> str:
        nonlocal shape
        w, b = _fold(state, conv_key, bn)
        k, (_, h, wd) = w.shape[2], shape
        top, bottom = same_padding(h, k, stride)
        left, right = same_padding(wd, k, stride)
        out = (w.shape[0], -(-h // stride), -(-wd // stride))
        layers.append(
            FloatLayer(name, op, src, shape, out, w, b, k, stride, (top, left, bottom, right),
                       act, residual)
        )  # fmt: skip
        shape = out
        return name

    x = conv("stem", "input", Op.CONV, "_conv_stem.weight", "_bn0", stride=2)
    for blk in blocks():
        p, src = f"_blocks.{blk.index}", x
        if blk.expand != 1:
            x = conv(
                f"block{blk.index}.expand", x, Op.CONV, f"{p}._expand_conv.weight", f"{p}._bn0"
            )
        x = conv(f"block{blk.index}.dw", x, Op.DWCONV, f"{p}._depthwise_conv.weight", f"{p}._bn1",
                 blk.stride)  # fmt: skip
        x = conv(f"block{blk.index}.project", x, Op.CONV, f"{p}._project_conv.weight", f"{p}._bn2",
                 act=None, residual=src if blk.skip else None)  # fmt: skip
    x = conv("head", x, Op.CONV, "_conv_head.weight", "_bn1")
    layers.append(FloatLayer("gap", Op.GAP, x, shape, (shape[0],)))
    fc_w, fc_b = state["_fc.weight"].double().numpy(), state["_fc.bias"].double().numpy()
    layers.append(FloatLayer("fc", Op.LINEAR, "gap", (shape[0],), (fc_w.shape[0],), fc_w, fc_b))
    return layers


def run(layers: list[FloatLayer], x: torch.Tensor, keep: bool = False) -> dict[str, torch.Tensor]:
    """Run the folded network on normalised input (N, 3, 224, 224) in float32.

    Returns the output tensor of every layer by name when ``keep``, else only "input" and the
    last layer's output (memory stays at a few feature maps).
    """
    tensors = {"input": x}
    last_use = {}
    for i, layer in enumerate(layers):
        last_use[layer.input] = i
        if layer.residual:
            last_use[layer.residual] = i
    with torch.no_grad():
        for i, layer in enumerate(layers):
            src = tensors[layer.input]
            if layer.op is Op.GAP:
                y = src.mean(dim=(2, 3))
            elif layer.op is Op.LINEAR:
                y = F.linear(src, _t(layer.weight), _t(layer.bias))
            else:
                top, left, bottom, right = layer.padding
                groups = src.shape[1] if layer.op is Op.DWCONV else 1
                y = F.conv2d(F.pad(src, (left, right, top, bottom)), _t(layer.weight),
                             _t(layer.bias), stride=layer.stride, groups=groups)  # fmt: skip
            if layer.residual:
                y = y + tensors[layer.residual]
            if layer.act == "relu6":
                y = F.relu6(y)
            tensors[layer.name] = y
            if not keep:  # drop what no later layer reads
                for name in [n for n in tensors if n != "input" and last_use.get(n, -1) <= i]:
                    if name != layer.name:
                        del tensors[name]
    return tensors


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
