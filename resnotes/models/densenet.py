"""DenseNet and DenseNet-BC for CIFAR.

Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017 (arXiv:1608.06993); official code: liuzhuang13/DenseNet
(Torch). The memory-efficient mode follows Pleiss, Chen, Huang, Li, van der
Maaten and Weinberger, "Memory-Efficient Implementation of DenseNets" (2017,
arXiv:1707.06990).

A ResNet *adds* a unit's output to its input, so the width stays constant. In
a dense block, layer l receives the *concatenation* of the block input and of
every earlier layer's output, and contributes k new channels (the growth rate):

    x_l = H_l([x_0, x_1, ..., x_{l-1}]),   width of the input of H_l: k_0 + (l - 1) k.

- DenseNet: H_l is BN-ReLU-conv3x3 to k channels; the stem has 16 channels.
  Three blocks of n layers each: depth = 3n + 4 (the stem, two transitions
  and the classifier make the 4), e.g. DenseNet-40 (n = 12).
- DenseNet-BC: H_l is BN-ReLU-conv1x1 to 4k channels (the bottleneck, B), then
  BN-ReLU-conv3x3 to k channels; the stem has 2k channels, and each transition
  compresses the width by theta = 0.5 (C). Two convolutions per layer:
  depth = 6n + 4, e.g. DenseNet-BC-100 (n = 16).

Between blocks, a transition layer BN-ReLU-conv1x1-avgpool2x2 halves the
resolution (32 -> 16 -> 8) and maps m channels to floor(theta * m). After the
last block: BN-ReLU, global average pool and a fully connected layer. As in the
official code, no convolution has a bias.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from .layers import (
    bn_relu_pool_classify,
    conv1x1,
    conv3x3,
    count_from_depth,
    init_conv_weights,
)
from .registry import PaperFigures, register

BOTTLENECK_FACTOR = 4  # the 1x1 convolution of a BC layer outputs 4k channels
NOT_COMPILED = (
    "torch.compile cannot trace the memory-efficient mode's checkpoint, which keeps "
    "BatchNorm's running statistics from a second update"
)


def layers_per_block(depth: int, bottleneck: bool) -> int:
    """n, the layers in each of the three dense blocks; a depth that breaks the rule
    raises."""
    if bottleneck:
        return count_from_depth(depth, 6, 4, "6n+4 (bottleneck layers)")
    return count_from_depth(depth, 3, 4, "3n+4")


def block_widths(in_channels: int, num_layers: int, growth_rate: int) -> list[int]:
    """The width of the concatenated feature map after each layer of a block: k_0 + l k,
    l = 0..n."""
    return [in_channels + layer * growth_rate for layer in range(num_layers + 1)]


@contextlib.contextmanager
def running_stats_kept(bn: nn.BatchNorm2d) -> Iterator[None]:
    """Put ``bn``'s running statistics back as they were after the block runs.

    Checkpointing recomputes a layer in the backward pass: the output is the
    same (it uses the same batch statistics), but the running averages must not
    take a second update.
    """
    saved = [buffer.clone() for buffer in bn.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(bn.buffers(), saved):
                buffer.copy_(value)


class DenseLayer(nn.Module):
    """H_l: BN-ReLU-conv3x3 (DenseNet) or BN-ReLU-conv1x1-BN-ReLU-conv3x3 (DenseNet-BC).

    The layer takes the list of earlier feature maps and returns only its own k
    new channels; the block does the bookkeeping. With ``drop_rate`` > 0, dropout
    follows every convolution (both of them in a BC layer), as in the paper and
    the official code.

    In memory-efficient mode, the concatenation, first BN, ReLU and first
    convolution are not stored for the backward pass but recomputed there
    (Pleiss et al. 2017): their outputs are the large tensors, of width
    k_0 + (l - 1) k, that make DenseNet's memory grow quadratically with depth.
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bottleneck: bool,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.growth_rate = growth_rate
        self.bottleneck = bottleneck
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient
        inner = BOTTLENECK_FACTOR * growth_rate if bottleneck else growth_rate
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = (
            conv1x1(in_channels, inner) if bottleneck else conv3x3(in_channels, inner)
        )
        if bottleneck:
            self.bn2 = nn.BatchNorm2d(inner)
            self.conv2 = conv3x3(inner, growth_rate)

    def concat_bn_relu_conv(self, *features: torch.Tensor) -> torch.Tensor:
        """The first composite of H_l, applied to [x_0, ..., x_{l-1}]."""
        x = torch.cat(features, 1)  # (B, k_0 + (l-1) k, H, W)
        x = F.relu(self.bn1(x))
        return self.conv1(x)  # (B, 4k or k, H, W)

    def call_checkpointed(self, features: list[torch.Tensor]) -> torch.Tensor:
        """``concat_bn_relu_conv`` without keeping its output for the backward pass,
        which recomputes it."""
        return cp.checkpoint(
            self.concat_bn_relu_conv,
            *features,
            use_reentrant=False,
            context_fn=lambda: (contextlib.nullcontext(), running_stats_kept(self.bn1)),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and torch.is_grad_enabled():
            x = self.call_checkpointed(features)
        else:
            x = self.concat_bn_relu_conv(*features)
        x = F.dropout(x, self.drop_rate, self.training)
        if self.bottleneck:
            x = F.relu(self.bn2(x))
            x = self.conv2(x)  # (B, k, H, W)
            x = F.dropout(x, self.drop_rate, self.training)
        return x


class DenseBlock(nn.Module):
    """n dense layers; the output is the concatenation of the input and all n new
    feature maps."""

    def __init__(
        self,
        in_channels: int,
        num_layers: int,
        growth_rate: int,
        bottleneck: bool,
        drop_rate: float,
        memory_efficient: bool,
    ):
        super().__init__()
        widths = block_widths(in_channels, num_layers, growth_rate)
        self.layers = nn.ModuleList(
            DenseLayer(widths[l], growth_rate, bottleneck, drop_rate, memory_efficient)
            for l in range(num_layers)
        )
        self.in_channels = in_channels
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)  # (B, k_0 + n k, H, W)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 to floor(theta m) channels, then a 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float = 0.0):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = conv1x1(in_channels, out_channels)
        self.drop_rate = drop_rate
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(x)
        x = F.relu(x)
        x = self.conv(x)
        x = F.dropout(x, self.drop_rate, self.training)
        return F.avg_pool2d(x, 2)


