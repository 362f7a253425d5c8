import io

import numpy as np
import pytest
from PIL import Image

from ternpynq.bundle.schema import InputSpec
from ternpynq.runtime import preprocess as preprocess_module
from ternpynq.runtime.classifier import Classifier, softmax
from ternpynq.runtime.preprocess import (
    FORMATS,
    MAX_ASPECT,
    MAX_PIXELS,
    open_image,
    preprocess,
    quantize,
    to_pixels,
)

SPEC = InputSpec(size=(4, 4), channels=1, mean=(0.5,), std=(0.25,), resize=4, scale=1 / 32)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_quantisation_follows_the_spec():
    pixels = np.array([0.0, 0.5, 0.75, 1.0], np.float32).reshape(1, 1, 4)
    # (x - 0.5) / 0.25 / (1/32) = -64, 0, 32, 64
    assert quantize(pixels, SPEC).ravel().tolist() == [-64, 0, 32, 64]


def test_resize_then_centre_crop():
    spec = InputSpec(size=(2, 2), channels=1, mean=(0.0,), std=(1.0,), resize=2, scale=1 / 127)
    image = Image.fromarray(np.array([[0, 0, 255, 255, 0, 0]] * 3, np.uint8).repeat(2, 0))
    px = to_pixels(image, spec)  # 6x6 stays 6 wide after scaling shorter side 6 -> 2: 2x2
    assert px.shape == (1, 2, 2)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"])
def test_every_common_mode_is_accepted(mode):
    image = Image.new("RGB", (9, 7), (200, 30, 60))
    # Pillow 9 (PYNQ images) converts to I;16 only from L or I, not from RGB
    image = image.convert("L" if mode == "I;16" else mode).convert(mode)
    codes = preprocess(image, SPEC)
    assert codes.shape == (1, 4, 4) and codes.dtype == np.int8


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "I;16B", "I", "F"])
@pytest.mark.parametrize("channels", [1, 3])
def test_strip_by_strip_conversion_equals_whole_image(monkeypatch, mode, channels):
    rng = np.random.default_rng(0)
    if mode.startswith("I;16"):
        image = Image.frombytes(
            mode, (37, 41), rng.integers(0, 256, 2 * 37 * 41, np.uint8).tobytes()
        )
    elif mode in ("I", "F"):
        values = rng.standard_normal((41, 37)) * 1e6
        image = Image.fromarray(values.astype(np.int32 if mode == "I" else np.float32), mode)
    else:
        image = Image.fromarray(rng.integers(0, 256, (41, 37, 4), np.uint8), "RGBA")
        image = image.convert("RGB").quantize(64) if mode == "P" else image.convert(mode)
        image.info["transparency"] = 3  # P: palette index 3 is transparent
    spec = InputSpec(size=(8, 8), channels=channels, mean=(0.5,) * channels,
                     std=(0.25,) * channels, resize=9, scale=1 / 32)  # fmt: skip
    monkeypatch.setattr(preprocess_module, "STRIP_ROWS", 10**6)  # one strip: the whole image
    whole = to_pixels(image, spec)
    monkeypatch.setattr(preprocess_module, "STRIP_ROWS", 5)  # 9 strips, the last one short
    assert np.array_equal(to_pixels(image, spec), whole)


def test_unsupported_mode_is_a_clear_error():
    lab = Image.new("LAB", (5, 5))  # Pillow 9 cannot convert RGB to LAB
    with pytest.raises(ValueError, match="unsupported image mode 'LAB'"):
        preprocess(lab, SPEC)


def test_rgb_spec_converts_grey_images():
    spec = InputSpec(
        size=(3, 3), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, resize=3, scale=1 / 64
    )
    assert preprocess(_png(Image.new("L", (5, 5), 128)), spec).shape == (3, 3, 3)


def test_non_images_and_absurd_sizes_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="not a readable image"):
        open_image(b"hello, not an image")
    truncated = _png(Image.new("RGB", (64, 64), (1, 2, 3)))[:60]
    with pytest.raises(ValueError):
        open_image(truncated)
    huge = tmp_path / "huge.png"
    Image.new("1", (MAX_PIXELS // 1000 + 1, 1001)).save(huge)
    with pytest.raises(ValueError, match="outside"):
        open_image(huge)


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([[30000.0, 0.0, -30000.0]]))
    assert np.isfinite(p).all() and p[0, 0] == pytest.approx(1.0)


def test_classifier_ranks_by_the_backend_logits(tiny_bundle):
    clf = Classifier(tiny_bundle, backend="emu")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8))
    preds = clf.classify([image, _png(image)], top=3)
    assert [p.index for p in preds[0]] == [p.index for p in preds[1]]
    logits = clf.logits(preprocess(image, tiny_bundle.input)[None])[0]
    assert [p.index for p in preds[0]] == list(np.argsort(-logits, kind="stable")[:3])
    probs = [p.probability for p in preds[0]]
    assert probs == sorted(probs, reverse=True)


def test_unknown_backend_is_named(tiny_bundle):
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        Classifier(tiny_bundle, backend="gpu")


def test_thin_images_are_refused_before_decoding():
    for size in ((1_000_000, 1), (1, 5000), (MAX_ASPECT * 10 + 1, 10)):
        with pytest.raises(ValueError, match="aspect"):
            open_image(_png(Image.new("L", size)))
    with pytest.raises(ValueError, match="aspect"):  # a PIL image handed over directly
        to_pixels(Image.new("L", (4000, 10)), SPEC)
    assert preprocess(_png(Image.new("L", (MAX_ASPECT * 10, 10))), SPEC).shape == (1, 4, 4)


def test_only_listed_formats_are_opened():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ValueError, match="not a readable image"):
        open_image(eps)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PDF")
    with pytest.raises(ValueError, match="not a readable image"):
        open_image(buf.getvalue())
    for fmt in FORMATS:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format=fmt)
        assert open_image(buf.getvalue()).size == (8, 8)


def test_large_jpeg_is_decoded_reduced():
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 120, 150)).save(buf, format="JPEG")
    image = open_image(buf.getvalue(), min_side=256)
    assert min(image.size) >= 256 and image.size[0] <= 1000  # decoded at 1/4 or 1/8 scale
    assert open_image(buf.getvalue()).size == (4000, 3000)


def test_non_regular_files_are_refused():
    with pytest.raises(ValueError, match="not a regular file"):
        open_image("/dev/zero")
