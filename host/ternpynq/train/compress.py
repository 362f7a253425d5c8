"""The one verb of this stage: ``compress_(model, TernaryPEConfig(...))`` (torchao style).

It swaps every conv not listed in ``config.skip`` for a TernaryConv2d (same parameter names),
after which the helpers here add the penalty, fix the mask and report PE-wise statistics.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ternpynq.bundle.stats import group_sizes
from ternpynq.train import penalty as pen
from ternpynq.train.config import TernaryPEConfig
from ternpynq.train.groups import group_norms, layer_stats, live_groups, summarize
from ternpynq.train.ternary import TernaryConv2d, to_ternary_conv


def compress_(model: nn.Module, config: TernaryPEConfig) -> nn.Module:
    """Make ``model``'s conv layers PE-wise prunable and ternary, in place; returns it.

    With ``method="fp"`` the layers are swapped but not ternarized, so every method shares one
    code path and one checkpoint layout.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d) and not isinstance(module, TernaryConv2d):
            if name in config.skip:
                continue
            new = to_ternary_conv(
                module, config.g, config.t, config.per_channel_alpha, config.trainable_threshold
            )
            new.ternary = config.ternary
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, new)
    model.pe_config = config  # type: ignore[assignment]
    return model


def ternary_layers(model: nn.Module) -> list[tuple[str, TernaryConv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, TernaryConv2d)]


def set_ternary(model: nn.Module, on: bool) -> None:
    for _, m in ternary_layers(model):
        m.ternary = on


def penalty_loss(model: nn.Module, config: TernaryPEConfig) -> torch.Tensor:
    """lambda * sum R(W_g) over the compressed layers (for the subgradient solver)."""
    return pen.penalty([m.weight for _, m in ternary_layers(model)], config)


def prox_step_(model: nn.Module, config: TernaryPEConfig, lr: float) -> None:
    """Proximal penalty step on every compressed layer (for the prox solver)."""
    for _, m in ternary_layers(model):
        pen.prox_(m.weight, config, lr)


@torch.no_grad()
def fix_mask_(model: nn.Module, config: TernaryPEConfig) -> dict:
    """Freeze the mask: a group is pruned when every |w| < mask_eps.

    With ``target_density`` set, the weakest surviving groups over the whole model are pruned
    too until that fraction of groups is left. Weakness is norm / sqrt(group size), the RMS of
    a group's weights, so a 1x1 group (16 weights) is not cut before a 3x3 one (144 weights)
    just for holding fewer weights. Returns the new statistics.
    """
    layers = ternary_layers(model)
    masks = {n: live_groups(m.weight, config.g, config.mask_eps) & m.mask for n, m in layers}
    if config.target_density is not None:
        norms = {n: size_normalized_norms(m.weight, config.g) for n, m in layers}
        total = sum(v.numel() for v in masks.values())
        keep = int(round(config.target_density * total))
        alive = torch.cat([norms[n][masks[n]] for n, _ in layers])
        if alive.numel() > keep:
            cut = torch.sort(alive, descending=True).values[keep - 1] if keep > 0 else float("inf")
            masks = {n: masks[n] & (norms[n] >= cut) for n, _ in layers}
    for n, m in layers:
        m.set_mask(masks[n])
    return stats(model, config)


def size_normalized_norms(weight: torch.Tensor, g: int) -> torch.Tensor:
    """(Cout, G) group L2 norms divided by sqrt(real weights in the group)."""
    kk = weight[0, 0].numel()
    sizes = torch.as_tensor(group_sizes(weight.shape[1], kk, g), dtype=weight.dtype)
    return group_norms(weight, g) / sizes.to(weight.device).sqrt()


@torch.no_grad()
def stats(model: nn.Module, config: TernaryPEConfig) -> dict:
    """PE-wise statistics of the weights the layers use (ternarized when ternary)."""
    per_layer = {n: layer_stats(m.effective_weight(), config.g) for n, m in ternary_layers(model)}
    return {"layers": per_layer, **summarize(per_layer)}


@torch.no_grad()
def norm_histogram_data(model: nn.Module, config: TernaryPEConfig, layer: str) -> list[float]:
    """The group norms of one layer's latent weight, for Figure-1 style plots."""
    module = dict(ternary_layers(model))[layer]
    w = module.weight * module.mask_full if module.masked else module.weight
    return group_norms(w, config.g).flatten().cpu().tolist()
