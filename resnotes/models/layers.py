"""Pieces that several families share: the convolutions, the pre-activation
networks' tail, and the weight initialisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def bn_relu_pool_classify(
    x: torch.Tensor, bn: nn.BatchNorm2d, fc: nn.Linear
) -> torch.Tensor:
    """The tail of a pre-activation network: the last unit's output has not been
    through BN-ReLU yet; then global average pooling and the classifier."""
    x = F.relu(bn(x))
    x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, C)
    return fc(x)


def init_conv_weights(model: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every convolution, as in the papers' code.
    BatchNorm keeps PyTorch's default (weight 1, bias 0)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def count_from_depth(depth: int, layers_per_n: int, fixed: int, rule: str) -> int:
    """n for a network of ``depth`` = ``layers_per_n`` n + ``fixed`` layers; a depth
    that breaks the family's ``rule`` (e.g. "6n+2 (basic units)") raises."""
    if (
        not isinstance(depth, int)
        or isinstance(depth, bool)
        or depth < layers_per_n + fixed
    ):
        raise ValueError(f"depth must be {rule} with n >= 1, got {depth!r}")
    if (depth - fixed) % layers_per_n:
        raise ValueError(f"depth must be {rule}, got {depth}")
    return (depth - fixed) // layers_per_n


def three_stages(units_per_stage: int):
    """(stage, position, stride) of every unit of a three-stage CIFAR network, in
    order: the first unit of stages 2 and 3 halves the resolution (32, 16, 8)."""
    for stage in range(3):
        for position in range(units_per_stage):
            yield stage, position, 2 if stage > 0 and position == 0 else 1
