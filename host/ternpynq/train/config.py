"""Typed configs for compression and training; every hyper-parameter is a field.

Configs are dataclasses whose enums are ``str`` enums, so ``to_dict``/``from_dict`` round-trip
through JSON (checkpoints and bundles record them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Method(str, Enum):
    """What the compression stage does (DESIGN.md "The method")."""

    FP = "fp"  # float training only, the accuracy reference
    TERN = "tern"  # ternary weights, no pruning
    NAIVE = "naive"  # plain group lasso together with the ternarizer
    WPC = "wpc"  # weight penalty clipping together with the ternarizer


class TauMode(str, Enum):
    RANK = "rank"  # tau = the r-quantile of the group norms (default; the authors' ImageNet code)
    MEAN = "mean"  # tau = r * mean group norm (the paper's text)


# r when none is given: a quantile for RANK (prunes about that fraction of each layer's groups),
# a ratio to the mean for MEAN (DESIGN.md's 0.7).
DEFAULT_R = {TauMode.RANK: 0.3, TauMode.MEAN: 0.7}


class Solver(str, Enum):
    PROX = "prox"  # proximal group soft-threshold after each step: exact zeros
    SUBGRADIENT = "subgradient"  # penalty added to the loss


@dataclass
class TernaryPEConfig:
    """PE-wise pruning and ternarization of conv layers.

    g: PE lanes per group; t: ternary threshold ratio (delta = t * max|W|); lam: penalty weight;
    r: WPC clip ratio; skip: module names kept dense and float (the paper's first conv and FC);
    mask_eps: a group is pruned when every |w| < mask_eps; target_density: optionally prune the
    weakest remaining groups (by norm / sqrt(group size)) until this fraction of groups survives;
    off by default, so the pruning comes from the penalty alone. ``r`` defaults by ``tau_mode``
    (``DEFAULT_R``).
    """

    g: int = 16
    method: Method = Method.WPC
    lam: float = 0.1
    r: float | None = None
    t: float = 0.05
    tau_mode: TauMode = TauMode.RANK
    solver: Solver = Solver.PROX
    per_channel_alpha: bool = False
    trainable_threshold: bool = False
    skip: tuple[str, ...] = ("conv1", "fc")
    mask_eps: float = 1e-5
    target_density: float | None = None

    def __post_init__(self) -> None:
        self.method = Method(self.method)
        self.tau_mode = TauMode(self.tau_mode)
        if self.r is None:
            self.r = DEFAULT_R[self.tau_mode]
        self.solver = Solver(self.solver)
        self.skip = tuple(self.skip)
        if self.g < 1:
            raise ValueError(f"g must be >= 1, got {self.g}")
        if not 0.0 < self.t < 1.0:
            raise ValueError(f"t must be in (0, 1), got {self.t}")
        if self.lam < 0 or self.r <= 0:
            raise ValueError("lam must be >= 0 and r > 0")
        if self.tau_mode is TauMode.RANK and self.r > 1:
            raise ValueError(f"a rank tau needs r in (0, 1] (a quantile), got {self.r}")
        if self.target_density is not None and not 0.0 < self.target_density <= 1.0:
            raise ValueError(f"target_density must be in (0, 1], got {self.target_density}")

    @property
    def ternary(self) -> bool:
        return self.method is not Method.FP

    @property
    def penalized(self) -> bool:
        return self.method in (Method.NAIVE, Method.WPC) and self.lam > 0


@dataclass
class StageConfig:
    """One training stage: epochs and a cosine-decayed SGD schedule."""

    epochs: int
    lr: float


@dataclass
class TrainConfig:
    """Everything a ``compress`` run needs besides the compression config."""

    arch: str = "resnet20"
    dataset: str = "fashion-mnist"
    data: str | None = None
    num_classes: int = 10
    image_size: int = 28
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    pretrain: StageConfig = field(default_factory=lambda: StageConfig(30, 0.1))
    compress: StageConfig = field(default_factory=lambda: StageConfig(20, 0.02))
    finetune: StageConfig = field(default_factory=lambda: StageConfig(15, 0.01))
    train_subset: int | None = None  # use only the first N training images (quick runs)
    test_subset: int | None = None  # test on the first N test images only (quick runs)
    seed: int = 0
    init: str | None = None  # a float state dict (torchvision key names) to start from
    deadline: float | None = None  # unix time; stages are cut short after it (recorded)
    eval_every_epoch: bool = True  # False: test only once, after the last stage (short runs)


def to_dict(obj: Any) -> dict:
    """A config as plain JSON-able data (enums become their values)."""
    out = dataclasses.asdict(obj)

    def plain(v: Any) -> Any:
        if isinstance(v, Enum):
            return v.value
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(out)


def pe_config_from_dict(d: dict) -> TernaryPEConfig:
    return TernaryPEConfig(**d)


def train_config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    for key in ("pretrain", "compress", "finetune"):
        if isinstance(d.get(key), dict):
            d[key] = StageConfig(**d[key])
    return TrainConfig(**d)
