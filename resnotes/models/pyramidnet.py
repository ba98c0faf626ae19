"""PyramidNet for CIFAR.

Han, Kim and Kim, "Deep Pyramidal Residual Networks", CVPR 2017
(arXiv:1610.02915); official code: jhkim89/PyramidNet (Torch) and
dyhan0920/PyramidNet-PyTorch.

A ResNet doubles its width at the first unit of each stage and keeps it
constant in between. PyramidNet instead widens *every* unit by the same step,
formula (2) of the paper:

    D_1 = 16 + alpha / N,   D_k = D_{k-1} + alpha / N,

where N is the total number of residual units, so the last unit is 16 + alpha
channels wide (times 4 at the output of a bottleneck unit). As in the official
code, 16 is the stem's width and the first unit already adds alpha / N (the
survey writes D_1 = 16). The multiplicative variant the paper compares against
multiplies by alpha ** (1 / N) instead.

Each unit is BN-conv-BN-ReLU-conv-BN (basic) or BN-conv1x1-BN-ReLU-conv3x3-BN-
ReLU-conv1x1-BN (bottleneck), with no ReLU after the addition. Against the
pre-activation unit (BN-ReLU-conv-BN-ReLU-conv), the paper removes the first
ReLU, which sits on the residual branch (the shortcut has none to remove), and
adds a BN at the branch's end. The shortcut is the identity with its missing
channels filled with zeros, and a 2x2 average pool where the unit
downsamples: PyramidNet has no projection shortcuts.

- basic units: depth = 6n + 2, e.g. PyramidNet-110 (n=18);
- bottleneck units: depth = 9n + 2, e.g. PyramidNet-272 (n=30).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    bn_relu_pool_classify,
    conv1x1,
    conv3x3,
    init_conv_weights,
    three_stages,
)
from .preact_resnet import units_per_stage
from .registry import PaperFigures, register

WIDENINGS = ("additive", "multiplicative")


def pyramid_widths(
    num_units: int, alpha: float, widening: str = "additive", start: int = 16
) -> list[int]:
    """The width D_k of each of the ``num_units`` units, k = 1..N (formula 2).

    Additive: D_k = D_{k-1} + alpha / N, that is 16 + k alpha / N.
    Multiplicative: D_k = D_{k-1} * alpha ** (1 / N), that is 16 alpha ** (k / N).

    Differs from paper: formula (2) floors each D_k. Like the official code, we
    keep the exact value and round it half up per unit (``floor(x + 0.5)``, as
    the Torch code does), so that the last unit is exactly ``start + alpha``
    wide (``start * alpha`` for the multiplicative variant).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if widening not in WIDENINGS:
        raise ValueError(
            f"widening must be one of {', '.join(WIDENINGS)}, got {widening!r}"
        )
    if widening == "multiplicative" and alpha < 1:
        raise ValueError(
            f"multiplicative widening needs alpha >= 1 (the final width is 16 * "
            f"alpha), got {alpha}"
        )
    if widening == "additive":
        exact = [start + k * alpha / num_units for k in range(1, num_units + 1)]
    else:
        exact = [start * alpha ** (k / num_units) for k in range(1, num_units + 1)]
    return [math.floor(d + 0.5) for d in exact]


def zero_pad_shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """The identity, average-pooled 2x2 if ``stride`` is 2, with zero channels appended.

    ``F.pad`` keeps the input's device and dtype, so this works on CPU, on any GPU
    and under autocast.
    """
    if stride != 1:
        x = F.avg_pool2d(x, 2)
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


class PyramidUnit(nn.Module):
    """What both kinds of unit share: the zero-padded shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        if width * self.expansion < in_channels:
            raise ValueError("a pyramidal unit cannot narrow its input")
        self.out_channels = width * self.expansion
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return zero_pad_shortcut(x, self.out_channels, self.stride)

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The unit with its residual branch deleted (for lesion studies)."""
        return self.shortcut(x)


class PyramidBasicUnit(PyramidUnit):
    """BN-conv3x3-BN-ReLU-conv3x3-BN, added to the zero-padded shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn3 = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(x)
        out = self.conv1(out)
        out = F.relu(self.bn2(out))
        out = self.conv2(out)
        out = self.bn3(out)
        return out + self.shortcut(x)


class PyramidBottleneckUnit(PyramidUnit):
    """BN-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (4x wider)-BN, added to the
    shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)  # the official code strides the 3x3
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)
        self.bn4 = nn.BatchNorm2d(width * self.expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(x)
        out = self.conv1(out)
        out = F.relu(self.bn2(out))
        out = self.conv2(out)
        out = F.relu(self.bn3(out))
        out = self.conv3(out)
        out = self.bn4(out)
        return out + self.shortcut(x)


class PyramidNet(nn.Module):
    """PyramidNet for 32x32 inputs: three stages whose units widen one step at a
    time."""

    def __init__(
        self,
        depth: int = 110,
        alpha: float = 48,
        bottleneck: bool = False,
        widening: str = "additive",
        num_classes: int = 10,
    ):
        super().__init__()
        n = units_per_stage(depth, bottleneck)
        unit = PyramidBottleneckUnit if bottleneck else PyramidBasicUnit
        self.widths = pyramid_widths(3 * n, alpha, widening)
        # The official stem is conv-BN, with no ReLU: the first unit starts with BN.
        self.stem = nn.Sequential(conv3x3(3, 16), nn.BatchNorm2d(16))
        stages, channels = [[], [], []], 16
        for (stage, _, stride), width in zip(three_stages(n), self.widths):
            stages[stage].append(unit(channels, width, stride=stride))
            channels = width * unit.expansion
        self.stages = nn.Sequential(*(nn.Sequential(*units) for units in stages))
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)

    def units(self) -> list[nn.Module]:
        """The residual units in order, first to last."""
        return [unit for stage in self.stages for unit in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.stages(x)  # (B, 16 + alpha (x4 for bottleneck), 8, 8)
        return bn_relu_pool_classify(x, self.bn, self.fc)


# Parameters: the survey's Table 5, which reproduces the paper's state-of-the-art
# comparison (the official README lists the same counts). Errors: the official
# README (jhkim89/PyramidNet); for PyramidNet-110 (alpha=48) the paper's Table 4
# gives the means 4.58 / 23.12 (which the survey's Table 5 quotes) instead of the
# README's 4.62 / 23.31.
_SOURCE = "survey Table 5 (parameters); jhkim89/PyramidNet README (errors)"
for _depth, _alpha, _bottleneck, _params, _c10, _c100 in [
    (110, 48, False, 1.7e6, 4.62, 23.31),
    (110, 84, False, 3.8e6, 4.27, 20.21),
    (110, 270, False, 28.3e6, 3.73, 18.25),
    (164, 270, True, 27.0e6, 3.48, 17.01),
    (200, 240, True, 26.6e6, 3.44, 16.51),
    (236, 220, True, 26.8e6, 3.40, 16.37),
    (272, 200, True, 26.0e6, 3.31, 16.35),
]:
    _variant = "_bottleneck" if _bottleneck else ""
    _label = f"PyramidNet-{_depth} (α={_alpha})" + (
        ", bottleneck" if _bottleneck else ""
    )
    register(
        f"pyramidnet{_depth}{_variant}_a{_alpha}",
        PyramidNet,
        recipe="pyramidnet",
        paper=PaperFigures(_label, _params, _c10, _c100, _SOURCE),
        depth=_depth,
        alpha=_alpha,
        bottleneck=_bottleneck,
    )
