"""Post-training quantization of a folded float network into a bundle with T-trit weights.

- Weights: one scale per output channel, ``s_w[o] = max|W[o]| / L`` with ``L = (3^T − 1) / 2``,
  integer weights ``rint(W / s_w)`` stored as T trit planes.
- Activations: one scale per tensor, calibrated on real images: ReLU6 outputs are uint8 with
  ``s = min(6, a) / 255`` (so the clamp at 255 is the ReLU6, or a tighter calibrated clip);
  linear projections and residual sums are int8 with ``s = a / 127``; logits are int16. ``a`` is
  a high percentile of |activation| over the calibration images.
- Requantization folds ``s_in · s_w[o] / s_out`` (and ``s_res / s_out`` for a residual) into
  integer multipliers with one shift, and the bias into accumulator units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ternpynq.bundle.numerics import BIAS_LIMIT, quantize_multiplier
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import Bundle, InputSpec, Layer, Op, Requant
from ternpynq.bundle.stats import group_mask
from ternpynq.zoo.graph import SIZE, FloatLayer, run

# RGB (x − 127) / 128 on 0..255 pixels: the codes are exactly x − 127 (128 clamps to 127)
INPUT_SPEC = InputSpec(
    size=(SIZE, SIZE),
    channels=3,
    mean=(127 / 255,) * 3,
    std=(128 / 255,) * 3,
    resize=256,
    scale=1 / 128,
)
RELU6, INT8, INT16 = (0, 255), (-128, 127), (-32768, 32767)
LOGIT_HEADROOM = 1.5  # logits are not clipped: the largest calibrated one times this fits


@dataclass
class ConvertConfig:
    """How to quantize: trit planes per weight, PE width g, the calibration percentile."""

    trits: int = 5
    g: int = 16
    percentile: float = 99.99
    batch: int = 16


def codes_to_float(codes: np.ndarray) -> torch.Tensor:
    """Input codes -> the float network's input: exactly the values the integer model sees."""
    return torch.from_numpy(codes.astype(np.float32) * np.float32(INPUT_SPEC.scale))


def calibrate(
    layers: list[FloatLayer], batches: Iterable[np.ndarray], percentile: float
) -> dict[str, float]:
    """The high-percentile |activation| of every layer output over batches of input codes."""
    peaks: dict[str, list[float]] = {}
    seen = 0
    for codes in batches:
        seen += len(codes)
        tensors = run(layers, codes_to_float(codes), keep=True)
        for name, y in tensors.items():
            v = y.abs().flatten()
            step = max(1, v.numel() >> 22)  # torch.quantile takes at most 2^24 values
            if name == "fc":  # logits are never clipped
                peaks.setdefault(name, []).append(float(v.max()))
                continue
            k = max(1, int(round(v[::step].numel() * percentile / 100)))
            peaks.setdefault(name, []).append(float(v[::step].kthvalue(k).values))
    if not seen:
        raise ValueError("no calibration images")
    return {name: max(max(v), 1e-6) for name, v in peaks.items()}


def output_scales(layers: list[FloatLayer], peaks: dict[str, float]) -> dict[str, float]:
    """Scale and code range of every tensor (see the module docstring)."""
    scales = {"input": INPUT_SPEC.scale}
    for layer in layers:
        a = peaks[layer.name]
        if layer.op is Op.GAP:
            scales[layer.name] = scales[layer.input]  # the mean of codes keeps their scale
        elif layer.act == "relu6":
            scales[layer.name] = min(6.0, a) / RELU6[1]
        elif layer.op is Op.LINEAR:
            scales[layer.name] = a * LOGIT_HEADROOM / INT16[1]
        else:
            scales[layer.name] = a / INT8[1]
    return scales


def _clamp(layer: FloatLayer) -> tuple[int, int]:
    if layer.act == "relu6" or layer.op is Op.GAP:
        return RELU6
    return INT16 if layer.op is Op.LINEAR else INT8


def quantize_weight(
    w: np.ndarray, trits: int, min_scale: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Float weights -> (integer weights within ±(3^T − 1)/2, per-output-channel scale).

    ``min_scale`` floors each channel's scale: a nearly dead channel whose bias dominates
    would otherwise need a bias beyond 2^24 accumulator units.
    """
    limit = trit_limit(trits)
    peak = np.abs(w.reshape(len(w), -1)).max(axis=1)
    scale = np.maximum(np.where(peak > 0, peak / limit, 1.0), min_scale)
    q = np.rint(w / scale.reshape((-1,) + (1,) * (w.ndim - 1)))
    return np.clip(q, -limit, limit).astype(np.int16), scale


def quantize_layer(layer: FloatLayer, scales: dict[str, float], config: ConvertConfig) -> Layer:
    """One folded float layer -> a bundle layer with integer weights and requantization."""
    s_in, s_out = scales[layer.input], scales[layer.name]
    lo, hi = _clamp(layer)
    out = Layer(
        name=layer.name,
        op=layer.op,
        input=layer.input,
        in_shape=layer.in_shape,
        out_shape=layer.out_shape,
        out_scale=s_out,
        residual=layer.residual,
        kernel=layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
    )
    cout = layer.out_shape[0]
    if layer.op is Op.GAP:
        area = layer.in_shape[1] * layer.in_shape[2]
        ratio, bias = np.full(cout, s_in / (area * s_out)), np.zeros(cout)
    else:
        out.trits = config.trits
        floor = np.abs(layer.bias) / (s_in * (BIAS_LIMIT // 2))  # keeps |bias| < 2^23 units
        out.weight, s_w = quantize_weight(layer.weight, config.trits, floor)
        out.mask = group_mask(out.weight, config.g)
        ratio = s_in * s_w / s_out
        bias = np.rint(layer.bias / (s_in * s_w))
    if layer.residual:
        ratio = np.append(ratio, scales[layer.residual] / s_out)
    mult, shift = quantize_multiplier(ratio)
    out.requant = Requant(
        mult=mult[:cout],
        bias=bias.astype(np.int32),
        shift=shift,
        lo=lo,
        hi=hi,
        res_mult=int(mult[-1]) if layer.residual else 0,
    )
    return out


def to_bundle(
    layers: list[FloatLayer],
    peaks: dict[str, float],
    labels: list[str],
    config: ConvertConfig,
    model: str = "efficientnet-lite0",
    extra: dict | None = None,
) -> Bundle:
    """Quantize every layer with the calibrated peaks into a bundle."""
    scales = output_scales(layers, peaks)
    return Bundle(
        model=model,
        labels=list(labels),
        input=INPUT_SPEC,
        g=config.g,
        layers=[quantize_layer(layer, scales, config) for layer in layers],
        output=layers[-1].name,
        extra=dict(extra or {}),
    )
