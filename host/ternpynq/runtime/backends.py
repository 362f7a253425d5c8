"""Backends by name: one interface, several implementations (docs: DESIGN.md "Backends").

A backend is built from a bundle and maps int8 input codes (N, C, H, W) to the output layer's
codes (N, K), exactly as the golden model ``emu`` does. Hardware imports happen inside the
backend's factory, so registering never imports pynq or onnxruntime.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ternpynq.bundle.schema import Bundle


class Backend(Protocol):
    name: str

    def run(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) int8 input codes -> (N, K) int32 output codes."""
        ...

    def close(self) -> None: ...


Factory = Callable[..., Backend]
_FACTORIES: dict[str, Factory] = {}
_PROBES: dict[str, Callable[[], bool]] = {}


def register(name: str, factory: Factory, available: Callable[[], bool] = lambda: True) -> None:
    """Register a backend factory ``factory(bundle, **options)`` under ``name``."""
    _FACTORIES[name] = factory
    _PROBES[name] = available


def names() -> list[str]:
    """All registered backend names, plus ``auto``."""
    _load_builtin()
    return [*_FACTORIES, "auto"]


def resolve(name: str) -> str:
    """Turn ``auto`` into a concrete name: pynq on a board, else onnx if installed, else emu."""
    _load_builtin()
    if name != "auto":
        if name not in _FACTORIES:
            raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(names())}")
        return name
    for candidate in ("pynq", "onnx"):
        if candidate in _FACTORIES and _PROBES[candidate]():
            return candidate
    return "emu"


def create(name: str, bundle: Bundle, **options) -> Backend:
    """Build the backend ``name`` (or ``auto``) for ``bundle``."""
    return _FACTORIES[resolve(name)](bundle, **options)


def module_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# Modules that call register() when imported; each stage adds its own line.
BUILTIN_MODULES = [
    "ternpynq.runtime.emu",
    "ternpynq.runtime.onnx_backend",
    "ternpynq.overlay.backends",
]
_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
