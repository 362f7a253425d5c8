"""The ternarizer and the conv layer that applies it (DESIGN.md "Ternarizer").

Per layer (or per output channel): delta = t * max|W|, alpha = mean |w| over |w| >= delta,
w_t = alpha * sign(w) * [|w| >= delta]. The backward pass is a straight-through estimator,
zeroed where |w| >= 1.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ternpynq.train.groups import expand_mask


def _reduce_dims(w: torch.Tensor, per_channel: bool) -> tuple[int, ...]:
    return tuple(range(1, w.dim())) if per_channel else tuple(range(w.dim()))


def ternary_parts(
    w: torch.Tensor, t: float | torch.Tensor, per_channel: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ternary codes in {-1, 0, 1} and alpha (scalar, or (Cout, 1, ...) when per channel)."""
    a = w.abs()
    dims = _reduce_dims(w, per_channel)
    delta = t * a.amax(dim=dims, keepdim=True)
    keep = (a >= delta) & (a > 0)
    kept = keep.sum(dim=dims, keepdim=True).clamp(min=1)
    alpha = (a * keep).sum(dim=dims, keepdim=True) / kept
    codes = torch.sign(w) * keep
    return codes, alpha


class _Ternarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor, t: float, per_channel: bool) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(w)
        codes, alpha = ternary_parts(w, t, per_channel)
        return codes * alpha

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        (w,) = ctx.saved_tensors
        return grad * (w.abs() < 1).to(grad.dtype), None, None


def ternarize(w: torch.Tensor, t: float = 0.05, per_channel: bool = False) -> torch.Tensor:
    """Ternarize ``w`` with a straight-through gradient (zero where |w| >= 1).

    >>> ternarize(torch.tensor([0.9, -0.5, 0.01, 0.0])).tolist()
    [0.699999988079071, -0.699999988079071, 0.0, 0.0]
    """
    return _Ternarize.apply(w, t, per_channel)


def ternarize_trainable(
    w: torch.Tensor, t: torch.Tensor, per_channel: bool = False
) -> torch.Tensor:
    """Ternarize with a trainable threshold ratio ``t`` (a scalar parameter).

    The forward value is exactly ``ternarize(w, t)``; ``t`` gets a gradient through a sigmoid
    surrogate of the step [|w| >= delta], the weights through the usual straight-through path.
    """
    hard = _Ternarize.apply(w, float(t.detach()), per_channel)
    a = w.detach().abs()
    dims = _reduce_dims(w, per_channel)
    delta = t * a.amax(dim=dims, keepdim=True)
    _, alpha = ternary_parts(w.detach(), float(t.detach()), per_channel)
    temp = 0.1 * delta.detach().clamp(min=1e-8)
    soft = torch.sigmoid((a - delta) / temp)
    return hard + alpha * torch.sign(w.detach()) * (soft - soft.detach())


class TernaryConv2d(nn.Conv2d):
    """A Conv2d whose weight is masked by PE-wise groups and optionally ternarized.

    It keeps nn.Conv2d's parameter names (``weight``), so state dicts stay compatible; the group
    mask is a buffer ``mask`` of shape (Cout, ceil(Cin/g)).
    """

    def setup(self, g: int, t: float, per_channel: bool, trainable_threshold: bool) -> None:
        self.g = g
        self.t = t
        self.per_channel = per_channel
        self.ternary = True
        groups = -(-self.in_channels // g)
        dev = self.weight.device
        self.register_buffer(
            "mask", torch.ones(self.out_channels, groups, dtype=torch.bool, device=dev)
        )
        self.register_buffer("mask_full", torch.ones_like(self.weight), persistent=False)
        self.masked = False
        self.threshold = (
            nn.Parameter(torch.tensor(float(t), device=dev)) if trainable_threshold else None
        )

    def set_mask(self, mask: torch.Tensor) -> None:
        """Fix the group mask and zero the pruned weights so they stay zero."""
        self.mask.copy_(mask)
        self.mask_full.copy_(expand_mask(self.mask, self.weight.shape, self.g))
        self.masked = not bool(mask.all())
        with torch.no_grad():
            self.weight.mul_(self.mask_full)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D102
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.mask_full.copy_(expand_mask(self.mask, self.weight.shape, self.g))
        self.masked = not bool(self.mask.all())

    def effective_weight(self) -> torch.Tensor:
        """The weight the layer really uses: masked, then ternarized when enabled."""
        w = self.weight * self.mask_full if self.masked else self.weight
        if not self.ternary:
            return w
        if self.threshold is not None:
            return ternarize_trainable(w, self.threshold.clamp(0.001, 0.5), self.per_channel)
        return ternarize(w, self.t, self.per_channel)

    def threshold_ratio(self) -> float:
        return (
            float(self.threshold.detach().clamp(0.001, 0.5))
            if self.threshold is not None
            else self.t
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._conv_forward(x, self.effective_weight(), self.bias)


def to_ternary_conv(
    conv: nn.Conv2d, g: int, t: float, per_channel: bool, trainable: bool
) -> TernaryConv2d:
    """A TernaryConv2d with the same geometry and weights as ``conv``."""
    new = TernaryConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(conv.weight.device)
    with torch.no_grad():
        new.weight.copy_(conv.weight)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    new.setup(g, t, per_channel, trainable)
    return new


__all__ = ["TernaryConv2d", "ternarize", "ternarize_trainable", "ternary_parts", "to_ternary_conv"]
