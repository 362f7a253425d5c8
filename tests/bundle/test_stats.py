import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.schema import Layer, Op
from ternpynq.bundle.stats import (
    compression_rate,
    group_mask,
    group_view,
    layer_stats,
    model_stats,
)
from ternpynq.runtime.synthetic import random_bundle


def test_groups_follow_input_channels_with_a_partial_last_group():
    w = np.zeros((2, 5, 3, 3), np.int16)
    w[1, 4, 2, 2] = 1  # output 1, channel 4 -> group 1 when g = 4
    assert group_view(w, 4).shape == (2, 2, 36)
    assert group_mask(w, 4).tolist() == [[False, False], [False, True]]


def test_density_s_min_and_cr_on_a_constructed_layer():
    # g = 2, k = 1, two outputs x two groups; output 0's second group is pruned
    w = np.array([[1, 0, 0, 0], [1, 1, -1, 0]], np.int16).reshape(2, 4, 1, 1)
    layer = Layer("c", Op.CONV, "input", (4, 1, 1), (2, 1, 1), 1.0, weight=w, mask=group_mask(w, 2))
    s = layer_stats(layer, 2)
    # kept groups [1,0], [1,1], [-1,0]: zero fractions 0.5, 0.0, 0.5
    assert (s["kept_groups"], s["density"], s["s_min"]) == (3, 0.75, 0.0)
    assert compression_rate(s["density"], s["s_min"]) == pytest.approx(16 / 0.75)
    w[1, 1] = 0  # now every kept group is half zero
    s = layer_stats(layer, 2)
    assert (s["density"], s["s_min"]) == (0.75, 0.5)
    assert compression_rate(s["density"], s["s_min"]) == pytest.approx(16 / (0.75 * 0.5))
    assert s["stream_bytes"] == 2  # 3 groups x 2 weights x 2 bits = 12 bits -> 2 bytes


def _layer(name: str, w: np.ndarray, mask: np.ndarray, trits: int = 1) -> Layer:
    cin = w.shape[1]
    k = w.shape[2] if w.ndim == 4 else 1
    return Layer(name, Op.CONV, "input", (cin, 4, 4), (w.shape[0], 4, 4), 1.0, kernel=k,
                 padding=k // 2, trits=trits, weight=w, mask=mask)  # fmt: skip


def test_density_comes_from_the_weights_and_a_kept_empty_group_is_refused():
    w = np.zeros((2, 4, 1, 1), np.int16)
    w[0, 0] = 1  # output 0, group 0 (g = 2) holds a weight; the other three groups are empty
    mask = np.array([[True, True], [False, False]])  # claims output 0's empty group 1 is kept
    with pytest.raises(BundleError, match=r"^layers\[3\]\.mask: marks group \(0, 1\)") as err:
        layer_stats(_layer("c", w, mask), 2, "layers[3]")
    assert err.value.field == "layers[3].mask"
    s = layer_stats(_layer("c", w, group_mask(w, 2)), 2)
    assert (s["kept_groups"], s["density"]) == (1, 0.25)
    # a multi-trit layer is dense by design: its mask may keep an all-zero group
    assert layer_stats(_layer("c", w, np.ones((2, 2), bool), trits=5), 2)["density"] == 0.25


def test_d_by_groups_and_by_weights_differ_when_group_sizes_differ():
    # g = 2: a 3x3 layer (groups of 18 weights) with 1 of 2 groups kept, and a 1x1 layer
    # (groups of 2 weights) with 2 of 2 kept: D by groups 3/4, by weights (18 + 4) / 40
    w3 = np.zeros((1, 4, 3, 3), np.int16)
    w3[0, 0, 1, 1] = 1
    w1 = np.ones((2, 2, 1, 1), np.int16)
    layers = [_layer("a", w3, group_mask(w3, 2)), _layer("b", w1, group_mask(w1, 2))]
    s = model_stats(SimpleNamespace(g=2, layers=layers))
    assert s["density"] == 0.75 and s["density_weights"] == pytest.approx(22 / 40)
    assert s["cr"] == pytest.approx(16 / 0.75) and s["cr_by_weights"] == pytest.approx(16 / 0.55)


def test_model_stats_names_the_layer_index_of_a_bad_mask():
    bundle = random_bundle("tiny", seed=0)
    i, layer = next((i, x) for i, x in enumerate(bundle.layers) if x.trits == 1)
    layer.weight[0] = 0  # empty output 0's groups but leave the mask keeping them
    layer.mask[0] = True
    with pytest.raises(BundleError, match=rf"^layers\[{i}\]\.mask: marks group \(0, 0\)"):
        model_stats(bundle)


def test_inspect_reports_d_by_groups_and_by_weights(tmp_path, capsys):
    from ternpynq.bundle import save
    from ternpynq.bundle.commands import report, run

    path = tmp_path / "m.tpq"
    save(random_bundle("resnet20", seed=1), path)
    info = report(path)
    assert info["density"] != info["density_weights"] and 0 < info["density_weights"] < 1
    run(argparse.Namespace(model=path, json=False))
    out = capsys.readouterr().out
    assert f"D by groups = {info['density']:.4f}" in out
    assert f"D by weights = {info['density_weights']:.4f}" in out
    assert "with D by groups (the paper's)" in out
