"""ternpynq: ternary, PE-wise pruned CNNs from training to PYNQ FPGA overlays.

>>> import ternpynq
>>> from ternpynq.runtime.synthetic import random_bundle
>>> ternpynq.Classifier(random_bundle("tiny")).backend_name
'emu'
"""

from __future__ import annotations

from pathlib import Path

from ternpynq.bundle import Bundle, BundleError, load
from ternpynq.runtime.classifier import Classifier, Prediction

__version__ = "0.1.0"

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = MODELS_DIR / "fashion-mnist-resnet20.tpq"
IMAGENET_MODEL = MODELS_DIR / "imagenet-efficientnet-lite0.tpq"
SAMPLES_DIR = MODELS_DIR / "samples"  # Fashion-MNIST test images, one per class
PHOTOS_DIR = MODELS_DIR / "photos"  # two real photos for the ImageNet model
# shipped models by the name any ``--model`` option accepts
MODELS = {"imagenet": IMAGENET_MODEL, "fashion-mnist": DEFAULT_MODEL}


def resolve_model(name_or_path: str | Path) -> Path:
    """A shipped model's name (``imagenet``, ``fashion-mnist``) or a path -> a bundle path.

    >>> resolve_model("imagenet").name
    'imagenet-efficientnet-lite0.tpq'
    >>> str(resolve_model("my.tpq"))
    'my.tpq'
    """
    return MODELS.get(str(name_or_path), Path(name_or_path))


__all__ = [
    "Bundle",
    "BundleError",
    "Classifier",
    "DEFAULT_MODEL",
    "IMAGENET_MODEL",
    "MODELS",
    "PHOTOS_DIR",
    "Prediction",
    "SAMPLES_DIR",
    "load",
    "resolve_model",
]
