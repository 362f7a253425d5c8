"""``ternpynq selftest``: passes on csim, fails loudly (naming the layer) on a wrong backend."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import ternpynq
from ternpynq.bundle.io import load, save
from ternpynq.cli import main
from ternpynq.overlay.backends import create_csim
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess
from ternpynq.runtime.selftest import RANDOM_NETWORKS, selftest
from ternpynq.runtime.synthetic import random_bundle


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random 1x28x28 bundle with three grey sample images (stand-in for the default model)."""
    folder = tmp_path_factory.mktemp("model")
    path = save(random_bundle("resnet20", prune=0.3, seed=8), folder / "model.tpq")
    samples = folder / "samples"
    samples.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(
            samples / f"{i}.png"
        )
    return path, samples


def test_selftest_cli_passes_on_csim_and_reports_speed(model, capsys):
    path, samples = model
    rc = main(["selftest", "--backend", "csim", "--model", str(path), "--samples", str(samples)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS  model random-resnet20 (3 sample images): 3 inputs, output codes identical" in out
    assert out.count("PASS") == 1 + len(RANDOM_NETWORKS)
    assert "images/s, emu" in out and "selftest passed" in out


def test_selftest_names_the_first_wrong_layer_and_fails(model, monkeypatch):
    def broken_csim(bundle, **options):
        backend = create_csim(bundle, **options)
        for (
            step
        ) in backend.driver.steps:  # a wrong rounding shift in one conv, as a bad build would
            if step.layer.name == "layer2.0.conv1":
                step.packed.regs["shift"] += 1
        return backend

    monkeypatch.setitem(backends._FACTORIES, "broken", broken_csim)
    monkeypatch.setitem(backends._PROBES, "broken", lambda: True)
    lines: list[str] = []
    path, samples = model
    assert not selftest("broken", path, samples, {}, out=lines.append)
    text = "\n".join(lines)
    assert "FAIL  model random-resnet20" in text
    assert "first differing layer: layer2.0.conv1" in text
    assert "selftest FAILED" in text


def test_selftest_without_the_default_model_checks_random_networks(tmp_path):
    lines: list[str] = []
    assert selftest("csim", tmp_path / "absent.tpq", tmp_path, {}, out=lines.append)
    assert lines[1].startswith("  SKIP  model:") and lines[-1] == (
        f"selftest passed: {len(RANDOM_NETWORKS)} of {len(RANDOM_NETWORKS)} checks"
    )


def test_selftest_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["selftest", "--backend", "csim", "--model", str(tmp_path / "x.tpq")]) == 1
    assert capsys.readouterr().err.strip().endswith("not found")


def test_default_model_sample_images_are_identical_on_csim():
    """Every sample image shipped with the default model, csim against emu (skipped, visibly,
    until the trained model is in the package)."""
    if not ternpynq.DEFAULT_MODEL.exists():
        pytest.skip(f"{ternpynq.DEFAULT_MODEL.name} is not in the package yet")
    images = sorted(ternpynq.SAMPLES_DIR.glob("*.png"))
    assert images, f"no sample images in {ternpynq.SAMPLES_DIR}"
    bundle = load(ternpynq.DEFAULT_MODEL)
    codes = np.stack([preprocess(path, bundle.input) for path in images])
    backend = backends.create("csim", bundle)
    try:
        assert np.array_equal(backend.run(codes), Network(bundle).run(codes))
    finally:
        backend.close()
    lines: list[str] = []
    assert selftest("csim", ternpynq.DEFAULT_MODEL, ternpynq.SAMPLES_DIR, {}, out=lines.append)
    assert f"({len(images)} sample images)" in lines[1]
