"""Turn images into the int8 input codes a bundle's input spec asks for (PIL + numpy)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ternpynq.bundle.schema import InputSpec

MAX_PIXELS = 64_000_000  # a larger image is refused before decoding (decompression bombs)
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
_MODES = {1: "L", 3: "RGB"}
WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "F")


def open_image(source: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """Open a path, raw bytes or a PIL image; a non-image or an absurd size raises ValueError."""
    if isinstance(source, Image.Image):
        image = source
    else:
        name = "upload" if isinstance(source, bytes) else str(source)
        stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb")  # noqa: SIM115
        try:
            with warnings.catch_warnings():
                # PIL only warns below twice its own limit; ours is enforced just below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(stream)
                _check_size(image, name)
                image.load()
        except UnidentifiedImageError:
            raise ValueError(f"{name}: not a readable image") from None
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{name}: {exc}") from None
        except (OSError, SyntaxError) as exc:  # truncated or corrupt data inside a known format
            raise ValueError(f"{name}: corrupt image data ({exc})") from None
        finally:
            stream.close()
    _check_size(image, "image")
    return image


def _check_size(image: Image.Image, name: str) -> None:
    w, h = image.size
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        raise ValueError(f"{name}: image size {w}x{h} is outside 1..{MAX_PIXELS} pixels")


def to_pixels(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Mode conversion, shorter-side resize, centre crop -> (C, H, W) float32 in [0, 1]."""
    if image.mode in (
        "I",
        "I;16",
        "I;16B",
        "I;16L",
        "F",
    ):  # wide greyscale: scale to 8 bits by its own range
        arr = np.asarray(image, dtype=np.float64)
        span = max(float(arr.max() - arr.min()), 1e-12)
        image = Image.fromarray(((arr - arr.min()) / span * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    try:
        image = image.convert(_MODES[spec.channels])
    except ValueError:  # PIL has no conversion from modes such as LAB
        raise ValueError(f"unsupported image mode {image.mode!r}") from None
    w, h = image.size
    scale = spec.resize / min(w, h)
    new = (max(spec.size[1], round(w * scale)), max(spec.size[0], round(h * scale)))
    image = image.resize(new, _RESAMPLE[spec.interpolation])
    left, top = (new[0] - spec.size[1]) // 2, (new[1] - spec.size[0]) // 2
    image = image.crop((left, top, left + spec.size[1], top + spec.size[0]))
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def quantize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(…, C, H, W) pixels in [0, 1] -> int8 codes: normalise, divide by scale, round, clamp."""
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    x = (pixels - mean) / std / np.float32(spec.scale)
    return np.clip(np.rint(x), -128, 127).astype(np.int8)


def preprocess(source, spec: InputSpec) -> np.ndarray:
    """One image (path, bytes or PIL) -> (C, H, W) int8 input codes."""
    return quantize(to_pixels(open_image(source), spec), spec)
