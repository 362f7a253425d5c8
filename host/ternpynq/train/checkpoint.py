"""Atomic checkpoints: write to a temporary file, fsync, then rename over the old one.

A run killed at any instant (SIGKILL included) leaves either the previous checkpoint or the
new one, never a torn file. Checkpoints hold tensors and plain data only and are read with
``weights_only=True``.
"""

from __future__ import annotations

import json
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


# what ``export`` reads from a checkpoint: key -> the JSON type its text must decode to
_JSON_FIELDS = {"train_config": dict, "pe_config": dict, "spec": dict, "labels": list}


def load_for_export(path: str | Path) -> dict:
    """``load``, then check every field export reads, so a wrong file is one clear error.

    A file with the marker but missing or mistyped fields would otherwise surface as a
    KeyError deep inside model rebuilding.
    """
    payload = load(path)
    for key, kind in _JSON_FIELDS.items():
        try:
            value = json.loads(payload[key])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: checkpoint field {key!r} is missing or not JSON") from None
        if not isinstance(value, kind):
            raise ValueError(f"{path}: checkpoint field {key!r} is not a JSON {kind.__name__}")
    if json.loads(payload["spec"]).get("channels") not in (1, 3):
        raise ValueError(f"{path}: checkpoint field 'spec' has no channel count of 1 or 3")
    if not isinstance(payload.get("stage"), str):
        raise ValueError(f"{path}: checkpoint field 'stage' is missing")
    model = payload.get("model")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise ValueError(f"{path}: checkpoint field 'model' is not a state dict of tensors")
    return payload
