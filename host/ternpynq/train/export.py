"""Export a trained checkpoint to a bundle: fold BatchNorm, calibrate 8-bit activation scales
on training batches, and compute integer requantization (docs/numerics.md).

The float network the bundle approximates is the trained one in eval mode: ternary layers use
their ternarized weights (alpha folded into the requant multiplier), the float first conv and
FC become 5-trit integers with one scale per output channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ternpynq.bundle.numerics import ACC_LIMIT, BIAS_LIMIT, quantize_multiplier
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import Bundle, InputSpec, Layer, Op, Requant, group_count
from ternpynq.bundle.stats import group_mask
from ternpynq.train.models import BasicBlock, ResNet
from ternpynq.train.ternary import TernaryConv2d, ternary_parts

RELU, INT8, INT16 = (0, 255), (-128, 127), (-32768, 32767)
MULTI_TRITS = 5


@dataclass
class QWeight:
    """Integer weight (int16), its per-output-channel scale, trits, and the ternary alpha."""

    weight: np.ndarray
    scale: np.ndarray  # (Cout,) float64: real weight = weight * scale
    trits: int
    alpha: float | None = None


def quantize_multi_trit(w: torch.Tensor, in_peak: int, trits: int = MULTI_TRITS) -> QWeight:
    """Symmetric per-output-channel integers within ±(3^T-1)/2, shrunk further if needed so
    that Σ|w|·max|input code| stays below 2^24 (the accumulator bound)."""
    w = w.detach().double().cpu()
    cout = w.shape[0]
    peak = w.reshape(cout, -1).abs().amax(1).clamp(min=1e-12)
    qmax = float(trit_limit(trits))
    while True:
        scale = peak / qmax
        q = torch.round(w / scale.view(-1, *([1] * (w.dim() - 1))))
        worst = float(q.reshape(cout, -1).abs().sum(1).max()) * in_peak
        if worst < ACC_LIMIT or qmax <= 1:
            break
        qmax = max(1.0, np.floor(qmax * (ACC_LIMIT - 1) / worst))
    return QWeight(q.numpy().astype(np.int16), scale.numpy(), trits)


def quantize_conv(conv: nn.Conv2d | nn.Linear, in_peak: int) -> QWeight:
    """Ternary codes for a ternary TernaryConv2d, 5-trit integers for any other layer."""
    if isinstance(conv, TernaryConv2d) and conv.ternary:
        w = conv.weight * conv.mask_full if conv.masked else conv.weight
        codes, alpha = ternary_parts(
            w.detach().double().cpu(), conv.threshold_ratio(), conv.per_channel
        )
        scale = (
            alpha.reshape(-1).expand(w.shape[0])
            if alpha.numel() > 1
            else alpha.reshape(1).expand(w.shape[0])
        )
        return QWeight(codes.numpy().astype(np.int16), scale.numpy().copy(), 1, float(alpha.mean()))
    w = (
        conv.weight * conv.mask_full
        if isinstance(conv, TernaryConv2d) and conv.masked
        else conv.weight
    )
    return quantize_multi_trit(w, in_peak)


def fold_bn(
    bn: nn.BatchNorm2d | None, cout: int, bias: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray]:
    """(gain, shift) of y = gain * conv + shift for a conv followed by ``bn`` (or none)."""
    b = bias.detach().double().cpu().numpy() if bias is not None else np.zeros(cout)
    if bn is None:
        return np.ones(cout), b
    std = np.sqrt(bn.running_var.detach().double().cpu().numpy() + bn.eps)
    gamma = bn.weight.detach().double().cpu().numpy()
    beta = bn.bias.detach().double().cpu().numpy()
    mean = bn.running_mean.detach().double().cpu().numpy()
    gain = gamma / std
    return gain, beta + gain * (b - mean)


def make_requant(
    k: np.ndarray,
    b: np.ndarray,
    s_out: float,
    clamp: tuple[int, int],
    res_ratio: float | None = None,
) -> Requant:
    """Integer requant for y = k*acc + b (+ residual codes * s_res), output code y / s_out.

    mult/2^shift ≈ k / s_out and bias ≈ b / k in accumulator units; a channel whose k is 0 (all
    of its weights pruned) outputs the constant b / s_out through its bias alone.
    """
    ratio = k / s_out
    live = np.abs(ratio) > 1e-12
    fill = float(np.median(np.abs(ratio[live]))) if live.any() else 1.0
    ratio = np.where(live, ratio, fill)
    bias = np.clip(np.rint(b / s_out / ratio), -(BIAS_LIMIT - 1), BIAS_LIMIT - 1)
    ratios = ratio if res_ratio is None else np.concatenate([ratio, [res_ratio]])
    mult, shift = quantize_multiplier(ratios)
    res_mult = 0
    if res_ratio is not None:
        mult, res_mult = mult[:-1], int(mult[-1])
    return Requant(
        mult.astype(np.int32), bias.astype(np.int32), int(shift), clamp[0], clamp[1], res_mult
    )


class Calibrator:
    """Runs the float network tensor by tensor and records a robust peak of each tensor."""

    def __init__(self, percentile: float) -> None:
        self.q = percentile / 100.0
        self.peaks: dict[str, list[float]] = {}

    def see(self, name: str, t: torch.Tensor) -> torch.Tensor:
        flat = t.detach().abs().flatten().float()
        if flat.numel() > 2_000_000:  # quantile's input limit; a strided sample is plenty
            flat = flat[:: flat.numel() // 2_000_000 + 1]
        self.peaks.setdefault(name, []).append(float(torch.quantile(flat, self.q)))
        return t

    def scale(self, name: str, qmax: int) -> float:
        return max(float(np.mean(self.peaks[name])), 1e-8) / qmax


def trace(model: ResNet, x: torch.Tensor, cal: Calibrator) -> torch.Tensor:
    """The model's eval-mode forward, with every bundle tensor shown to ``cal``."""
    h = cal.see("conv1", model.relu(model.bn1(model.conv1(x))))
    if model.maxpool is not None:
        h = model.maxpool(h)
    for si, stage in enumerate(model.stages()):
        for bi, block in enumerate(stage):
            p = f"layer{si + 1}.{bi}"
            identity = (
                h if block.downsample is None else cal.see(f"{p}.downsample", block.downsample(h))
            )
            a = cal.see(f"{p}.conv1", block.relu(block.bn1(block.conv1(h))))
            h = cal.see(f"{p}.conv2", block.relu(block.bn2(block.conv2(a)) + identity))
    pooled = cal.see("gap", torch.flatten(model.avgpool(h), 1))
    return cal.see("fc", model.fc(pooled))


