"""The first conv's windows packed by the host (docs/overlay.md "Line buffer").

A network input has few channels (3 for RGB), so its k x k conv would leave most of a lane
word's g lanes empty: one word per tap, 3 of 64 lanes busy. Instead the host writes each output
pixel's window, (i, j, c) flattened, as the channels of one pixel, and the overlay runs the layer
as a 1 x 1 conv over those k*k*C channels (padded to whole g-words like every map). The sums are
the same products in another order, so the output is the same integers; the price is the bytes
the ARM writes, out_h * out_w * pitch(k*k*C) per image instead of in_h * in_w * C.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ternpynq.bundle.schema import Bundle, Layer, Op, pads
from ternpynq.bundle.stats import group_mask


def packed_layer(bundle: Bundle, g: int) -> Layer | None:
    """The layer that reads the network input through host-packed windows, or None: a k > 1
    conv of fewer than g channels that is the input's only reader."""
    readers = [la for la in bundle.layers if "input" in (la.input, la.residual)]
    if len(readers) != 1:
        return None
    layer = readers[0]
    narrow = layer.op is Op.CONV and layer.kernel > 1 and layer.in_shape[0] < g
    return layer if narrow and layer.residual is None else None


def as_pointwise(layer: Layer, g: int) -> Layer:
    """The same conv as a 1 x 1 conv over its windows' k*k*C channels, (i, j, c) order."""
    cout, cin, k, _ = layer.weight.shape
    weight = layer.weight.transpose(0, 2, 3, 1).reshape(cout, k * k * cin, 1, 1)  # mask: for g
    return dataclasses.replace(
        layer,
        in_shape=(k * k * cin, *layer.out_shape[1:]),
        kernel=1,
        stride=1,
        padding=0,
        weight=weight,
        mask=group_mask(weight, g),
    )


def windows(x: np.ndarray, layer: Layer) -> np.ndarray:
    """(N, C, H, W) input codes -> (N, k*k*C, out_h, out_w): each output pixel's zero-padded
    window, (i, j, c) flattened, as the input ``as_pointwise(layer)`` reads."""
    top, left, bottom, right = pads(layer.padding)
    k, s = layer.kernel, layer.stride
    _, oh, ow = layer.out_shape
    xp = np.pad(np.asarray(x), ((0, 0), (0, 0), (top, bottom), (left, right)))
    taps = [xp[:, :, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s]
            for i in range(k) for j in range(k)]  # fmt: skip
    return np.concatenate(taps, axis=1)  # tap-major, channel fastest: (i, j, c)


def overlay_layers(bundle: Bundle, g: int) -> list[Layer]:
    """The layers as the overlay runs them: the input's conv host-packed where it qualifies."""
    first = packed_layer(bundle, g)
    return [as_pointwise(la, g) if la is first else la for la in bundle.layers]
