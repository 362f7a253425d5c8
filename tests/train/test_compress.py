import torch
import torch.nn.functional as F

from ternpynq.train import TernaryPEConfig, compress_, fix_mask_, stats
from ternpynq.train.compress import size_normalized_norms
from ternpynq.train.groups import group_norms
from ternpynq.train.models import resnet18, resnet20
from ternpynq.train.ternary import TernaryConv2d

TORCHVISION_KEYS = [
    "conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.weight",
    "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
    "layer4.1.conv2.weight", "fc.weight", "fc.bias",
]  # fmt: skip


def test_resnet18_uses_torchvision_key_names_and_keeps_them_after_compress():
    model = resnet18()
    keys = set(model.state_dict())
    assert set(TORCHVISION_KEYS) <= keys
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's count
    compress_(model, TernaryPEConfig(g=64))
    after = set(model.state_dict())
    assert keys <= after
    assert after - keys == {
        k.replace(".weight", ".mask")
        for k in keys
        if k.endswith("conv2.weight") or k.endswith("conv1.weight") and k != "conv1.weight"
    } | {k.replace("0.weight", "0.mask") for k in keys if k.endswith("downsample.0.weight")}  # noqa: E501


def test_first_conv_and_fc_stay_float():
    model = compress_(resnet20(), TernaryPEConfig())
    assert not isinstance(model.conv1, TernaryConv2d)
    assert isinstance(model.layer1[0].conv1, TernaryConv2d)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_fixed_mask_stays_fixed_through_training():
    torch.manual_seed(0)
    model = compress_(resnet20(), TernaryPEConfig(g=16, method="wpc"))
    conv = model.layer3[1].conv1
    with torch.no_grad():
        conv.weight[:5, :16] = 0  # five groups become empty
    s = fix_mask_(model, model.pe_config)
    assert conv.mask[:5, 0].eq(False).all() and conv.mask[5:].all()
    assert s["density"] < 1.0
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        loss = F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.count_nonzero(conv.weight[:5, :16]) == 0
    assert torch.count_nonzero(conv.effective_weight()[:5, :16]) == 0


def test_target_density_prunes_the_weakest_groups():
    torch.manual_seed(0)
    model = compress_(resnet20(), TernaryPEConfig(g=16, target_density=0.6))
    layers = [m for m in model.modules() if isinstance(m, TernaryConv2d)]
    norms = torch.cat([size_normalized_norms(m.weight, 16).flatten() for m in layers])
    s = fix_mask_(model, model.pe_config)
    kept = torch.cat([m.mask.flatten() for m in layers])
    assert abs(s["density"] - 0.6) < 0.01
    assert norms[kept].min() >= norms[~kept].max()


def test_mask_survives_a_state_dict_round_trip():
    a = compress_(resnet20(), TernaryPEConfig(target_density=0.5))
    fix_mask_(a, a.pe_config)
    b = compress_(resnet20(), TernaryPEConfig())
    b.load_state_dict(a.state_dict())
    assert stats(b, b.pe_config)["density"] == stats(a, a.pe_config)["density"]
    assert any(m.masked for m in b.modules() if isinstance(m, TernaryConv2d))


def test_density_cut_ranks_norm_per_sqrt_group_size():
    # 1x1 groups of 16 weights at 0.2 (norm 0.8) against 3x3 groups of 144 weights at 0.05 to
    # 0.15 (norm about 1.2): per weight the 1x1 groups are the strongest, so a cut by
    # norm / sqrt(size) keeps them all, where a cut by raw norm would drop them first
    torch.manual_seed(0)
    model = compress_(resnet20(), TernaryPEConfig(g=16, target_density=0.5))
    layers = [m for m in model.modules() if isinstance(m, TernaryConv2d)]
    downs = [m for m in layers if m.weight.shape[-1] == 1]
    assert len(downs) == 2
    with torch.no_grad():
        for m in layers:
            if m.weight.shape[-1] == 1:
                m.weight.fill_(0.2)
            else:
                m.weight.copy_(0.05 + 0.1 * torch.rand_like(m.weight))
    raw = torch.cat([group_norms(m.weight, 16).flatten() for m in layers])
    s = fix_mask_(model, model.pe_config)
    assert abs(s["density"] - 0.5) < 0.01
    assert all(m.mask.all() for m in downs)  # every 1x1 group kept
    kept = torch.cat([m.mask.flatten() for m in layers])
    assert raw[~kept].min() > 0.8  # each pruned 3x3 group had a larger raw norm than a 1x1 one