def input_scale(spec: InputSpec) -> float:
    """The int8 input scale covering every normalised pixel value exactly."""
    peak = max(max(abs(0 - m), abs(1 - m)) / s for m, s in zip(spec.mean, spec.std, strict=True))
    return peak / 127.0


@torch.no_grad()
def export_model(
    model: ResNet,
    spec: InputSpec,
    labels: list[str],
    g: int,
    calib: list[torch.Tensor],
    percentile: float = 99.99,
    name: str = "model",
    extra: dict | None = None,
) -> Bundle:
    """Build a validated-shape Bundle from a trained (compressed) ResNet.

    ``calib``: normalised float batches (N, C, H, W) from the training set.
    """
    model = model.eval().cpu().double()
    cal = Calibrator(percentile)
    for x in calib:
        trace(model, x.cpu().double(), cal)
    s_in = input_scale(spec)
    spec = InputSpec(
        spec.size,
        spec.channels,
        tuple(spec.mean),
        tuple(spec.std),
        spec.resize,
        s_in,
        spec.interpolation,
    )
    c, (h, w) = spec.channels, spec.size
    layers: list[Layer] = []
    scales = {"input": s_in}
    shapes = {"input": (c, h, w)}
    ranges = {"input": INT8}

    def conv_layer(
        name: str, src: str, conv: nn.Conv2d, bn, clamp, scale: float, residual: str | None = None
    ) -> str:
        q = quantize_conv(conv, max(abs(ranges[src][0]), abs(ranges[src][1])))
        gain, shift = fold_bn(bn, conv.out_channels, conv.bias)
        k = q.scale * scales[src] * gain
        res_ratio = scales[residual] / scale if residual else None
        rq = make_requant(k, shift, scale, clamp, res_ratio)
        cin, hh, ww = shapes[src]
        kk, st, pd = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        out = (conv.out_channels, (hh + 2 * pd - kk) // st + 1, (ww + 2 * pd - kk) // st + 1)
        mask = (
            group_mask(q.weight, g)
            if q.trits == 1
            else np.ones((q.weight.shape[0], group_count(cin, g)), bool)
        )
        layers.append(
            Layer(
                name,
                Op.CONV,
                src,
                shapes[src],
                out,
                scale,
                residual,
                kk,
                st,
                pd,
                q.trits,
                q.weight,
                mask,
                rq,
                q.alpha,
            )
        )
        scales[name], shapes[name], ranges[name] = scale, out, clamp
        return name

    cur = conv_layer("conv1", "input", model.conv1, model.bn1, RELU, cal.scale("conv1", 255))
    if model.maxpool is not None:
        mp = model.maxpool
        cc, hh, ww = shapes[cur]
        out = (
            cc,
            (hh + 2 * mp.padding - mp.kernel_size) // mp.stride + 1,
            (ww + 2 * mp.padding - mp.kernel_size) // mp.stride + 1,
        )
        layers.append(
            Layer(
                "maxpool",
                Op.MAXPOOL,
                cur,
                shapes[cur],
                out,
                scales[cur],
                kernel=mp.kernel_size,
                stride=mp.stride,
                padding=mp.padding,
            )
        )
        scales["maxpool"], shapes["maxpool"], ranges["maxpool"] = scales[cur], out, ranges[cur]
        cur = "maxpool"
    for si, stage in enumerate(model.stages()):
        for bi, block in enumerate(stage):
            block: BasicBlock
            p = f"layer{si + 1}.{bi}"
            identity = cur
            if block.downsample is not None:
                identity = conv_layer(
                    f"{p}.downsample",
                    cur,
                    block.downsample[0],
                    block.downsample[1],
                    INT8,
                    cal.scale(f"{p}.downsample", 127),
                )
            a = conv_layer(
                f"{p}.conv1", cur, block.conv1, block.bn1, RELU, cal.scale(f"{p}.conv1", 255)
            )
            cur = conv_layer(
                f"{p}.conv2",
                a,
                block.conv2,
                block.bn2,
                RELU,
                cal.scale(f"{p}.conv2", 255),
                identity,
            )
    cc, hh, ww = shapes[cur]
    s_gap = cal.scale("gap", 255)
    ratio = np.full(cc, scales[cur] / (hh * ww * s_gap))
    mult, shift = quantize_multiplier(ratio)
    layers.append(
        Layer(
            "gap",
            Op.GAP,
            cur,
            shapes[cur],
            (cc,),
            s_gap,
            requant=Requant(mult, np.zeros(cc, np.int32), shift, *RELU),
        )
    )
    scales["gap"], shapes["gap"], ranges["gap"] = s_gap, (cc,), RELU
    fc = model.fc
    q = quantize_multi_trit(fc.weight, 255)
    s_fc = 2.0 * cal.scale("fc", INT16[1])  # headroom: logits rarely clip even off-distribution
    rq = make_requant(q.scale * s_gap, fc.bias.detach().double().cpu().numpy(), s_fc, INT16)
    mask = np.ones((q.weight.shape[0], group_count(cc, g)), bool)
    layers.append(
        Layer(
            "fc",
            Op.LINEAR,
            "gap",
            (cc,),
            (fc.out_features,),
            s_fc,
            trits=q.trits,
            weight=q.weight,
            mask=mask,
            requant=rq,
        )
    )
    model.float()
    return Bundle(name, list(labels), spec, g, layers, "fc", extra=extra or {})


def calibration_batches(
    train, batches: int, batch_size: int = 256, seed: int = 0
) -> list[torch.Tensor]:
    out = []
    for x, _ in train.batches(batch_size, shuffle_seed=seed):
        out.append(x)
        if len(out) >= batches:
            break
    return out


def export_checkpoint(
    path: str, calib_batches: int = 8, percentile: float = 99.99, data: str | None = None
) -> Bundle:
    """Load a ``ternpynq compress`` checkpoint and export it (calibrating on its dataset)."""
    from ternpynq.train import checkpoint as ckpt
    from ternpynq.train.config import to_dict
    from ternpynq.train.pipeline import load_datasets, model_from_checkpoint

    payload = ckpt.load_for_export(path)
    try:
        model, cfg, pe = model_from_checkpoint(payload)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # e.g. mismatched weights
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path}: the checkpoint does not rebuild its model ({first})") from None
    if data:
        cfg.data = data
    train, _, labels, spec = load_datasets(cfg, torch.device("cpu"))
    labels = json.loads(payload["labels"])
    calib = calibration_batches(train, calib_batches)
    name = f"{cfg.arch}-{cfg.dataset}-{pe.method.value}"
    extra = {"train": to_dict(cfg), "pe": to_dict(pe), "stage": payload["stage"]}
    return export_model(model, spec, labels, pe.g, calib, percentile, name, extra)
