"""The ``.tpq`` bundle: one file holding a compressed network and how to feed it."""

from ternpynq.bundle.errors import AccumulatorBoundError, BundleError
from ternpynq.bundle.io import from_bytes, load, save, to_bytes
from ternpynq.bundle.schema import Bundle, InputSpec, Layer, Op, Requant

__all__ = [
    "AccumulatorBoundError",
    "Bundle",
    "BundleError",
    "InputSpec",
    "Layer",
    "Op",
    "Requant",
    "from_bytes",
    "load",
    "save",
    "to_bytes",
]
