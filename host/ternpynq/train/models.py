"""ResNets with torchvision's module names (conv1, bn1, layerN.M.conv1, downsample.0, fc).

``resnet18`` is the ImageNet layout, so a torchvision ``resnet18`` state dict loads as is.
``resnet20`` is the CIFAR-style 16-32-64 network for 28x28 single-channel images, with 1x1
conv downsample shortcuts so every block maps to conv + fused residual in a bundle.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    """A BasicBlock ResNet; ``stem`` is "imagenet" (7x7/2 + maxpool) or "cifar" (3x3/1)."""

    def __init__(
        self,
        blocks: tuple[int, ...],
        widths: tuple[int, ...],
        num_classes: int,
        in_channels: int,
        stem: str,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.in_channels = in_channels
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool: nn.Module | None = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool = None
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride if j == 0 else 1))
                cin = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in self.stages():
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet20(num_classes: int = 10, in_channels: int = 1) -> ResNet:
    """CIFAR-style ResNet-20 (3 stages of 3 blocks, 16-32-64 channels)."""
    return ResNet((3, 3, 3), (16, 32, 64), num_classes, in_channels, "cifar")


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ImageNet ResNet-18 with torchvision's state-dict key names."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels, "imagenet")


ARCHS = {"resnet20": resnet20, "resnet18": resnet18}


def build(arch: str, num_classes: int, in_channels: int) -> ResNet:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[arch](num_classes=num_classes, in_channels=in_channels)


def load_init(model: nn.Module, path: str) -> None:
    """Load a float state dict (e.g. torchvision's resnet18 weights) into ``model``.

    A classifier of another size (``fc``) is skipped, so an ImageNet checkpoint can start a
    model with fewer classes. Loaded with ``weights_only=True``: nothing is unpickled.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown:
        raise ValueError(f"{path}: keys not in the model: {', '.join(unknown[:5])}")
    fitting = {k: v for k, v in state.items() if own[k].shape == v.shape}
    skipped = [k for k in state if k not in fitting]
    if any(not k.startswith("fc.") for k in skipped):
        raise ValueError(f"{path}: shape mismatch for {', '.join(skipped[:5])}")
    model.load_state_dict(fitting, strict=False)
