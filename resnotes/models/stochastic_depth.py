"""ResNet with stochastic depth for CIFAR.

Huang, Sun, Liu, Sedra and Weinberger, "Deep Networks with Stochastic Depth",
ECCV 2016 (arXiv:1603.09382); official code: yueatsprograms/Stochastic_Depth
(Torch, ``ResidualDrop.lua``).

While training, each residual block l survives a mini-batch with probability
p_l and is otherwise skipped entirely: its output is its shortcut alone, and
its residual branch is not computed, which is where the time saving comes
from. The survival probabilities decay linearly with depth,

    p_l = 1 - (l / L) (1 - p_L),   l = 1..L,

from nearly 1 for the first block to p_L (0.5 in the paper) for the last. At
test time every block runs and its branch is scaled by p_l, its expected
contribution during training.

The network is the original CIFAR ResNet of He et al. (2015): blocks
conv-BN-ReLU-conv-BN added to the shortcut, then ReLU; depth 6n + 2; a
parameter-free shortcut that zero-pads the new channels where the shape
changes (the paper's "option A") and subsamples by 2, taking every other
pixel. That is what the official code's first releases did (a 1x1 average
pool with stride 2); the official repository later changed it to a 2x2
average pool (commit "Bug in Average Pooling layer", February 2017). We keep
the subsampling of the releases the paper's results come from.

``StochasticDepthRescaledBlock`` is the common variant instead
(``torchvision.ops.stochastic_depth``, timm's ``DropPath``): the branch is
always computed, then zeroed per sample (``mode="row"``) or per batch
(``mode="batch"``) and rescaled by 1 / p_l *during training*, so that the
test-time network needs no scaling.

Differs from paper: the training loop (``resnotes.train``) clears gradients
to ``None``, so the optimiser leaves a skipped block's parameters alone in
that step. The official Torch code updates every parameter in every step, so
a skipped block there still receives its weight decay and momentum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv3x3, init_conv_weights, three_stages
from .preact_resnet import units_per_stage
from .registry import PaperFigures, register

SURVIVAL_RULES = ("linear", "uniform")
MODES = ("faithful", "row", "batch")
NOT_COMPILED = (
    "faithful stochastic depth decides in Python, per mini-batch, which blocks run, "
    "and a compiled graph would be rebuilt for every new pattern"
)


def survival_probabilities(
    num_blocks: int, final_survival: float = 0.5, rule: str = "linear"
) -> list[float]:
    """p_l for l = 1..L: linear decay to ``final_survival`` (p_L), or uniform p_L."""
    if not 0 < final_survival <= 1:
        raise ValueError(
            f"final_survival (p_L) must be in (0, 1], got {final_survival}"
        )
    if rule not in SURVIVAL_RULES:
        raise ValueError(
            f"survival rule must be one of {', '.join(SURVIVAL_RULES)}, got {rule!r}"
        )
    if rule == "uniform":
        return [final_survival] * num_blocks
    return [
        1 - (l / num_blocks) * (1 - final_survival) for l in range(1, num_blocks + 1)
    ]


def subsample_pad_shortcut(
    x: torch.Tensor, out_channels: int, stride: int
) -> torch.Tensor:
    """Take every ``stride``-th pixel and append zero channels (the official code's
    shortcut)."""
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def stochastic_depth_rescaled(
    branch: torch.Tensor, survival_prob: float, mode: str, training: bool
) -> torch.Tensor:
    """The common variant: zero the branch per sample (``row``) or per batch
    (``batch``) with probability 1 - p, and divide the survivors by p, during
    training only. Equivalent to ``torchvision.ops.stochastic_depth(branch, 1 - p,
    mode, training)``."""
    if not training or survival_prob == 1:
        return branch
    shape = (
        (branch.shape[0],) + (1,) * (branch.ndim - 1)
        if mode == "row"
        else (1,) * branch.ndim
    )
    keep = torch.empty(shape, dtype=branch.dtype, device=branch.device).bernoulli_(
        survival_prob
    )
    return branch * keep / survival_prob


class StochasticDepthBlock(nn.Module):
    """A post-activation basic block that a mini-batch may skip (Huang et al. 2016).

    In training, one Bernoulli(``survival_prob``) gate per forward call, that is
    per mini-batch; a closed gate returns the shortcut and never computes the
    branch. In eval mode the branch always runs, scaled by ``survival_prob``.
    """

    mode = "faithful"  # one gate per mini-batch, test-time scaling, as in the paper

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, survival_prob: float
    ):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride
        self.survival_prob = survival_prob
        self.branch = nn.Sequential(
            conv3x3(in_channels, out_channels, stride),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            conv3x3(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return subsample_pad_shortcut(x, self.out_channels, self.stride)

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The block with its branch deleted (for lesion studies). Its input is a
        ReLU output, so the ReLU after the addition would change nothing."""
        return self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            # Test time: every branch runs, scaled by p_l.
            return F.relu(self.survival_prob * self.branch(x) + self.shortcut(x))
        # b_l ~ Bernoulli(p_l), drawn once per mini-batch.
        if torch.rand(()) < self.survival_prob:
            # H_l = ReLU(f_l(H_{l-1}) + id(H_{l-1}))
            return F.relu(self.branch(x) + self.shortcut(x))
        # H_l = ReLU(id(H_{l-1})): f_l is not computed.
        return F.relu(self.shortcut(x))


