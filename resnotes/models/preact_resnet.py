"""Pre-activation ResNet for CIFAR.

He, Zhang, Ren and Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
(arXiv:1603.05027). The residual unit computes

    x_{l+1} = x_l + F(x_l),   F = conv(ReLU(BN(conv(ReLU(BN(x_l))))))

so the shortcut is a clean identity path: nothing (no ReLU, no BN) sits on it
after the addition. The CIFAR network has a 3x3 stem with 16 channels, three
stages of n units at 32x32, 16x16 and 8x8 with widths 16, 32 and 64 (times 4
at the output of a bottleneck unit), and a final BN-ReLU, global average pool
and fully connected layer.

- basic units (two 3x3 convolutions): depth = 6n + 2, e.g. ResNet-110 (n=18);
- bottleneck units (1x1, 3x3, 1x1): depth = 9n + 2, e.g. ResNet-164 (n=18)
  and ResNet-1001 (n=111).

As in the official code, the first unit of each stage pre-activates before
its shortcut splits off (see ``PreActUnit``). ``residual=False`` removes every
shortcut and gives the "plain" network of the same depth that the degradation
experiment compares against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    bn_relu_pool_classify,
    conv1x1,
    conv3x3,
    count_from_depth,
    init_conv_weights,
    three_stages,
)
from .registry import PaperFigures, register

STAGE_WIDTHS = (16, 32, 64)


def units_per_stage(depth: int, bottleneck: bool) -> int:
    """n for a network of ``depth`` layers; a depth that breaks the rule raises."""
    if bottleneck:
        return count_from_depth(depth, 9, 2, "9n+2 (bottleneck units)")
    return count_from_depth(depth, 6, 2, "6n+2 (basic units)")


class PreActUnit(nn.Module):
    """What every pre-activation unit shares: x_{l+1} = x_l + F(x_l), where F
    starts with BN-ReLU (the "pre-activation"). A subclass defines the rest of
    F, ``branch``.

    The shortcut is the identity, except where the unit changes the shape; there
    it is a strided 1x1 projection (the paper's option B). As in the official
    code (fb.resnet.torch, ``preresnet.lua``, its "both_preact" units), the
    first unit of each stage applies its BN-ReLU *before* the split, so that its
    shortcut, projection or identity, reads the activated input. The paper's
    appendix describes the same: BN-ReLU right after the stem's convolution,
    before the first unit splits. Every other unit's shortcut carries x_l
    untouched. A plain unit (``residual=False``) has no shortcut at all.

    A subclass builds the rest of F's layers in ``build`` and applies them in
    ``branch``.
    """

    expansion = 1  # output width / ``width``

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        residual: bool = True,
        first_in_stage: bool = False,
    ):
        super().__init__()
        out_channels = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.residual = residual
        needs_projection = residual and (stride != 1 or in_channels != out_channels)
        self.projection = (
            conv1x1(in_channels, out_channels, stride) if needs_projection else None
        )
        self.shortcut_reads_preact = first_in_stage or needs_projection
        self.build(in_channels, width, stride)

    def build(self, in_channels: int, width: int, stride: int) -> None:
        """The layers of F after its first BN-ReLU; each kind of unit defines them."""
        raise NotImplementedError

    def branch(self, preact: torch.Tensor) -> torch.Tensor:
        """F after its first BN-ReLU; each kind of unit defines it."""
        raise NotImplementedError

    def shortcut(self, x: torch.Tensor, preact: torch.Tensor) -> torch.Tensor | float:
        """The term added to F: x_l (or BN-ReLU(x_l)), projected where the shape
        changes; 0 in a plain unit."""
        if not self.residual:
            return 0.0
        source = preact if self.shortcut_reads_preact else x
        return source if self.projection is None else self.projection(source)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.bn1(x))  # BN-ReLU, the first layer of F
        return self.branch(preact) + self.shortcut(x, preact)  # x_{l+1} = x_l + F(x_l)

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The unit with its residual branch deleted (for lesion studies)."""
        if not self.residual:
            raise ValueError("a plain unit has no shortcut to fall back on")
        return self.shortcut(x, F.relu(self.bn1(x)))


class PreActBasicUnit(PreActUnit):
    """F = BN-ReLU-conv3x3-BN-ReLU-conv3x3, added to the shortcut."""

    expansion = 1

    def build(self, in_channels: int, width: int, stride: int) -> None:
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)

    def branch(self, preact: torch.Tensor) -> torch.Tensor:
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        return self.conv2(out)


