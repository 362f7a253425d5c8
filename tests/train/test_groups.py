import pytest
import torch

from ternpynq.train.groups import (
    compression_rate,
    expand_mask,
    group_norms,
    group_view,
    layer_stats,
    summarize,
)


def test_group_view_pads_a_partial_last_group():
    w = torch.arange(2 * 5 * 3 * 3, dtype=torch.float32).reshape(2, 5, 3, 3)
    v = group_view(w, 4)
    assert v.shape == (2, 2, 36)
    assert torch.equal(v[0, 0], w[0, :4].reshape(-1))
    assert torch.equal(v[1, 1, :9], w[1, 4].reshape(-1))
    assert torch.count_nonzero(v[:, 1, 9:]) == 0  # padding


def test_group_norms_and_mask_expansion_agree():
    w = torch.ones(3, 20, 3, 3)
    assert torch.allclose(group_norms(w, 16), torch.tensor([[12.0, 6.0]] * 3))
    mask = torch.tensor([[True, False], [False, True], [True, True]])
    full = expand_mask(mask, w.shape, 16)
    assert full.shape == (3, 20, 1, 1)
    assert full[0, :16].eq(1).all() and full[0, 16:].eq(0).all()
    assert full[1, :16].eq(0).all() and full[1, 16:].eq(1).all()


def test_layer_stats_on_a_constructed_weight():
    # 2 filters x 2 groups (g=4, Cin=6: the second group is partial, 2 channels x 1)
    w = torch.zeros(2, 6, 1, 1)
    w[0, :4, 0, 0] = torch.tensor([1.0, -1.0, 1.0, 1.0])  # full, 0% zeros
    w[0, 4:, 0, 0] = torch.tensor([1.0, 0.0])  # partial, 50% zeros
    w[1, :4, 0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # 75% zeros
    s = layer_stats(w, 4)  # group (1, 1) is empty
    assert s == {
        "groups": 4,
        "kept": 3,
        "density": 0.75,
        "s_min": 0.0,
        "sparsity": pytest.approx(125 / 300),
    }


def test_cr_formula_and_model_summary():
    assert compression_rate(0.5, 0.5) == 64.0
    assert compression_rate(0.0, 0.0) == float("inf")
    per = {
        "a": {"groups": 10, "kept": 5, "s_min": 0.25},
        "b": {"groups": 30, "kept": 15, "s_min": 0.1},
    }
    s = summarize(per)
    assert s["density"] == 0.5 and s["s_min"] == 0.1
    assert s["cr"] == pytest.approx(16 / (0.5 * 0.9))
