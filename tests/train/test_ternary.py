import torch

from ternpynq.train.ternary import ternarize, ternarize_trainable, ternary_parts


def test_ternarizer_threshold_and_alpha():
    w = torch.tensor([2.0, -1.0, 0.5, 0.09, -0.05, 0.0])  # delta = 0.05 * 2 = 0.1
    out = ternarize(w, 0.05)
    alpha = (2.0 + 1.0 + 0.5) / 3
    assert torch.allclose(out, torch.tensor([alpha, -alpha, alpha, 0.0, 0.0, 0.0]))


def test_ste_gradient_is_zero_where_abs_w_at_least_one():
    w = torch.tensor([1.5, -1.0, 0.99, -0.3, 0.001], requires_grad=True)
    ternarize(w, 0.05).backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert torch.equal(w.grad, torch.tensor([0.0, 0.0, 3.0, 4.0, 5.0]))


def test_per_channel_alpha():
    w = torch.tensor([[1.0, -1.0, 0.0], [0.2, 0.1, -0.3]])
    codes, alpha = ternary_parts(w, 0.05, per_channel=True)
    assert torch.equal(codes, torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -1.0]]))
    assert torch.allclose(alpha.flatten(), torch.tensor([1.0, 0.2]))


def test_trainable_threshold_matches_forward_and_learns():
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    t = torch.tensor(0.3, requires_grad=True)
    out = ternarize_trainable(w, t)
    assert torch.equal(out, ternarize(w.detach(), 0.3))
    out.pow(2).sum().backward()
    assert t.grad is not None and t.grad.abs() > 0
    assert w.grad is not None
