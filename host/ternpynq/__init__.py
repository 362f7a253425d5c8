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
SAMPLES_DIR = MODELS_DIR / "samples"

__all__ = [
    "Bundle",
    "BundleError",
    "Classifier",
    "DEFAULT_MODEL",
    "Prediction",
    "SAMPLES_DIR",
    "load",
]
