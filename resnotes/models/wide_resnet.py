"""Wide Residual Networks for CIFAR.

Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016
(arXiv:1605.07146); official code: szagoruyko/wide-residual-networks.

WRN-d-k is a pre-activation ResNet made shallower and k times wider: three
groups of n = (d - 4) / 6 blocks at 32x32, 16x16 and 8x8, with 16k, 32k and 64k
channels. Each block is BN-ReLU-conv3x3-(dropout)-BN-ReLU-conv3x3 added to the
shortcut, which is the identity, or a 1x1 convolution where the shape changes.
The "4" in 6n + 4 counts the stem, the classifier and two of the 1x1
projection shortcuts (the paper counts them). For k > 1 there are three
projections, since the first group's first block also widens 16 to 16k
channels; for k = 1 there are two.
WRN-28-10 (n = 4, k = 10) has 36.5M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    bn_relu_pool_classify,
    conv3x3,
    count_from_depth,
    init_conv_weights,
    three_stages,
)
from .preact_resnet import PreActBasicUnit
from .registry import PaperFigures, register


def blocks_per_group(depth: int) -> int:
    """n for WRN-depth-k; a depth that breaks the rule raises."""
    return count_from_depth(depth, 6, 4, "6n+4")


class WideBasicUnit(PreActBasicUnit):
    """F = BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3, added to the shortcut (the paper's
    B(3,3)).

    As in the official code, BN-ReLU comes before the split only where the
    width changes (the projection reads the activated input).
    """

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, drop_rate: float = 0.0
    ):
        super().__init__(in_channels, width, stride)
        self.drop_rate = drop_rate

    def branch(self, preact: torch.Tensor) -> torch.Tensor:
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        out = F.dropout(out, self.drop_rate, self.training)
        return self.conv2(out)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 inputs; the paper's dropout variant uses
    ``drop_rate=0.3``."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        drop_rate: float = 0.0,
        num_classes: int = 10,
    ):
        super().__init__()
        n = blocks_per_group(depth)
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise ValueError(
                f"widen_factor must be an integer >= 1, got {widen_factor!r}"
            )
        if not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.stem = conv3x3(3, 16)
        groups, channels = [[], [], []], 16
        for group, _, stride in three_stages(n):
            width = (16, 32, 64)[group] * widen_factor
            groups[group].append(WideBasicUnit(channels, width, stride, drop_rate))
            channels = width
        self.groups = nn.Sequential(*(nn.Sequential(*blocks) for blocks in groups))
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)

    def units(self) -> list[nn.Module]:
        """The residual blocks in order, first to last."""
        return [block for group in self.groups for block in group]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.groups(x)  # (B, 64k, 8, 8)
        return bn_relu_pool_classify(x, self.bn, self.fc)


register(
    "wrn28_k10",
    WideResNet,
    recipe="wide_resnet",
    depth=28,
    widen_factor=10,
    paper=PaperFigures(
        "WRN-28-10",
        36.5e6,
        4.00,
        19.25,
        "Zagoruyko and Komodakis 2016, mean/std normalisation (survey Table 8: "
        "4.17 / 20.5, with ZCA whitening)",
    ),
)
register(
    "wrn16_k8",
    WideResNet,
    recipe="wide_resnet",
    depth=16,
    widen_factor=8,
    paper=PaperFigures("WRN-16-8", 11.0e6, None, None, "Zagoruyko and Komodakis 2016"),
)
