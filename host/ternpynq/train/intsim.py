"""A torch integer simulation of a bundle, written independently of the numpy golden model.

Integer-valued float64 tensors make conv/linear exact (every |partial sum| < 2^24), and the
requantization runs in int64, so the output codes must equal ``emu``'s bit for bit; the tests
and ``ternpynq evaluate --backend`` comparisons check exactly that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ternpynq.bundle.schema import Bundle, Layer, Op


def requant(acc: torch.Tensor, layer: Layer, residual: torch.Tensor | None) -> torch.Tensor:
    rq = layer.requant
    shape = (1, -1) + (1,) * (acc.dim() - 2)
    mult = torch.as_tensor(rq.mult, dtype=torch.int64, device=acc.device).view(shape)
    bias = torch.as_tensor(rq.bias, dtype=torch.int64, device=acc.device).view(shape)
    t = (acc + bias) * mult
    if residual is not None:
        t = t + residual * rq.res_mult
    if rq.shift > 0:
        t = (t + (1 << (rq.shift - 1))) >> rq.shift
    return t.clamp(rq.lo, rq.hi)


def run_layer(layer: Layer, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """One layer on int64 codes -> int64 codes."""
    if layer.op is Op.MAXPOOL:
        return F.max_pool2d(x.double(), layer.kernel, layer.stride, layer.padding).long()
    if layer.op is Op.GAP:
        return requant(x.sum(dim=(2, 3)), layer, None)
    w = torch.as_tensor(layer.weight, dtype=torch.float64, device=x.device)
    if layer.op is Op.CONV:
        acc = F.conv2d(x.double(), w, stride=layer.stride, padding=layer.padding)
    else:
        acc = x.double() @ w.T
    return requant(exact_int(acc, layer.name), layer, residual)


def exact_int(acc: torch.Tensor, name: str) -> torch.Tensor:
    """float64 sums of integers -> int64; a non-integral value means the sum was not exact
    (it overflowed the 2^53 mantissa), which rounding would hide, so it is an error."""
    if not torch.equal(acc, acc.trunc()):
        raise ArithmeticError(f"{name}: the float64 accumulator is not integral (inexact sum)")
    return acc.long()


@torch.no_grad()
def run_all(bundle: Bundle, codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every tensor of the graph, as int64 codes; ``codes`` is (N, C, H, W) int8."""
    tensors = {"input": codes.long()}
    for layer in bundle.layers:
        res = tensors[layer.residual] if layer.residual else None
        tensors[layer.name] = run_layer(layer, tensors[layer.input], res)
    return tensors


def run(bundle: Bundle, codes: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) int8 codes -> (N, K) int64 output codes."""
    return run_all(bundle, codes)[bundle.output]
