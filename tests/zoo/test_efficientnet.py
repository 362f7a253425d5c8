"""The float EfficientNet-Lite0 on the package's weights, its folded form and bad weights."""

from __future__ import annotations

import pytest
from zoo_marks import needs_zoo

pytestmark = needs_zoo

CATS = {"tiger cat", "Egyptian cat", "tabby"}


def _top(logits, labels, k=3):
    return [labels[i] for i in logits.argsort(descending=True)[:k].tolist()]


def test_float_model_recognises_the_offline_photos(state, photos):
    import torch

    from ternpynq.zoo.convert import to_codes
    from ternpynq.zoo.efficientnet import EfficientNetLite0
    from ternpynq.zoo.names import imagenet_labels
    from ternpynq.zoo.quantize import codes_to_float

    labels = imagenet_labels()
    x = codes_to_float(to_codes([photos[n] for n in ("chelsea", "coffee", "flower", "china")]))
    with torch.no_grad():
        logits = EfficientNetLite0(state)(x)
    assert set(_top(logits[0], labels)) == CATS
    assert _top(logits[1], labels, 1) == ["espresso"]
    assert _top(logits[2], labels, 1) == ["daisy"]
    assert _top(logits[3], labels, 1) == ["palace"]


def test_folded_network_models_the_unfolded_one(state):
    import torch

    from ternpynq.zoo import graph
    from ternpynq.zoo.efficientnet import EfficientNetLite0

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = EfficientNetLite0(state)(x)
    got = graph.run(graph.fold(state), x)["fc"]
    # float32 sums in another order: agreement to float rounding, not bit for bit
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert graph.fold(state)[1].padding == (1, 1, 1, 1)  # 3x3 stride 1
    assert graph.fold(state)[0].padding == (0, 0, 1, 1)  # TF SAME at stride 2: extra after


def test_missing_key_is_named(state):
    from ternpynq.zoo.efficientnet import check_state_dict

    bad = dict(state)
    del bad["_blocks.7._depthwise_conv.weight"]
    with pytest.raises(ValueError, match=r"'_blocks\.7\._depthwise_conv\.weight' is missing"):
        check_state_dict(bad)


def test_misshapen_key_is_named(state):
    import torch

    from ternpynq.zoo.efficientnet import check_state_dict

    bad = dict(state, **{"_fc.bias": torch.zeros(10)})
    with pytest.raises(ValueError, match=r"'_fc\.bias' has shape \(10,\), expected \(1000,\)"):
        check_state_dict(bad)


def test_unreadable_weights_file_is_one_line_error(tmp_path):
    from ternpynq.cli import main

    (tmp_path / "w.pth").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="not a readable state_dict"):
        from ternpynq.zoo.efficientnet import load_state_dict

        load_state_dict(tmp_path / "w.pth")
    code = main(["convert", "efficientnet-lite0", "--out", str(tmp_path / "m.tpq"),
                 "--weights", str(tmp_path / "w.pth")])  # fmt: skip
    assert code == 1 and not (tmp_path / "m.tpq").exists()
