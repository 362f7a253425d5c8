"""Atomic checkpoints: write to a temporary file, fsync, then rename over the old one.

A run killed at any instant (SIGKILL included) leaves either the previous checkpoint or the
new one, never a torn file. Checkpoints hold tensors and plain data only and are read with
``weights_only=True``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

FORMAT = "ternpynq.checkpoint/1"


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
        payload = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a ternpynq checkpoint ({first})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a ternpynq checkpoint (no {FORMAT!r} marker)")
    return payload
