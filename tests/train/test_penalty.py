import pytest
import torch

from ternpynq.train.config import TernaryPEConfig
from ternpynq.train.groups import group_norms
from ternpynq.train.penalty import layer_penalty, penalty, prox_, tau


def weight_with_norms() -> torch.Tensor:
    # 4 filters x 1 group (g=4, 1x1): group norms 4, 2, 1, 0.5 -> mean 1.875, tau(0.7) = 1.3125
    w = torch.zeros(4, 4, 1, 1)
    for i, n in enumerate((4.0, 2.0, 1.0, 0.5)):
        w[i, :, 0, 0] = n / 2
    return w


def test_wpc_gives_zero_gradient_above_tau_and_group_lasso_gradient_below():
    w = weight_with_norms().requires_grad_(True)
    cfg = TernaryPEConfig(g=4, method="wpc", lam=0.1, r=0.7, tau_mode="mean")
    penalty([w], cfg).backward()
    grad = w.grad[:, :, 0, 0]
    assert torch.equal(grad[0], torch.zeros(4)) and torch.equal(grad[1], torch.zeros(4))
    for i in (2, 3):  # d(lam * ||w||)/dw = lam * w / ||w||
        expect = 0.1 * w[i, :, 0, 0] / w[i].norm()
        assert torch.allclose(grad[i], expect.detach())


def test_plain_group_lasso_penalizes_every_group():
    w = weight_with_norms().requires_grad_(True)
    layer_penalty(w, TernaryPEConfig(g=4, method="naive")).backward()
    assert torch.allclose(w.grad[:, :, 0, 0], torch.full((4, 4), 0.5))


def test_tau_mean_and_rank():
    norms = torch.tensor([4.0, 2.0, 1.0, 0.5])
    assert tau(norms, 0.7, "mean").item() == pytest.approx(1.3125)
    assert tau(norms, 0.5, "rank").item() == pytest.approx(1.5)


def test_wpc_prox_zeroes_weak_groups_only():
    w = weight_with_norms()
    before = w.clone()
    prox_(w, TernaryPEConfig(g=4, method="wpc", lam=1.0, tau_mode="mean", r=0.7), lr=0.6)
    n = group_norms(w, 4).flatten()
    assert torch.equal(w[:2], before[:2])  # strong groups untouched
    assert n[2].item() == pytest.approx(0.4) and n[3].item() == 0.0


def test_naive_prox_shrinks_all_and_tern_does_nothing():
    w = weight_with_norms()
    prox_(w, TernaryPEConfig(g=4, method="naive", lam=1.0), lr=0.6)
    assert group_norms(w, 4).flatten().tolist() == pytest.approx([3.4, 1.4, 0.4, 0.0])
    w2 = weight_with_norms()
    prox_(w2, TernaryPEConfig(g=4, method="tern", lam=1.0), lr=0.6)
    assert torch.equal(w2, weight_with_norms())


def test_rank_tau_is_the_default_and_r_defaults_by_mode():
    cfg = TernaryPEConfig()
    assert (cfg.method.value, cfg.tau_mode.value, cfg.r, cfg.target_density) == (
        "wpc",
        "rank",
        0.3,
        None,
    )
    assert TernaryPEConfig(tau_mode="mean").r == 0.7
    assert TernaryPEConfig(tau_mode="rank", r=0.5).r == 0.5
    with pytest.raises(ValueError, match="quantile"):
        TernaryPEConfig(tau_mode="rank", r=1.5)


def test_rank_prox_zeroes_the_weakest_quantile():
    w = weight_with_norms()  # norms 4, 2, 1, 0.5: the 0.5-quantile is 1.5
    before = w.clone()
    prox_(w, TernaryPEConfig(g=4, method="wpc", lam=1.0, r=0.5), lr=1.0)
    assert torch.equal(w[:2], before[:2])
    assert group_norms(w, 4).flatten()[2:].tolist() == [0.0, 0.0]
