import numpy as np
import pytest

from ternpynq.bundle.schema import Layer, Op
from ternpynq.bundle.stats import compression_rate, group_mask, group_view, layer_stats


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