class StochasticDepthRescaledBlock(StochasticDepthBlock):
    """The common variant: the branch always runs, then is zeroed per sample
    (``mode="row"``) or per batch (``"batch"``) and divided by p_l in training."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        survival_prob: float,
        mode: str = "row",
    ):
        super().__init__(in_channels, out_channels, stride, survival_prob)
        if mode not in ("row", "batch"):
            raise ValueError(
                f"the rescaled variant's mode must be row or batch, got {mode!r}"
            )
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.branch(x)
        branch = stochastic_depth_rescaled(
            branch, self.survival_prob, self.mode, self.training
        )
        return F.relu(branch + self.shortcut(x))


class StochasticDepthResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2015) with stochastic depth (Huang et al.
    2016)."""

    def __init__(
        self,
        depth: int = 110,
        final_survival: float = 0.5,
        survival_rule: str = "linear",
        mode: str = "faithful",
        num_classes: int = 10,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        n = units_per_stage(depth, bottleneck=False)
        self.mode = mode
        self.survival_probs = survival_probabilities(
            3 * n, final_survival, survival_rule
        )
        self.stem = nn.Sequential(
            conv3x3(3, 16), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
        )
        blocks, channels = [], 16
        for (stage, _, stride), p in zip(three_stages(n), self.survival_probs):
            width = (16, 32, 64)[stage]
            if mode == "faithful":
                blocks.append(StochasticDepthBlock(channels, width, stride, p))
            else:
                blocks.append(
                    StochasticDepthRescaledBlock(channels, width, stride, p, mode)
                )
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)

    def units(self) -> list[StochasticDepthBlock]:
        """The residual blocks in order, first to last."""
        return list(self.blocks)

    @property
    def skips_whole_branches(self) -> bool:
        """Whether a training step may skip a block's branch for the whole batch, so
        that its parameters get no gradient in that step (DDP must be told)."""
        return self.mode == "faithful" and any(p < 1 for p in self.survival_probs)

    @property
    def eager_only(self) -> str | None:
        """Why ``fit`` must not compile this network (None: it may)."""
        return NOT_COMPILED if self.skips_whole_branches else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 16, 32, 32)
        x = self.blocks(x)  # (B, 64, 8, 8)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 64)
        return self.fc(x)


# Parameters: He et al. 2015, Table 6 (the networks Huang et al. 2016 train).
# Errors: Huang et al. 2016, Table 1 (C10+ and C100+).
_SOURCE = "He et al. 2015, Table 6 (parameters); Huang et al. 2016, Table 1 (errors)"
register(
    "resnet110",
    StochasticDepthResNet,
    recipe="stochastic_depth",
    depth=110,
    final_survival=1.0,
    paper=PaperFigures("ResNet-110 (constant depth)", 1.7e6, 6.41, 27.22, _SOURCE),
)
register(
    "resnet110_stochastic_depth",
    StochasticDepthResNet,
    recipe="stochastic_depth",
    depth=110,
    paper=PaperFigures("ResNet-110 (stochastic depth)", 1.7e6, 5.25, 24.98, _SOURCE),
)
register(
    "resnet1202_stochastic_depth",
    StochasticDepthResNet,
    recipe="stochastic_depth",
    depth=1202,
    paper=PaperFigures("ResNet-1202 (stochastic depth)", 19.4e6, 4.91, None, _SOURCE),
)
