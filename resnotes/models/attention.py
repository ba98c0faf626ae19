"""Residual Attention Network for CIFAR.

Wang, Jiang, Qian, Yang, Li, Zhang, Wang and Tang, "Residual Attention Network
for Image Classification", CVPR 2017 (arXiv:1704.06904); official code:
fwang91/residual-attention-network (Caffe prototxt files, ImageNet only).

An attention module has two branches that read the same input x:

- the trunk branch T(x): t pre-activation bottleneck residual units;
- the soft-mask branch M(x): a small hourglass. It max-pools down to a small
  resolution with r residual units after each pooling, comes back up with
  bilinear interpolation and r units per level, adds skip connections between
  features of the same size, and ends with BN-ReLU-conv1x1 twice and a sigmoid,
  so that M(x) lies in (0, 1) for every channel and position.

They are combined by *attention residual learning* (ARL), formula (3) of the
survey and the paper:

    H(x) = (1 + M(x)) * T(x),

so a mask near 0 leaves the trunk's features unchanged, where *naive
attention learning* (NAL), H(x) = M(x) * T(x), would erase them. p residual
units come before the module splits into its branches, and p after.

The paper gives its CIFAR networks only as a depth formula and parameter
counts, so every other detail below is a choice, marked "Not specified by the
paper:" where we make it:

- depth = 9 m (2p + t) + 20 with m modules per stage; for p=1, t=2 that is
  36m + 20: Attention-56 (m=1), -92 (m=2), -128, -164, -236 (m=6). Attention-452
  uses p=2, t=4, r=3 with m=6.
- the 20 are the stem, the classifier and six more residual units, placed as in
  the ImageNet network: one before each stage and three after the last.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import bn_relu_pool_classify, conv1x1, conv3x3, init_conv_weights
from .preact_resnet import PreActBottleneckUnit
from .registry import PaperFigures, register

STAGE_WIDTHS = (16, 32, 64)  # bottleneck widths; the units output 4x: 64, 128, 256
ATTENTION_MODES = ("arl", "nal")


def modules_per_stage(depth: int, p: int, t: int) -> int:
    """m, the attention modules in each of the three stages; a depth that breaks the
    rule raises."""
    for name, value, low in (("p", p, 0), ("t", t, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    per_module = 9 * (2 * p + t)
    rule = f"9m(2p+t)+20 = {per_module}m+20 for p={p}, t={t}"
    if (
        not isinstance(depth, int)
        or depth < per_module + 20
        or (depth - 20) % per_module
    ):
        raise ValueError(
            f"depth must be {rule} with m >= 1 modules per stage, got {depth!r}"
        )
    return (depth - 20) // per_module


def mask_poolings(input_size: int, min_size: int = 4) -> int:
    """How many 2x max-poolings take the mask from ``input_size`` down to ``min_size``
    (at least one).

    Not specified by the paper: the ImageNet network pools 56 -> 7, 28 -> 7 and
    14 -> 7, so its three stages pool 3, 2 and 1 times, down to the same 7x7.
    For 32x32 CIFAR inputs we keep the rule "down to the same small size", with
    4x4: stage 1 pools 3 times (32 -> 4), stage 2 twice, stage 3 once.
    """
    if input_size < 2 * min_size:
        raise ValueError(
            f"a stage input of {input_size}x{input_size} is too small to pool down to "
            f"{min_size}x{min_size}"
        )
    return max(1, int(math.log2(input_size // min_size)))


def _units(channels: int, count: int) -> nn.Sequential:
    """``count`` pre-activation bottleneck units that keep ``channels``."""
    return nn.Sequential(
        *(PreActBottleneckUnit(channels, channels // 4) for _ in range(count))
    )


class SoftMaskBranch(nn.Module):
    """M(x): max-pool and r units per level going down, interpolate, add the skip and r
    units going up.

    With three poolings (stage 1 on 32x32):

        pool -> down1 (r units) -> skip1
             -> pool -> down2 (r units) -> skip2
                     -> pool -> bottom (max(2, r) units)
                     -> up to 8x8, + skip2 -> up2 (r units)
             -> up to 16x16, + skip1 -> up1 (r units)
        -> up to 32x32 -> BN-ReLU-conv1x1 -> BN-ReLU-conv1x1 -> sigmoid

    Not specified by the paper: how many units sit at the bottom, between the
    last pooling and the first upsampling. The official r=1 prototxt has 2
    there, one more than r; we use max(2, r), which is 2 for r=1 and r (the
    paper's "units between adjacent pooling layers") for r >= 2. Reading it as
    2r instead makes Attention-452 about 20% larger than the paper's 8.6M;
    ``bottom_units`` lets you try other readings.
    Not specified by the paper: one residual unit per skip connection (as in
    the prototxt, for every r), bilinear upsampling with ``align_corners=False``,
    and 3x3 max-pooling with stride 2 and padding 1 (the prototxt's).
    """

    def __init__(
        self, channels: int, r: int, poolings: int, bottom_units: int | None = None
    ):
        super().__init__()
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"r must be an integer >= 1, got {r!r}")
        bottom_units = max(2, r) if bottom_units is None else bottom_units
        if not isinstance(bottom_units, int) or bottom_units < 1:
            raise ValueError(
                f"bottom_units must be an integer >= 1, got {bottom_units!r}"
            )
        self.poolings = poolings
        self.down = nn.ModuleList(_units(channels, r) for _ in range(poolings - 1))
        self.skips = nn.ModuleList(
            PreActBottleneckUnit(channels, channels // 4) for _ in range(poolings - 1)
        )
        self.bottom = _units(channels, bottom_units)
        self.up = nn.ModuleList(_units(channels, r) for _ in range(poolings - 1))
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            conv1x1(channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            conv1x1(channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        skips = []
        for down, skip in zip(self.down, self.skips):
            x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B, C, H/2, W/2)
            x = down(x)
            skips.append(skip(x))
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # the lowest resolution
        x = self.bottom(x)
        for up, skip in zip(reversed(self.up), reversed(skips)):
            x = F.interpolate(
                x, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            x = x + skip
            x = up(x)
        x = F.interpolate(
            x, size=size, mode="bilinear", align_corners=False
        )  # back to the trunk's size
        x = self.head(x)
        return torch.sigmoid(x)  # M(x) in (0, 1), one value per channel and position


class AttentionModule(nn.Module):
    """p units, then the trunk T and the soft mask M side by side, combined, then p
    units."""

    def __init__(
        self,
        channels: int,
        input_size: int,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        attention: str = "arl",
        bottom_units: int | None = None,
    ):
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(
                f"attention must be one of {', '.join(ATTENTION_MODES)}, got "
                f"{attention!r}"
            )
        self.attention = attention
        self.pre = _units(channels, p)
        self.trunk = _units(channels, t)
        self.mask = SoftMaskBranch(channels, r, mask_poolings(input_size), bottom_units)
        self.post = _units(channels, p)

    def combine(self, trunk: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ARL: H = (1 + M) * T; NAL: H = M * T."""
        if self.attention == "arl":
            return (1 + mask) * trunk
        return mask * trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)  # T(x)
        mask = self.mask(x)  # M(x), same shape as T(x)
        x = self.combine(trunk, mask)  # H(x)
        return self.post(x)


class ResidualAttentionNetwork(nn.Module):
    """Stem, three stages (a unit, then m attention modules), three more units,
    classifier."""

    def __init__(
        self,
        depth: int = 92,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        attention: str = "arl",
        bottom_units: int | None = None,
        num_classes: int = 10,
    ):
        super().__init__()
        m = modules_per_stage(depth, p, t)
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"r must be an integer >= 1, got {r!r}")
        # Not specified by the paper: a 3x3 stem with 16 channels and no pooling,
        # as in the pre-activation ResNets on CIFAR.
        self.stem = conv3x3(3, STAGE_WIDTHS[0])
        stages = []
        channels, size = STAGE_WIDTHS[0], 32
        for index, width in enumerate(STAGE_WIDTHS):
            stride = 1 if index == 0 else 2
            size //= stride
            layers = [PreActBottleneckUnit(channels, width, stride=stride)]
            channels = width * PreActBottleneckUnit.expansion
            layers += [
                AttentionModule(channels, size, p, t, r, attention, bottom_units)
                for _ in range(m)
            ]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        # Not specified by the paper: the ImageNet network ends with three units
        # in a fourth, wider stage. On 8x8 CIFAR features we keep the width
        # (256) and the resolution.
        self.final = _units(channels, 3)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)

    def attention_modules(self) -> list[AttentionModule]:
        """Every attention module, first to last."""
        return [
            module for module in self.modules() if isinstance(module, AttentionModule)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.stages[0](x)  # (B, 64, 32, 32)
        x = self.stages[1](x)  # (B, 128, 16, 16)
        x = self.stages[2](x)  # (B, 256, 8, 8)
        x = self.final(x)
        return bn_relu_pool_classify(x, self.bn, self.fc)


_TABLE = "Wang et al. 2017, CIFAR comparison table (survey Table 7)"
register(
    "attention56", ResidualAttentionNetwork, recipe="attention", depth=56
)  # no CIFAR figures in the paper
register(
    "attention92",
    ResidualAttentionNetwork,
    recipe="attention",
    depth=92,
    paper=PaperFigures("Attention-92", 1.9e6, 4.99, 21.71, _TABLE),
)
register(
    "attention236",
    ResidualAttentionNetwork,
    recipe="attention",
    depth=236,
    paper=PaperFigures("Attention-236", 5.1e6, 4.14, 21.16, _TABLE),
)
register(
    "attention452",
    ResidualAttentionNetwork,
    recipe="attention",
    depth=452,
    p=2,
    t=4,
    r=3,
    paper=PaperFigures("Attention-452", 8.6e6, 3.90, 20.45, _TABLE),
)
