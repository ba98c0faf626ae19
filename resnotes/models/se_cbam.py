"""Squeeze-and-excitation and CBAM, as drop-in additions to the pre-activation unit.

- Hu, Shen and Sun, "Squeeze-and-Excitation Networks", CVPR 2018
  (arXiv:1709.01507): global average pooling "squeezes" each channel to one
  number; a two-layer MLP with a bottleneck of C / r and a sigmoid "excites",
  giving one weight in (0, 1) per channel that rescales the features.
- Woo, Park, Lee and Kweon, "CBAM: Convolutional Block Attention Module",
  ECCV 2018 (arXiv:1807.06521); official code: Jongchan/attention-module.
  A channel gate like SE's, but fed by both average- and max-pooled features
  through one shared MLP, then a spatial gate: a 7x7 convolution over the
  channel-wise mean and max, and a sigmoid, giving one weight per position.

Both recalibrate the output of the residual branch before it is added to the
shortcut, as in the SE-ResNet and CBAM-ResNet of the papers:

    x_{l+1} = x_l + A(F(x_l)),

so the shortcut stays a clean identity. Both papers use the reduction
ratio r = 16.

Differs from paper: the hidden width is max(8, C / r). On the 16- and
32-channel stages of a CIFAR ResNet, C / 16 would leave one or two hidden
units, and a single ReLU unit can be off for every input, which silences the
gate and its gradient. timm applies the same floor of 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .preact_resnet import PreActBasicUnit, PreActResNet
from .registry import register

ATTENTIONS = ("se", "cbam")
MIN_HIDDEN = 8


def hidden_width(channels: int, reduction: int) -> int:
    """C / r, at least ``MIN_HIDDEN`` (and at most C)."""
    if not isinstance(reduction, int) or reduction < 1:
        raise ValueError(f"reduction must be an integer >= 1, got {reduction!r}")
    return min(channels, max(MIN_HIDDEN, channels // reduction))


class SqueezeExcitation(nn.Module):
    """Channel weights s = sigmoid(W2 ReLU(W1 avgpool(x))); returns x * s."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = hidden_width(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        excite = self.fc2(F.relu(self.fc1(squeeze)))
        weights = torch.sigmoid(excite)  # one weight per channel
        return x * weights


class CBAM(nn.Module):
    """Channel gate (shared MLP over average and max pools), then spatial gate (7x7 conv
    over mean and max)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        hidden = hidden_width(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(
            2, 1, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.spatial_bn = nn.BatchNorm2d(1)  # as in the official code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(
            F.adaptive_max_pool2d(x, 1)
        )
        x = x * torch.sigmoid(channel)  # (B, C, 1, 1) weights
        pooled = torch.cat(
            [x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1
        )  # (B, 2, H, W)
        spatial = self.spatial_bn(self.spatial(pooled))
        return x * torch.sigmoid(spatial)  # (B, 1, H, W) weights


class PreActSEUnit(PreActBasicUnit):
    """A pre-activation basic unit whose residual branch is recalibrated by SE: x_l +
    A(F(x_l))."""

    def build(self, in_channels: int, width: int, stride: int) -> None:
        super().build(in_channels, width, stride)
        self.attention = self.make_attention(width)

    def make_attention(self, channels: int) -> nn.Module:
        return SqueezeExcitation(channels)

    def branch(self, preact: torch.Tensor) -> torch.Tensor:
        return self.attention(super().branch(preact))  # A(F(x))


class PreActCBAMUnit(PreActSEUnit):
    """A pre-activation basic unit whose residual branch is recalibrated by CBAM."""

    def make_attention(self, channels: int) -> nn.Module:
        return CBAM(channels)


def preact_resnet_attention(
    depth: int = 110, attention: str = "se", num_classes: int = 10
) -> PreActResNet:
    """Pre-activation ResNet (basic units) with SE or CBAM in every unit, e.g.
    ``preact_resnet_attention(depth=20, attention="cbam")``."""
    if attention not in ATTENTIONS:
        raise ValueError(
            f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}"
        )
    unit = PreActSEUnit if attention == "se" else PreActCBAMUnit
    return PreActResNet(
        depth=depth, bottleneck=False, num_classes=num_classes, unit=unit
    )


# Neither paper reports a pre-activation ResNet-110 on CIFAR: no paper figures.
register(
    "preact_resnet110_se",
    preact_resnet_attention,
    recipe="se_cbam",
    depth=110,
    attention="se",
)
register(
    "preact_resnet110_cbam",
    preact_resnet_attention,
    recipe="se_cbam",
    depth=110,
    attention="cbam",
)
