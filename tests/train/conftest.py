"""Shared fixtures: tiny Fashion-MNIST-format datasets written as real idx .gz files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_fashion(root: Path, train: int = 512, test: int = 200, seed: int = 0) -> Path:
    """Learnable 28x28 data in the idx format: class k is a bright bar at row band k."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(y):
            x[i, 2 + 2 * k : 4 + 2 * k, 4:24] = 230
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    return make_fashion(tmp_path_factory.mktemp("fashion"))
