"""Turn images into the int8 input codes a bundle's input spec asks for (PIL + numpy)."""

from __future__ import annotations

import io
import os
import stat
import warnings
from math import ceil
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ternpynq.bundle.schema import InputSpec

MAX_PIXELS = 16_000_000  # decoded size; a larger image is refused before decoding
MAX_JPEG_PIXELS = 64_000_000  # a JPEG this large is still accepted if draft mode shrinks it
MAX_ASPECT = 20  # longer side / shorter side; thin images are refused before decoding
MAX_FILE_BYTES = 64 << 20
# Formats decoded in-process by Pillow; PostScript, PDF and the rest are never opened (EPS
# would run Ghostscript).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
_MODES = {1: "L", 3: "RGB"}
WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "F")
STRIP_ROWS = 256  # rows converted at a time (see _convert)


def open_image(
    source: str | os.PathLike | bytes | Image.Image,
    min_side: int | None = None,
    name: str | None = None,
) -> Image.Image:
    """Open a path, raw bytes or a PIL image; a non-image or an absurd size raises ValueError.

    Sizes are checked from the header, before any pixel is decoded. ``min_side``: a JPEG may
    be decoded at 1/2, 1/4 or 1/8 scale (Pillow's draft mode) while its shorter side stays at
    least this long, which bounds the memory a large photo costs. ``name`` labels errors
    (default: the path, or "upload" for bytes).
    """
    if isinstance(source, Image.Image):
        _check_size(source, "image", MAX_PIXELS)
        return source
    name = name or ("upload" if isinstance(source, bytes) else str(source))
    data = source if isinstance(source, bytes) else _read_file(Path(source))
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            # PIL only warns below twice its own limit; ours is enforced just below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if image.format == "JPEG":
                _check_size(image, name, MAX_JPEG_PIXELS)
                if min_side is not None and min(image.size) > 2 * min_side:
                    scale = min_side / min(image.size)
                    image.draft(None, (ceil(image.width * scale), ceil(image.height * scale)))
            _check_size(image, name, MAX_PIXELS)
            image.load()
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not a readable image (accepted: {', '.join(FORMATS)})") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{name}: {exc}") from None
    except (OSError, SyntaxError) as exc:  # truncated or corrupt data inside a known format
        raise ValueError(f"{name}: corrupt image data ({exc})") from None
    _check_size(image, name, MAX_PIXELS)
    return image


def _read_file(path: Path) -> bytes:
    """A regular file's bytes, never more than the cap (a device could stream forever)."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{path}: not a regular file")
    with path.open("rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _check_size(image: Image.Image, name: str, limit: int) -> None:
    w, h = image.size
    if w < 1 or h < 1 or w * h > limit:
        raise ValueError(f"{name}: image size {w}x{h} is outside 1..{limit} pixels")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ValueError(f"{name}: image size {w}x{h} is more than {MAX_ASPECT}:1 in aspect")


def to_pixels(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Mode conversion, shorter-side resize, centre crop -> (C, H, W) float32 in [0, 1]."""
    w, h = image.size
    scale = spec.resize / min(w, h)
    new = (max(spec.size[1], round(w * scale)), max(spec.size[0], round(h * scale)))
    # the resized image is sized before anything is resized: thin images would blow it up
    if new[0] * new[1] > (MAX_ASPECT + 1) * max(spec.resize, *spec.size) ** 2:
        raise ValueError(f"image size {w}x{h} is more than {MAX_ASPECT}:1 in aspect")
    image = _convert(image, _MODES[spec.channels])
    image = image.resize(new, _RESAMPLE[spec.interpolation])
    left, top = (new[0] - spec.size[1]) // 2, (new[1] - spec.size[0]) // 2
    image = image.crop((left, top, left + spec.size[1], top + spec.size[0]))
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _strips(image: Image.Image):
    """(top row, crop) for horizontal strips of ``STRIP_ROWS`` rows, top to bottom."""
    for top in range(0, image.height, STRIP_ROWS):
        yield top, image.crop((0, top, image.width, min(image.height, top + STRIP_ROWS)))


def _convert(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` ("L" or "RGB"): wide greyscale scaled to 8 bits by its own range,
    transparency composited over white.

    Both are done strip by strip: every step is per pixel, so the result is the same as
    converting the whole image at once, without its full-size float64 or RGBA intermediates
    (a 16-megapixel 16-bit PNG of 31 KB cost 280 MB that way, an RGBA one about 250 MB).
    """
    if image.mode in WIDE_GREY:  # two passes: the range, then the scaled codes
        lo = min(float(np.asarray(strip).min()) for _, strip in _strips(image))
        hi = max(float(np.asarray(strip).max()) for _, strip in _strips(image))
        span = max(hi - lo, 1e-12)
        grey = np.empty((image.height, image.width), np.uint8)
        for top, strip in _strips(image):
            rows = np.asarray(strip, dtype=np.float64)
            grey[top : top + len(rows)] = ((rows - lo) / span * 255).astype(np.uint8)
        image = Image.fromarray(grey)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        out = Image.new(mode, image.size)
        for top, strip in _strips(image):
            background = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            out.paste(
                Image.alpha_composite(background, strip.convert("RGBA")).convert(mode), (0, top)
            )
        return out
    try:
        return image.convert(mode)
    except ValueError:  # PIL has no conversion from modes such as LAB
        raise ValueError(f"unsupported image mode {image.mode!r}") from None


def quantize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(…, C, H, W) pixels in [0, 1] -> int8 codes: normalise, divide by scale, round, clamp."""
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    x = (pixels - mean) / std / np.float32(spec.scale)
    return np.clip(np.rint(x), -128, 127).astype(np.int8)


def preprocess(source, spec: InputSpec, name: str | None = None) -> np.ndarray:
    """One image (path, bytes or PIL) -> (C, H, W) int8 input codes; ``name`` labels errors."""
    return quantize(to_pixels(open_image(source, spec.resize, name), spec), spec)
