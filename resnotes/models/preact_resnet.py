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

``residual=False`` removes every shortcut and gives the "plain" network of the
same depth that the degradation experiment compares against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

STAGE_WIDTHS = (16, 32, 64)


def units_per_stage(depth: int, bottleneck: bool) -> int:
    """n for a network of ``depth`` layers; a depth that breaks the rule raises."""
    layers_per_unit = 3 if bottleneck else 2
    rule = "9n+2 (bottleneck units)" if bottleneck else "6n+2 (basic units)"
    if not isinstance(depth, int) or depth < 3 * layers_per_unit + 2:
        raise ValueError(f"depth must be {rule} with n >= 1, got {depth!r}")
    if (depth - 2) % (3 * layers_per_unit) != 0:
        raise ValueError(f"depth must be {rule}, got {depth}")
    return (depth - 2) // (3 * layers_per_unit)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class PreActUnit(nn.Module):
    """What both kinds of unit share: the shortcut.

    The shortcut is the identity, except where the unit changes the shape; there
    it is a strided 1x1 projection (the paper's option B) which, as in the
    official code, reads the pre-activated input. A plain unit (``residual=False``)
    has no shortcut at all.
    """

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, residual: bool):
        super().__init__()
        out_channels = width * self.expansion
        self.residual = residual
        needs_projection = residual and (stride != 1 or in_channels != out_channels)
        self.projection = conv1x1(in_channels, out_channels, stride) if needs_projection else None

    def shortcut(self, x: torch.Tensor, preact: torch.Tensor) -> torch.Tensor:
        return x if self.projection is None else self.projection(preact)

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The unit with its residual branch deleted (for lesion studies)."""
        if not self.residual:
            raise ValueError("a plain unit has no shortcut to fall back on")
        preact = None if self.projection is None else F.relu(self.bn1(x))
        return self.shortcut(x, preact)


class PreActBasicUnit(PreActUnit):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3, added to the shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__(in_channels, width, stride, residual)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width * self.expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.bn1(x))
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        out = self.conv2(out)
        if not self.residual:
            return out
        return out + self.shortcut(x, preact)


class PreActBottleneckUnit(PreActUnit):
    """BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (4x wider), added to the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__(in_channels, width, stride, residual)
        self.bn1 = nn.BatchNorm2d(in_channels)
        # As in the official code, the stride sits on the first convolution;
        # torchvision's "V1.5" ResNets move it to the 3x3 instead.
        self.conv1 = conv1x1(in_channels, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.bn1(x))
        out = self.conv1(preact)
        out = F.relu(self.bn2(out))
        out = self.conv2(out)
        out = F.relu(self.bn3(out))
        out = self.conv3(out)
        if not self.residual:
            return out
        return out + self.shortcut(x, preact)


class PreActResNet(nn.Module):
    """Pre-activation ResNet (or, with ``residual=False``, its plain twin) for 32x32 inputs."""

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
        # ``unit`` swaps in another unit class with the same signature, e.g. one with SE or CBAM.
        unit = unit or (PreActBottleneckUnit if bottleneck else PreActBasicUnit)
        self.depth = depth
        self.stem = conv3x3(3, STAGE_WIDTHS[0])
        stages = []
        channels = STAGE_WIDTHS[0]
        for index, width in enumerate(STAGE_WIDTHS):
            units = []
            for position in range(n):
                stride = 2 if index > 0 and position == 0 else 1
                units.append(unit(channels, width, stride, residual))
                channels = width * unit.expansion
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        # The last unit's output has not been through BN-ReLU yet.
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def units(self) -> list[nn.Module]:
        """The residual units in order, first to last."""
        return [unit for stage in self.stages for unit in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.stages(x)  # (B, 64 or 256, 8, 8)
        x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, C)
        return self.fc(x)


def preact_resnet(depth: int = 110, bottleneck: bool = False, num_classes: int = 10) -> PreActResNet:
    """Pre-activation ResNet of any valid depth."""
    return PreActResNet(depth, bottleneck, num_classes)


def plain_net(depth: int = 20, bottleneck: bool = False, num_classes: int = 10) -> PreActResNet:
    """The same stack of pre-activation units with every shortcut removed."""
    return PreActResNet(depth, bottleneck, num_classes, residual=False)


def preact_resnet110(num_classes: int = 10) -> PreActResNet:
    """ResNet-110, basic units (paper: 1.7M parameters)."""
    return PreActResNet(110, bottleneck=False, num_classes=num_classes)


def preact_resnet164(num_classes: int = 10) -> PreActResNet:
    """ResNet-164, bottleneck units (paper: 1.7M parameters)."""
    return PreActResNet(164, bottleneck=True, num_classes=num_classes)


def preact_resnet1001(num_classes: int = 10) -> PreActResNet:
    """ResNet-1001, bottleneck units (paper: 10.2M parameters)."""
    return PreActResNet(1001, bottleneck=True, num_classes=num_classes)


_TABLE = "He et al. 2016 (Identity Mappings), Table 4"
register("preact_resnet110", preact_resnet110, recipe="preact_resnet", paper_params=1.7e6, source=_TABLE)
register("preact_resnet164", preact_resnet164, recipe="preact_resnet", paper_params=1.7e6, source=_TABLE)
register("preact_resnet1001", preact_resnet1001, recipe="preact_resnet", paper_params=10.2e6, source=_TABLE)
register("preact_resnet20", preact_resnet, recipe="preact_resnet", depth=20)
register("plain20", plain_net, recipe="preact_resnet", depth=20)
