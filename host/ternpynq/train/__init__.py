"""Compression training: PE-wise group lasso, ternarization and Weight Penalty Clipping.

>>> from ternpynq.train import compress_, TernaryPEConfig
>>> from ternpynq.train.models import resnet20
>>> model = compress_(resnet20(), TernaryPEConfig(g=16, lam=5e-3, r=0.7, method="wpc"))
"""

from __future__ import annotations

import importlib

# Loaded on first use (PEP 562): importing the package, as the CLI does to list its commands,
# must not pay for importing torch.
_EXPORTS = {
    "compress_": "ternpynq.train.compress",
    "fix_mask_": "ternpynq.train.compress",
    "stats": "ternpynq.train.compress",
    "Method": "ternpynq.train.config",
    "StageConfig": "ternpynq.train.config",
    "TernaryPEConfig": "ternpynq.train.config",
    "TrainConfig": "ternpynq.train.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ternpynq.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