class PreActBottleneckUnit(PreActUnit):
    """F = BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (4x wider), added to the
    shortcut."""

    expansion = 4

    def build(self, in_channels: int, width: int, stride: int) -> None:
        # As in the official code, the stride sits on the first convolution;
        # torchvision's "V1.5" ResNets move it to the 3x3 instead.
        self.conv1 = conv1x1(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)

    def branch(self, preact: torch.Tensor) -> torch.Tensor:
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        out = self.conv2(out)
        out = F.relu(self.bn3(out))
        return self.conv3(out)


class PreActResNet(nn.Module):
    """Pre-activation ResNet (or, with ``residual=False``, its plain twin) for 32x32
    inputs.

    ``unit`` swaps in another unit class with the same signature, e.g. one with SE or
    CBAM.
    """

    def __init__(
        self,
        depth: int = 110,
        bottleneck: bool = False,
        num_classes: int = 10,
        residual: bool = True,
        unit: type[PreActUnit] | None = None,
    ):
        super().__init__()
        n = units_per_stage(depth, bottleneck)
        if unit is not None and (unit.expansion > 1) != bottleneck:
            raise ValueError(
                "bottleneck must be True exactly when the unit widens its output: "
                f"{unit.__name__} has expansion {unit.expansion}, "
                f"bottleneck={bottleneck}"
            )
        unit = unit or (PreActBottleneckUnit if bottleneck else PreActBasicUnit)
        # The stem has no BN-ReLU: the first unit starts with it.
        self.stem = conv3x3(3, STAGE_WIDTHS[0])
        stages, channels = [[], [], []], STAGE_WIDTHS[0]
        for stage, position, stride in three_stages(n):
            width = STAGE_WIDTHS[stage]
            first = position == 0
            stages[stage].append(
                unit(channels, width, stride, residual, first_in_stage=first)
            )
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
        x = self.stages(x)  # (B, 64 or 256, 8, 8)
        return bn_relu_pool_classify(x, self.bn, self.fc)


def plain_net(
    depth: int = 20, bottleneck: bool = False, num_classes: int = 10
) -> PreActResNet:
    """The same stack of pre-activation units with every shortcut removed."""
    return PreActResNet(
        depth=depth, bottleneck=bottleneck, num_classes=num_classes, residual=False
    )


_TABLE = "He et al. 2016 (Identity Mappings), Tables 3 and 4"
register(
    "preact_resnet110",
    PreActResNet,
    recipe="preact_resnet",
    depth=110,
    paper=PaperFigures("ResNet-110 (pre-activation)", 1.7e6, 6.37, None, _TABLE),
)
register(
    "preact_resnet164",
    PreActResNet,
    recipe="preact_resnet",
    depth=164,
    bottleneck=True,
    paper=PaperFigures("ResNet-164 (pre-activation)", 1.7e6, 5.46, 24.33, _TABLE),
)
register(
    "preact_resnet1001",
    PreActResNet,
    recipe="preact_resnet",
    depth=1001,
    bottleneck=True,
    paper=PaperFigures("ResNet-1001 (pre-activation)", 10.2e6, 4.92, 22.71, _TABLE),
)
register("preact_resnet20", PreActResNet, recipe="preact_resnet", depth=20)
register("plain20", plain_net, recipe="preact_resnet", depth=20)
