"""Compression training: PE-wise group lasso, ternarization and Weight Penalty Clipping.

>>> from ternpynq.train import compress_, TernaryPEConfig
>>> from ternpynq.train.models import resnet20
>>> model = compress_(resnet20(), TernaryPEConfig(g=16, lam=5e-3, r=0.7, method="wpc"))
"""

from ternpynq.train.compress import compress_, fix_mask_, stats
from ternpynq.train.config import Method, StageConfig, TernaryPEConfig, TrainConfig

__all__ = [
    "Method",
    "StageConfig",
    "TernaryPEConfig",
    "TrainConfig",
    "compress_",
    "fix_mask_",
    "stats",
]
