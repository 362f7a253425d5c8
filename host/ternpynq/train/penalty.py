"""Group lasso and Weight Penalty Clipping (DESIGN.md "Group lasso", "WPC").

Plain group lasso: R = ||W_g||_2. WPC: R = min(||W_g||_2, tau), tau recomputed per layer at
every step: by default the r-quantile of the layer's group norms (``TauMode.RANK``), or
r * mean_g ||W_g||_2 (``TauMode.MEAN``). A group above tau gets no penalty gradient at all.
Two solvers: the penalty as a loss term (subgradient), or its proximal operator after each
optimizer step, which gives exact zeros.
"""

from __future__ import annotations

import torch

from ternpynq.train.config import Method, TauMode, TernaryPEConfig
from ternpynq.train.groups import group_norms, group_view

NORM_EPS = 1e-12  # keeps d||w||/dw finite (zero) for an all-zero group


def tau(norms: torch.Tensor, r: float, mode: TauMode = TauMode.RANK) -> torch.Tensor:
    """The clip level of one layer, from its group norms (no gradient flows through it)."""
    norms = norms.detach()
    if TauMode(mode) is TauMode.RANK:
        return torch.quantile(norms.flatten().float(), min(max(r, 0.0), 1.0))
    return r * norms.mean()


def layer_penalty(weight: torch.Tensor, config: TernaryPEConfig) -> torch.Tensor:
    """R summed over the groups of one layer (without lambda)."""
    norms = group_norms(weight, config.g, NORM_EPS)
    if config.method is Method.WPC:
        return torch.minimum(norms, tau(norms, config.r, config.tau_mode)).sum()
    if config.method is Method.NAIVE:
        return norms.sum()
    return weight.new_zeros(())


def penalty(weights: list[torch.Tensor], config: TernaryPEConfig) -> torch.Tensor:
    """lambda * sum over layers of the layer penalty: the term added to the loss."""
    total = sum((layer_penalty(w, config) for w in weights), weights[0].new_zeros(()))
    return config.lam * total


@torch.no_grad()
def prox_(weight: torch.Tensor, config: TernaryPEConfig, lr: float) -> None:
    """Proximal step of lr * lambda * R on one weight, in place.

    Group soft-thresholding: W_g <- W_g * max(0, 1 - lr*lam/||W_g||). Under WPC it applies
    only to groups whose norm is below tau, exactly where the clipped penalty has a gradient.
    """
    if config.method not in (Method.NAIVE, Method.WPC) or config.lam <= 0:
        return
    g = config.g
    cout, cin = weight.shape[:2]
    norms = group_norms(weight, g)  # (Cout, G)
    step = lr * config.lam
    scale = torch.clamp(1.0 - step / norms.clamp(min=NORM_EPS), min=0.0)
    if config.method is Method.WPC:
        below = norms < tau(norms, config.r, config.tau_mode)
        scale = torch.where(below, scale, torch.ones_like(scale))
    v = group_view(weight, g) * scale.unsqueeze(-1)  # (Cout, G, g*k*k)
    k = weight[0, 0].numel()
    w = v.reshape(cout, -1, k)[:, :cin]
    weight.copy_(w.reshape(weight.shape))
