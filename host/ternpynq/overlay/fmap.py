"""Feature maps in DDR: element types, pixels padded to whole g-channel words, and their
paired pack/unpack (docs/overlay.md "DDR layouts"). The kernel reads them through one accessor
(``lb_at``, ``fm_load``/``fm_store`` in tpq_layer.hpp)."""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Bundle, Layer, Op
from ternpynq.overlay.hostpack import packed_layer

ELEM_U8, ELEM_I8, ELEM_I16 = 0, 1, 2
ELEM_RANGE = {ELEM_U8: (0, 255), ELEM_I8: (-128, 127), ELEM_I16: (-32768, 32767)}
ELEM_DTYPE = {ELEM_U8: np.dtype("u1"), ELEM_I8: np.dtype("i1"), ELEM_I16: np.dtype("<i2")}


class StreamError(ValueError):
    """Bytes that do not decode as the overlay's stream, or a layer it cannot hold."""


def elem_type(lo: int, hi: int) -> int:
    """Narrowest DDR element type holding codes in [lo, hi]: u8, else i8, else i16."""
    for kind in (ELEM_U8, ELEM_I8, ELEM_I16):
        low, high = ELEM_RANGE[kind]
        if low <= lo and hi <= high:
            return kind
    raise StreamError(f"codes in [{lo}, {hi}] do not fit 16 bits")


def elem_bytes(kind: int) -> int:
    return ELEM_DTYPE[kind].itemsize


def pitch(channels: int, g: int) -> int:
    """Elements per pixel in DDR: the channels padded to whole g-channel words, so that lane l of
    a lane word always reads line-buffer bank l (docs/overlay.md "Line buffer")."""
    return -(-channels // g) * g


def pack_fmap(codes: np.ndarray, kind: int, pixel: int | None = None) -> np.ndarray:
    """(N, C, H, W) or (N, C) integer codes -> NHWC bytes (uint8) of element type ``kind``, each
    pixel ``pixel`` elements (default C), the padding channels zero."""
    codes = np.asarray(codes)
    low, high = ELEM_RANGE[kind]
    if codes.size and (codes.min() < low or codes.max() > high):
        raise StreamError(f"codes outside [{low}, {high}] cannot be stored as element type {kind}")
    nhwc = codes.transpose(0, 2, 3, 1) if codes.ndim == 4 else codes
    c = nhwc.shape[-1]
    if pixel is not None and pixel != c:
        if pixel < c:
            raise StreamError(f"a pixel of {pixel} elements cannot hold {c} channels")
        nhwc = np.concatenate([nhwc, np.zeros((*nhwc.shape[:-1], pixel - c), nhwc.dtype)], -1)
    return np.ascontiguousarray(nhwc.astype(ELEM_DTYPE[kind])).view(np.uint8).ravel()


def unpack_fmap(
    data: np.ndarray, shape: tuple[int, ...], kind: int, pixel: int | None = None
) -> np.ndarray:
    """NHWC bytes, ``pixel`` elements per pixel (default C) -> int32 codes of ``shape``
    ((N, C, H, W) or (N, C)); the padding channels are dropped."""
    dtype = ELEM_DTYPE[kind]
    c = shape[1]
    pixel = c if pixel is None else pixel
    count = int(np.prod(shape)) // c * pixel
    data = np.asarray(data, np.uint8)[: count * dtype.itemsize]
    if data.size != count * dtype.itemsize:
        raise StreamError(f"expected {count * dtype.itemsize} bytes for {shape}, got {data.size}")
    values = data.view(dtype).astype(np.int32)
    if len(shape) == 4:
        n, _, h, w = shape
        return values.reshape(n, h, w, pixel)[..., :c].transpose(0, 3, 1, 2).copy()
    return values.reshape(shape[0], pixel)[:, :c].copy()


def fmap_bytes(shape: tuple[int, ...], kind: int, pixel: int | None = None) -> int:
    """Bytes of one image's map of ``shape`` ((C, H, W) or (C,)), ``pixel`` elements a pixel."""
    pixel = shape[0] if pixel is None else pixel
    return int(np.prod(shape[1:], dtype=np.int64)) * pixel * elem_bytes(kind)


def out_pixel(layer: Layer, in_pixel: int, g: int) -> int:
    """Elements per pixel of ``layer``'s output: a max pool's as its input's, else padded."""
    return in_pixel if layer.op == Op.MAXPOOL else pitch(layer.out_shape[0], g)


def fmap_pixels(bundle: Bundle, g: int) -> dict[str, int]:
    """Elements per pixel of every tensor in DDR, padded to whole g-words (``pitch``): the
    network input as the overlay reads it (its conv's windows, when the host packs them; else
    as it comes), every other map as ``out_pixel`` lays it out."""
    first, c = packed_layer(bundle, g), bundle.input.channels
    out = {"input": c if first is None else pitch(first.kernel**2 * c, g)}
    for layer in bundle.layers:
        out[layer.name] = out_pixel(layer, out[layer.input], g)
    return out


def fmap_types(bundle: Bundle) -> dict[str, int]:
    """Element type of every tensor: int8 input, each layer's clamp range; pools pass through."""
    types = {"input": ELEM_I8}
    for layer in bundle.layers:
        if layer.op == Op.MAXPOOL:
            types[layer.name] = types[layer.input]
        else:
            types[layer.name] = elem_type(layer.requant.lo, layer.requant.hi)
    return types
