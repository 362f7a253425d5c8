"""In-memory form of a bundle: typed dataclasses that mirror the JSON metadata.

Weights are held decoded (int8 integers, ``w = Σ 3^i t_i``); packing happens only in
``bundle.io``. Field meanings are fixed by docs/numerics.md and docs/bundle.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

FORMAT_NAME = "ternpynq.bundle"
# version 2 adds the SHA-256 of metadata and tensors (checked on load), the depthwise conv and
# padding per side; version-1 files still load
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


class Op(str, Enum):
    CONV = "conv"
    DWCONV = "dwconv"  # depthwise: one input channel per output channel
    LINEAR = "linear"
    MAXPOOL = "maxpool"
    GAP = "gap"


WEIGHTED_OPS = (Op.CONV, Op.DWCONV, Op.LINEAR)
REQUANT_OPS = (Op.CONV, Op.DWCONV, Op.LINEAR, Op.GAP)
WINDOW_OPS = (Op.CONV, Op.DWCONV, Op.MAXPOOL)  # ops with kernel, stride and padding

Padding = int | tuple[int, int, int, int]


@dataclass
class InputSpec:
    """How an image becomes the int8 input codes.

    ``size`` is the network input (H, W). The image is converted to ``channels`` (1 = "L",
    3 = "RGB"), its shorter side resized to ``resize`` and centre-cropped to ``size``; pixels in
    [0, 1] are normalised with ``mean``/``std`` (one per channel) and quantised with ``scale``:
    ``code = clip(rint(x / scale), -128, 127)``.
    """

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int
    scale: float
    interpolation: str = "bilinear"


@dataclass
class Requant:
    """Integer requantization of one layer (docs/numerics.md). Arrays are per output channel."""

    mult: np.ndarray  # (Cout,) int32
    bias: np.ndarray  # (Cout,) int32, in accumulator units
    shift: int
    lo: int
    hi: int
    res_mult: int = 0


@dataclass
class Layer:
    """One node of the layer graph; its output tensor is named after the layer.

    ``in_shape``/``out_shape`` are per image: (C, H, W) for feature maps, (C,) for vectors.
    ``weight`` (int8, (Cout, Cin, k, k), (C, 1, k, k) for dwconv, or (Cout, Cin)) and ``mask``
    (bool, (Cout, ceil(Cin/g)); (C, 1) for dwconv) are set for weighted ops only; ``requant``
    for conv/dwconv/linear/gap. ``padding`` is one int for all four sides or
    (top, left, bottom, right); ``pads(layer.padding)`` gives the 4-tuple either way.
    """

    name: str
    op: Op
    input: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_scale: float
    residual: str | None = None
    kernel: int = 1
    stride: int = 1
    padding: Padding = 0
    trits: int = 1
    weight: np.ndarray | None = None  # integer, |w| <= (3^trits - 1) / 2
    mask: np.ndarray | None = None
    requant: Requant | None = None
    alpha: float | None = None  # the ternary scale, for reporting only (folded into requant)


@dataclass
class Bundle:
    """A compressed, integer-only network with everything needed to classify images."""

    model: str
    labels: list[str]
    input: InputSpec
    g: int
    layers: list[Layer]
    output: str
    stats: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # free-form provenance (training config, command)
    version: int = FORMAT_VERSION

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def output_scale(self) -> float:
        return self.layer(self.output).out_scale


def group_count(cin: int, g: int) -> int:
    """Number of PE groups along the input channels (the last one may be partial)."""
    return -(-cin // g)


def pads(padding: Padding) -> tuple[int, int, int, int]:
    """A layer's padding as (top, left, bottom, right).

    >>> pads(1), pads((0, 0, 1, 1))
    ((1, 1, 1, 1), (0, 0, 1, 1))
    """
    if isinstance(padding, int):
        return (padding,) * 4
    return tuple(int(p) for p in padding)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding along one axis as (before, after); the extra pixel goes after.

    >>> same_padding(224, 3, 2), same_padding(56, 5, 2), same_padding(14, 5, 1)
    ((0, 1), (1, 2), (2, 2))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
