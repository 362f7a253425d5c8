"""The depthwise-conv weight stream (kernel mode ``dwconv``; docs/overlay.md "Depthwise").

Lanes carry channels. For each block of ``g`` channels, for each trit plane ``T-1 .. 0`` (Horner
order), for each tap ``(i, j)`` in raster order: one lane word, lane ``l`` holding the trit of
channel ``b*g + l`` at that tap and plane (zero past the last channel), in the bundle's 2-bit
code at bits ``2(l%4)`` of byte ``l//4``. There are no headers and nothing is skipped: a pruned
channel's weights are zero. The stream is zero-padded to ``STREAM_ALIGN`` bytes; ``C`` x
(int32 mult, int32 bias) follow it, as for conv.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.packing import pack_codes, to_trit_planes, unpack_codes
from ternpynq.overlay.fmap import StreamError
from ternpynq.overlay.stream import STREAM_ALIGN


def dw_words(channels: int, k: int, trits: int, g: int) -> int:
    """Lane words of a depthwise layer's stream: blocks x planes x taps."""
    return -(-channels // g) * trits * k * k


def pack_dw_weights(weight: np.ndarray, trits: int, g: int) -> np.ndarray:
    """Depthwise integer weights (C, 1, k, k) -> the lane-word stream (uint8), padded."""
    w = np.asarray(weight)[:, 0]  # (C, k, k)
    c, k, _ = w.shape
    nb = -(-c // g)
    lanes = np.zeros((trits, nb * g, k, k), np.int8)
    lanes[:, :c] = to_trit_planes(w, trits)
    # (T, nb, g, k, k) -> (nb, T from the top plane, k, k, g): lane l fastest
    words = lanes.reshape(trits, nb, g, k, k)[::-1].transpose(1, 0, 3, 4, 2)
    stream = pack_codes(words.ravel())
    return np.concatenate([stream, np.zeros((-stream.size) % STREAM_ALIGN, np.uint8)])


def unpack_dw_weights(stream: np.ndarray, shape: tuple[int, ...], trits: int, g: int) -> np.ndarray:
    """The lane-word stream -> depthwise integer weights of ``shape`` (C, 1, k, k) (int16)."""
    c, _, k, _ = shape
    nb = -(-c // g)
    count = dw_words(c, k, trits, g) * g
    data = np.asarray(stream, np.uint8)
    if data.size * 4 < count:
        raise StreamError(f"stream ends at byte {data.size}, the layer needs {count // 4}")
    words = unpack_codes(data[: count // 4], count, "stream").reshape(nb, trits, k, k, g)
    if np.any(words[-1, ..., c - (nb - 1) * g :]):
        raise StreamError("non-zero weight on a lane past the last channel")
    planes = words.transpose(1, 0, 4, 2, 3)[::-1].reshape(trits, nb * g, k, k)[:, :c]
    scale = (3 ** np.arange(trits, dtype=np.int16)).reshape(trits, 1, 1, 1)
    return (planes.astype(np.int16) * scale).sum(axis=0, dtype=np.int16)[:, None]
