"""Chapter 1's checks: the pre-activation ResNet, counted."""

from __future__ import annotations

import functools

import torch

from .checker import Check, Mistake

FORGOT_STEM = (
    "forgot the stem: a 3×3 convolution from 3 to 16 channels (432 parameters)"
)
NO_BN = (
    "forgot the batch norms: each BatchNorm2d has 2 trainable parameters per channel "
    "(γ and β)"
)
BN_BUFFERS = (
    "counted 4 per BN channel: the running mean and variance are buffers, "
    "not parameters"
)
BIAS = "counted conv biases: every convolution here has bias=False"


def params(build) -> int:
    """Trainable parameters of ``build()``; the models counted here are small, and
    building them on the CPU is faster than on the meta device."""
    from ..models import count_parameters

    with torch.no_grad():
        return count_parameters(build())


def units_per_stage(depth: int, bottleneck: bool) -> int:
    from ..models.preact_resnet import units_per_stage as rule

    return rule(depth, bottleneck)


def unit_formula(
    in_ch, width, stride, bottleneck, bn=2, expansion=None, projection=True, bias=False
):
    """A pre-activation unit's parameters, with switches for the typical mistakes."""
    e = (4 if bottleneck else 1) if expansion is None else expansion
    out = width * e
    if bottleneck:
        convs = [(in_ch, width, 1), (width, width, 3), (width, out, 1)]
        bns = [in_ch, width, width]
    else:
        convs = [(in_ch, width, 3), (width, out, 3)]
        bns = [in_ch, width]
    total = sum(i * o * k * k + (o if bias else 0) for i, o, k in convs) + bn * sum(bns)
    if projection and (stride != 1 or in_ch != out):
        total += in_ch * out + (out if bias else 0)
    return total


def unit_params(in_channels: int, width: int, stride: int, bottleneck: bool) -> int:
    from ..models.preact_resnet import PreActBasicUnit, PreActBottleneckUnit

    unit = PreActBottleneckUnit if bottleneck else PreActBasicUnit
    return params(lambda: unit(in_channels=in_channels, width=width, stride=stride))


def projections(depth: int, bottleneck: bool) -> int:
    """Parameters of the projection shortcuts of a whole network."""
    n = units_per_stage(depth, bottleneck)
    e = 4 if bottleneck else 1
    total, channels = 0, 16
    for index, width in enumerate((16, 32, 64)):
        for position in range(n):
            stride = 2 if index > 0 and position == 0 else 1
            if stride != 1 or channels != width * e:
                total += channels * width * e
            channels = width * e
    return total


@functools.lru_cache(maxsize=64)
def resnet_params(depth: int, bottleneck: bool) -> int:
    from ..models.preact_resnet import PreActResNet

    return params(
        lambda: PreActResNet(depth=depth, bottleneck=bottleneck, num_classes=10)
    )


def _final(bottleneck: bool) -> int:
    return 64 * (4 if bottleneck else 1)


CHECKS = [
    Check(
        "resnet.units_per_stage",
        "n, units per stage, from the depth (6n+2 or 9n+2)",
        "function",
        units_per_stage,
        cases=(
            (20, False),
            (56, False),
            (110, False),
            (164, True),
            (1001, True),
            (29, True),
        ),
        arg_names=("depth", "bottleneck"),
        own=((1001, True),),
        mistakes=(
            Mistake(
                lambda d, b: d / (9 if b else 6),
                "forgot the 2 layers that are not in a unit: the stem convolution and "
                "the "
                "classifier (depth = 6n+2 or 9n+2)",
            ),
            Mistake(
                lambda d, b: (d - 2) // 6,
                "a bottleneck unit has 3 convolutions, so depth = 9n+2, not 6n+2",
            ),
            Mistake(
                lambda d, b: (d - 2) // (3 if b else 2),
                "n counts the units of ONE stage: divide by 3 stages too",
            ),
        ),
        generic_hint=(
            "count the layers: 2 (basic) or 3 (bottleneck) per unit, 3 stages of n "
            "units, +2"
        ),
    ),
    Check(
        "resnet.unit_params",
        "parameters of one pre-activation unit (basic or bottleneck)",
        "function",
        unit_params,
        cases=(
            (16, 16, 1, False),
            (16, 32, 2, False),
            (64, 64, 1, False),
            (64, 16, 1, True),
            (16, 16, 1, True),
            (256, 32, 2, True),
        ),
        arg_names=("in_channels", "width", "stride", "bottleneck"),
        own=((64, 64, 1, False),),
        mistakes=(
            Mistake(
                lambda i, w, s, b: unit_formula(i, w, s, b, projection=False),
                "forgot the projection: where the stride is 2 or the channels change, "
                "the "
                "shortcut is a 1×1 convolution from in_channels to the unit's output "
                "channels",
            ),
            Mistake(lambda i, w, s, b: unit_formula(i, w, s, b, bn=0), NO_BN),
            Mistake(lambda i, w, s, b: unit_formula(i, w, s, b, bn=4), BN_BUFFERS),
            Mistake(lambda i, w, s, b: unit_formula(i, w, s, b, bias=True), BIAS),
            Mistake(
                lambda i, w, s, b: unit_formula(i, w, s, b, expansion=1),
                "a bottleneck unit's last 1×1 convolution expands to 4 × width "
                "channels",
            ),
            Mistake(
                lambda i, w, s, b: unit_formula(i, w, s, b, bn=0, projection=False),
                "forgot both the batch norms (2 parameters per channel) and the "
                "projection "
                "shortcut",
            ),
        ),
        generic_hint=(
            "list the layers of the unit (print it) and add them up: a k×k conv from a "
            "to b channels has a·b·k² weights; a BN has 2 per channel"
        ),
    ),
    Check(
        "resnet.params",
        "parameters of a whole pre-activation ResNet",
        "function",
        resnet_params,
        cases=((20, False), (56, False), (110, False), (164, True), (47, True)),
        arg_names=("depth", "bottleneck"),
        own=((110, False),),
        mistakes=(
            Mistake(lambda d, b: resnet_params(d, b) - 432, FORGOT_STEM),
            Mistake(
                lambda d, b: resnet_params(d, b) - 10 * _final(b) - 10,
                "forgot the classifier: a linear layer from the last width to 10 "
                "classes, "
                "with bias",
            ),
            Mistake(
                lambda d, b: resnet_params(d, b) - 10 * _final(b),
                "the classifier's weights are missing but its 10 biases are there",
            ),
            Mistake(
                lambda d, b: resnet_params(d, b) - 2 * _final(b),
                "forgot the final BN (before the pooling): 2 parameters per channel",
            ),
            Mistake(
                lambda d, b: resnet_params(d, b) - projections(d, b),
                "forgot the projection shortcuts where a unit changes the shape",
            ),
            Mistake(
                lambda d, b: resnet_params(d, b) - 432 - 12 * _final(b) - 10,
                "counted only the units: add the stem convolution, the final BN and "
                "the "
                "classifier",
            ),
        ),
        generic_hint=(
            "stem + 3 stages of n units (the first unit of stages 2 and 3 strides) + "
            "final BN + classifier; check one unit with check('resnet.unit_params', "
            "...) first"
        ),
    ),
]
