"""Offline photos for calibration and fidelity checks, and their augmentation.

The photos come from packages already installed with the ``dev`` extra (scikit-image,
scikit-learn, matplotlib); nothing is downloaded. A user's own folder works too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ternpynq.runtime.preprocess import open_image

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "camera", "coins", "moon", "clock", "brick",
                  "grass", "gravel")  # fmt: skip
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def offline_photos() -> dict[str, Image.Image]:
    """Every offline photo by name, as RGB: scikit-image, scikit-learn and matplotlib samples."""
    try:
        import matplotlib.cbook
        import skimage.data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise ValueError(
            f"the offline photos need {exc.name} (pip install 'ternpynq[dev]'), "
            "or pass a folder of your own images"
        ) from None
    photos = {name: Image.fromarray(getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS}
    samples = load_sample_images()
    for fname, arr in zip(samples.filenames, samples.images, strict=True):
        photos[Path(fname).stem] = Image.fromarray(arr)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["grace_hopper"] = Image.open(f).convert("RGB")
    return {name: image.convert("RGB") for name, image in photos.items()}


def folder_images(folder: str | os.PathLike) -> list[Image.Image]:
    """Every image file under ``folder`` (recursively, sorted); none at all is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return [open_image(p).convert("RGB") for p in paths]


def augment(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (35-100 % of the area, aspect 3:4 to 4:3), flip and rotation (±25°)."""
    w, h = image.size
    area = w * h * rng.uniform(0.35, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw = int(min(w, round(np.sqrt(area * aspect))))
    ch = int(min(h, round(np.sqrt(area / aspect))))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    angle = float(rng.uniform(-25, 25))
    return out.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False)


def augmented(images: list[Image.Image], count: int, seed: int = 0) -> list[Image.Image]:
    """``count`` images: the originals first, then random augmentations of each in turn."""
    if not images:
        raise ValueError("no images to augment")
    rng = np.random.default_rng(seed)
    out = list(images[:count])
    while len(out) < count:
        out.append(augment(images[len(out) % len(images)], rng))
    return out
