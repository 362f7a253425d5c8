"""Datasets as in-memory tensors or lazily read image files, served as plain tensor batches.

No DataLoader workers: Fashion-MNIST lives in one uint8 tensor (on the GPU when there is one)
and augmentation is done batch-wise on that device. ImageFolder reads files with PIL, one batch
at a time. Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ternpynq.bundle.schema import InputSpec

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_LABELS = [
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
]  # fmt: skip
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DataError(ValueError):
    """A dataset is missing or malformed; the message says how to get it."""


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8 or raw[:2] != b"\0\0":
        raise DataError(f"{path}: not an idx file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated idx file")
    return data.reshape(dims)


def load_fashion_mnist(
    data_dir: str | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one split ("train" or "test")."""
    root = Path(data_dir or os.environ.get("TERNPYNQ_FASHION_MNIST", FASHION_DIR))
    prefix = "train" if split == "train" else "t10k"
    images, labels = (
        root / f"{prefix}-images-idx3-ubyte.gz",
        root / f"{prefix}-labels-idx1-ubyte.gz",
    )
    for p in (images, labels):
        if not p.is_file():
            raise DataError(
                f"Fashion-MNIST not found: {p} is missing; install the Debian package "
                "'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) or pass "
                "--data DIR with the four idx .gz files"
            )
    x, y = _read_idx(images), _read_idx(labels).astype(np.int64)
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"{root}: images and labels of split {split!r} do not match")
    return x, y


def fashion_spec() -> InputSpec:
    """Fashion-MNIST input (28x28 grey); ``scale`` is set by export's calibration."""
    return InputSpec((28, 28), 1, FASHION_MEAN, FASHION_STD, 28, 1.0)


def imagenet_spec(size: int) -> InputSpec:
    return InputSpec(
        (size, size), 3, IMAGENET_MEAN, IMAGENET_STD, int(round(size * 256 / 224)), 1.0
    )


def normalize(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> normalised with the spec's mean/std."""
    mean = torch.tensor(spec.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop (zero padding ``pad``) per image, on x's device."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen, device=gen.device) < 0.5
    x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=gen.device).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
        idx = torch.arange(n, device=x.device)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2)
    return x


def batch_order(
    n: int, shuffle_seed: int | None, rank: int, device: torch.device
) -> tuple[torch.Tensor, torch.Generator]:
    """The image order of one epoch (the same on every rank: the seed fixes it) and a
    per-rank generator for augmentation on ``device``."""
    if shuffle_seed is None:
        order = torch.arange(n)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(shuffle_seed))
    gen = torch.Generator(device=device).manual_seed((shuffle_seed or 0) + 7919 * rank)
    return order.to(device), gen


class BatchedData:
    """Serves normalised (x, y) batches; subclasses say how images at some indices are read.

    Each rank gets every ``world``-th image of a global batch, so DDP ranks see disjoint data.
    """

    labels: torch.Tensor
    spec: InputSpec
    device: torch.device
    order_device: torch.device  # where the shuffled index order lives (next to the images)
    augment_pad: int = 0  # random-crop padding in pixels when augmenting

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        """Images at ``indices`` as (N, C, H, W) float in [0, 1]."""
        raise NotImplementedError

    def batches(
        self,
        batch_size: int,
        shuffle_seed: int | None = None,
        rank: int = 0,
        world: int = 1,
        do_augment: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, gen = batch_order(len(self), shuffle_seed, rank, self.order_device)
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size][rank::world]
            x = self.load(idx)
            if do_augment:
                x = augment(x, self.augment_pad, gen)
            yield normalize(x.to(self.device), self.spec), self.labels[idx].to(self.device)


class TensorData(BatchedData):
    """A split held as one uint8 tensor (N, C, H, W) plus labels, batched by index."""

    augment_pad = 2  # ±2-pixel random crops

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, spec: InputSpec, device: torch.device
    ):
        x = torch.from_numpy(np.array(images, copy=True))
        self.images = (x[:, None] if x.dim() == 3 else x).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        self.spec = spec
        self.device = self.order_device = device

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        return self.images[indices].float() / 255.0


def fashion_mnist(
    data_dir: str | None, split: str, device: torch.device, subset: int | None = None
) -> TensorData:
    x, y = load_fashion_mnist(data_dir, split)
    if subset:
        x, y = x[:subset], y[:subset]
    return TensorData(x, y, fashion_spec(), device)
