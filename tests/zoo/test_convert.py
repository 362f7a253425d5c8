"""Post-training quantization: weight quantizer, calibration folder, a full small conversion."""

from __future__ import annotations

import numpy as np
import pytest
from zoo_marks import needs_zoo

from ternpynq.bundle.packing import trit_limit

pytestmark = needs_zoo


@pytest.mark.parametrize("trits", [2, 3, 5])
def test_weights_use_the_whole_trit_range_per_channel(trits):
    from ternpynq.zoo.quantize import quantize_weight

    w = np.random.default_rng(0).normal(0, 1, (6, 4, 3, 3)) * np.arange(1, 7)[:, None, None, None]
    w[2] = 0
    q, scale = quantize_weight(w, trits)
    limit = trit_limit(trits)
    peaks = np.abs(q.reshape(6, -1)).max(axis=1)
    assert peaks[2] == 0 and all(peaks[i] == limit for i in (0, 1, 3, 4, 5))
    err = np.abs(q * scale[:, None, None, None] - w)
    assert np.all(err <= scale[:, None, None, None] / 2 + 1e-12)  # round to nearest


def test_empty_calibration_folder_is_an_error(tmp_path, capsys):
    from ternpynq.cli import main

    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "notes.txt").write_text("no images here")
    code = main(["convert", "efficientnet-lite0", "--out", str(tmp_path / "m.tpq"),
                 "--calib", str(tmp_path / "calib")])  # fmt: skip
    assert code == 1
    assert "no images found" in capsys.readouterr().err


def test_convert_from_a_folder_gives_a_working_bundle(tmp_path, photos, capsys):
    from ternpynq.bundle import load
    from ternpynq.cli import main
    from ternpynq.runtime.network import Network
    from ternpynq.zoo.convert import to_codes

    calib = tmp_path / "calib"
    calib.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        photos[name].save(calib / f"{name}.jpg")
    out = tmp_path / "m.tpq"
    args = ["convert", "efficientnet-lite0", "--out", str(out), "--calib", str(calib)]
    assert main([*args, "--count", "4", "--trits", "4"]) == 0
    assert "±40 (4 trits)" in capsys.readouterr().out
    bundle = load(out)
    assert {layer.trits for layer in bundle.layers if layer.weight is not None} == {4}
    assert bundle.extra["calibration"]["count"] == 4 and len(bundle.labels) == 1000
    logits = Network(bundle).run(to_codes([photos["coffee"]]))
    assert bundle.labels[int(logits[0].argmax())] == "espresso"


def test_real_wide_projection_is_exact_on_emu(state):
    # block 15's 1152-input projection at T = 7 (±1093): its bound passes 2^24, so emu takes
    # the float64 path; it must equal the integer reference on uint8 activations
    from ternpynq.bundle.validate import accumulator_peak
    from ternpynq.runtime import ops, reference
    from ternpynq.zoo import graph
    from ternpynq.zoo.quantize import ConvertConfig, quantize_layer

    layers = {layer.name: layer for layer in graph.fold(state)}
    float_layer = layers["block15.project"]
    scales = {float_layer.input: 6 / 255, float_layer.name: 0.05}
    layer = quantize_layer(float_layer, scales, ConvertConfig(trits=7))
    assert accumulator_peak(layer.weight, (0, 255)) >= 2**24
    x = np.random.default_rng(1).integers(180, 256, (1, 1152, 7, 7))
    assert ops.float_type(layer.weight, x) is np.float64
    acc = ops.accumulate(layer, x)
    assert np.array_equal(acc, reference.make_accumulate(16)(layer, x))
