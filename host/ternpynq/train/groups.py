"""PE-wise groups of a conv/linear weight, in torch (the numpy twin for bundles is
``ternpynq.bundle.stats``).

A group is one output filter x ``g`` consecutive input channels x the whole kernel, so a
weight (Cout, Cin, k, k) becomes (Cout, ceil(Cin/g), g*k*k); a partial last group is padded
with zeros, which changes neither its norm nor its count of non-zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def num_groups(cin: int, g: int) -> int:
    return -(-cin // g)


def group_view(weight: torch.Tensor, g: int) -> torch.Tensor:
    """(Cout, Cin, k, k) or (Cout, Cin) -> (Cout, ceil(Cin/g), g*k*k), zero-padded."""
    cout, cin = weight.shape[:2]
    w = weight.reshape(cout, cin, -1)  # (Cout, Cin, k*k)
    pad = num_groups(cin, g) * g - cin
    if pad:
        w = F.pad(w, (0, 0, 0, pad))
    return w.reshape(cout, -1, g * w.shape[-1])


def expand_mask(mask: torch.Tensor, weight_shape: torch.Size, g: int) -> torch.Tensor:
    """Group mask (Cout, G) -> a 0/1 tensor shaped like the weight."""
    cin = weight_shape[1]
    per_channel = mask.repeat_interleave(g, dim=1)[:, :cin]  # (Cout, Cin)
    return per_channel.reshape(per_channel.shape + (1,) * (len(weight_shape) - 2)).to(torch.float32)


def group_norms(weight: torch.Tensor, g: int, eps: float = 0.0) -> torch.Tensor:
    """L2 norm of every group, (Cout, G). ``eps`` keeps the gradient finite at zero."""
    v = group_view(weight, g)
    return torch.sqrt(v.pow(2).sum(-1) + eps)


def live_groups(weight: torch.Tensor, g: int, eps: float = 1e-5) -> torch.Tensor:
    """Boolean (Cout, G): True where some |w| >= eps (the group is kept)."""
    return group_view(weight.detach(), g).abs().amax(-1) >= eps


def layer_stats(weight: torch.Tensor, g: int, eps: float = 1e-5) -> dict:
    """Group statistics of one (ternarized or masked) weight.

    density: fraction of non-empty groups; s_min: the smallest zero fraction inside a
    non-empty group; sparsity: mean zero fraction inside non-empty groups. Padding of a partial
    last group does not count as zeros.
    """
    w = weight.detach()
    cin = w.shape[1]
    ksize = w[0, 0].numel()
    nz = group_view((w.abs() >= eps).to(torch.float32), g).sum(-1)  # (Cout, G) non-zeros
    sizes = torch.full((num_groups(cin, g),), float(g * ksize), device=w.device)
    if cin % g:
        sizes[-1] = (cin % g) * ksize
    kept = nz > 0
    zero_frac = 1.0 - nz / sizes
    density = kept.float().mean().item()
    if kept.any():
        s_min = zero_frac[kept].min().item()
        sparsity = zero_frac[kept].mean().item()
    else:
        s_min, sparsity = 0.0, 1.0
    return {
        "groups": int(kept.numel()),
        "kept": int(kept.sum().item()),
        "density": density,
        "s_min": s_min,
        "sparsity": sparsity,
    }


def compression_rate(density: float, s_min: float) -> float:
    """PE-wise CR = 16 / (D * (1 - s_min)) (DESIGN.md)."""
    denom = density * (1.0 - s_min)
    return float("inf") if denom <= 0 else 16.0 / denom


def summarize(per_layer: dict[str, dict]) -> dict:
    """Model D (kept groups / all groups), s_min (min over layers) and CR."""
    total = sum(s["groups"] for s in per_layer.values())
    kept = sum(s["kept"] for s in per_layer.values())
    density = kept / total if total else 1.0
    live = [s["s_min"] for s in per_layer.values() if s["kept"]]
    s_min = min(live) if live else 0.0
    return {"density": density, "s_min": s_min, "cr": compression_rate(density, s_min)}
