"""Wide Residual Networks for CIFAR.

Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016
(arXiv:1605.07146); official code: szagoruyko/wide-residual-networks.

WRN-d-k is a pre-activation ResNet made shallower and k times wider: three
groups of n = (d - 4) / 6 blocks at 32x32, 16x16 and 8x8, with 16k, 32k and 64k
channels. Each block is BN-ReLU-conv3x3-(dropout)-BN-ReLU-conv3x3 added to the
shortcut, which is the identity, or a 1x1 convolution where the shape changes.
The "4" in 6n + 4 counts the stem, the classifier and the two projection
shortcuts that change the width between groups (the paper counts them).
WRN-28-10 (n = 4, k = 10) has 36.5M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .preact_resnet import PreActUnit, conv3x3
from .registry import register


def blocks_per_group(depth: int) -> int:
    """n for WRN-depth-k; a depth that breaks the rule raises."""
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth must be 6n+4 with n >= 1, got {depth!r}")
    return (depth - 4) // 6


class WideBasicUnit(PreActUnit):
    """BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3, added to the shortcut (the paper's B(3,3))."""

    def __init__(self, in_channels: int, width: int, stride: int = 1, drop_rate: float = 0.0):
        super().__init__(in_channels, width, stride, residual=True)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.bn1(x))
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        out = F.dropout(out, self.drop_rate, self.training)
        out = self.conv2(out)
        return out + self.shortcut(x, preact)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 inputs."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, drop_rate: float = 0.0, num_classes: int = 10):
        super().__init__()
        n = blocks_per_group(depth)
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise ValueError(f"widen_factor must be an integer >= 1, got {widen_factor!r}")
        if not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.depth, self.widen_factor = depth, widen_factor
        self.stem = conv3x3(3, 16)
        groups, channels = [], 16
        for index, base in enumerate((16, 32, 64)):
            width = base * widen_factor
            blocks = []
            for position in range(n):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(WideBasicUnit(channels, width, stride, drop_rate))
                channels = width
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.Sequential(*groups)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def units(self) -> list[nn.Module]:
        return [block for group in self.groups for block in group]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.groups(x)  # (B, 64k, 8, 8)
        x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 64k)
        return self.fc(x)


def wide_resnet(depth: int = 28, widen_factor: int = 10, drop_rate: float = 0.0, num_classes: int = 10) -> WideResNet:
    """WRN-depth-k, e.g. ``wide_resnet(depth=28, widen_factor=10)``; the paper's dropout variant uses ``drop_rate=0.3``."""
    return WideResNet(depth, widen_factor, drop_rate, num_classes)


_TABLE = "Zagoruyko and Komodakis 2016 (survey Table 8)"
register("wrn28_10", wide_resnet, recipe="wide_resnet", paper_params=36.5e6, source=_TABLE, depth=28, widen_factor=10)
register("wrn16_8", wide_resnet, recipe="wide_resnet", paper_params=11.0e6, source="Zagoruyko and Komodakis 2016", depth=16, widen_factor=8)