class DenseNet(nn.Module):
    """A CIFAR DenseNet: stem, three dense blocks joined by transitions, classifier."""

    def __init__(
        self,
        depth: int,
        growth_rate: int,
        bottleneck: bool,
        compression: float,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
        num_classes: int = 10,
    ):
        super().__init__()
        if not isinstance(growth_rate, int) or growth_rate < 1:
            raise ValueError(
                f"growth_rate must be an integer >= 1, got {growth_rate!r}"
            )
        if not 0 < compression <= 1:
            raise ValueError(f"compression theta must be in (0, 1], got {compression}")
        if not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        num_layers = layers_per_block(depth, bottleneck)

        channels = 2 * growth_rate if bottleneck else 16
        self.stem = conv3x3(3, channels)
        blocks, transitions = [], []
        for index in range(3):
            block = DenseBlock(
                channels,
                num_layers,
                growth_rate,
                bottleneck,
                drop_rate,
                memory_efficient,
            )
            blocks.append(block)
            channels = block.out_channels
            if index < 2:
                transition = Transition(
                    channels, math.floor(compression * channels), drop_rate
                )
                transitions.append(transition)
                channels = transition.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.transitions = nn.ModuleList(transitions)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)
        nn.init.zeros_(self.fc.bias)

    @property
    def memory_efficient(self) -> bool:
        return all(layer.memory_efficient for layer in self.dense_layers())

    @memory_efficient.setter
    def memory_efficient(self, value: bool) -> None:
        for layer in self.dense_layers():
            layer.memory_efficient = bool(value)

    @property
    def eager_only(self) -> str | None:
        """Why ``fit`` must not compile this network (None: it may)."""
        return NOT_COMPILED if self.memory_efficient else None

    def dense_layers(self) -> list[DenseLayer]:
        """Every dense layer, first to last."""
        return [layer for block in self.blocks for layer in block.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16 or 2k, 32, 32)
        x = self.blocks[0](x)  # (B, k_0 + n k, 32, 32)
        x = self.transitions[0](x)  # (B, theta (k_0 + n k), 16, 16)
        x = self.blocks[1](x)
        x = self.transitions[1](x)  # (B, ..., 8, 8)
        x = self.blocks[2](x)
        return bn_relu_pool_classify(x, self.bn, self.fc)


def densenet(
    depth: int = 40,
    growth_rate: int = 12,
    drop_rate: float = 0.0,
    memory_efficient: bool = False,
    num_classes: int = 10,
) -> DenseNet:
    """The paper's plain DenseNet (BN-ReLU-conv3x3 layers, no compression), e.g.
    ``densenet(depth=40, growth_rate=12)``.

    Differs from paper: the paper adds dropout 0.2 only when it trains without
    data augmentation; we always augment, so ``drop_rate`` defaults to 0.
    """
    return DenseNet(
        depth,
        growth_rate,
        bottleneck=False,
        compression=1.0,
        drop_rate=drop_rate,
        memory_efficient=memory_efficient,
        num_classes=num_classes,
    )


def densenet_bc(
    depth: int = 100,
    growth_rate: int = 12,
    compression: float = 0.5,
    drop_rate: float = 0.0,
    memory_efficient: bool = False,
    num_classes: int = 10,
) -> DenseNet:
    """DenseNet-BC (bottleneck layers, compression theta), e.g. ``densenet_bc(depth=100,
    growth_rate=12)``."""
    return DenseNet(
        depth,
        growth_rate,
        bottleneck=True,
        compression=compression,
        drop_rate=drop_rate,
        memory_efficient=memory_efficient,
        num_classes=num_classes,
    )


_TABLE = "Huang et al. 2017, Table 2 (survey Table 6)"
register(
    "densenet40_k12",
    densenet,
    recipe="densenet",
    depth=40,
    growth_rate=12,
    paper=PaperFigures("DenseNet (L=40, k=12)", 1.0e6, 5.24, 24.42, _TABLE),
)
for _depth, _k, _params, _c10, _c100 in [
    (100, 12, 0.8e6, 4.51, 22.27),
    (250, 24, 15.3e6, 3.62, 17.60),
    (190, 40, 25.6e6, 3.46, 17.18),
]:
    register(
        f"densenet{_depth}_bc_k{_k}",
        densenet_bc,
        recipe="densenet",
        depth=_depth,
        growth_rate=_k,
        paper=PaperFigures(
            f"DenseNet-BC (L={_depth}, k={_k})", _params, _c10, _c100, _TABLE
        ),
    )
