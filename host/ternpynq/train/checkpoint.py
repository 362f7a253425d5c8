"""Atomic checkpoints: write to a temporary file, fsync, then rename over the old one.

A run killed at any instant (SIGKILL included) leaves either the previous checkpoint or the
new one, never a torn file. Checkpoints hold tensors and plain data only and are read with
``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save_atomic(obj: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_atomic`` (no unpickling of arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a ternpynq checkpoint ({exc})") from exc
