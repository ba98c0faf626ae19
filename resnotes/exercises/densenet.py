"""Chapter 3's checks: DenseNet-BC's channels and parameters."""

from __future__ import annotations

import math

from .checker import Check, Mistake
from .resnet import BIAS, BN_BUFFERS, NO_BN, params


def transition_channels(depth: int, growth_rate: int, compression: float) -> list[int]:
    from ..models.densenet import block_widths, layers_per_block

    n = layers_per_block(depth, bottleneck=True)
    first = block_widths(2 * growth_rate, n, growth_rate)[-1]
    second = block_widths(math.floor(compression * first), n, growth_rate)[-1]
    return [first, second]


def transitions_formula(
    depth, k, theta, stem=None, n=None, squeeze=math.floor, compress=True, extra=0
):
    """The channels entering the transitions, with switches for the typical mistakes."""
    n = ((depth - 4) // 6 if n is None else n) + extra
    first = (2 * k if stem is None else stem) + n * k
    start = squeeze(theta * first) if compress else first
    return [first, start + n * k]


def layer_params(in_channels: int, growth_rate: int) -> int:
    from ..models.densenet import DenseLayer

    return params(
        lambda: DenseLayer(
            in_channels=in_channels, growth_rate=growth_rate, bottleneck=True
        )
    )


def stored_channels(in_channels: int, num_layers: int, growth_rate: int) -> int:
    from ..models.densenet import block_widths

    return sum(block_widths(in_channels, num_layers, growth_rate)[:-1])


FLOOR = "floor against round: a transition maps m channels to floor(θ·m)"

CHECKS = [
    Check(
        "densenet.transition_channels",
        "channels entering the two transitions of a DenseNet-BC",
        "function",
        transition_channels,
        cases=(
            (100, 12, 0.5),
            (250, 24, 0.5),
            (190, 40, 0.5),
            (22, 7, 0.5),
            (40, 12, 0.25),
        ),
        arg_names=("depth", "growth_rate", "compression"),
        own=((100, 12, 0.5),),
        mistakes=(
            Mistake(
                lambda d, k, t: transitions_formula(d, k, t, stem=16),
                "forgot that DenseNet-BC's stem has 2k channels; 16 is the plain "
                "DenseNet's",
            ),
            Mistake(
                lambda d, k, t: transitions_formula(d, k, t, n=(d - 4) // 3),
                "each BC layer has two convolutions (1×1 and 3×3), so depth = 6n+4, "
                "not 3n+4",
            ),
            Mistake(
                lambda d, k, t: transitions_formula(d, k, t, compress=False),
                "the first transition compresses: block 2 starts from floor(θ·m) "
                "channels",
            ),
            Mistake(
                lambda d, k, t: transitions_formula(
                    d, k, t, squeeze=lambda x: math.floor(x + 0.5)
                ),
                FLOOR,
            ),
            Mistake(lambda d, k, t: transitions_formula(d, k, t, squeeze=round), FLOOR),
            Mistake(
                lambda d, k, t: transitions_formula(d, k, t, extra=-1),
                "off by one: a block of n layers adds n·k channels (the last layer's "
                "output too)",
            ),
            Mistake(
                lambda d, k, t: [
                    math.floor(t * x) for x in transition_channels(d, k, t)
                ],
                "those are the channels leaving the transitions; the question asks for "
                "entering",
            ),
        ),
        generic_hint=(
            "stem 2k; block: + n·k; transition: floor(θ·m); with n = (depth − 4) / 6"
        ),
    ),
    Check(
        "densenet.layer_params",
        "parameters of one DenseNet-BC layer",
        "function",
        layer_params,
        cases=((24, 12), (204, 12), (108, 12), (48, 24), (80, 40)),
        arg_names=("in_channels", "growth_rate"),
        own=((24, 12), (204, 12)),
        mistakes=(
            Mistake(lambda i, k: i * 4 * k + 9 * 4 * k * k, NO_BN),
            Mistake(
                lambda i, k: 4 * i + i * 4 * k + 4 * 4 * k + 9 * 4 * k * k, BN_BUFFERS
            ),
            Mistake(
                lambda i, k: 2 * i + i * k + 2 * k + 9 * k * k,
                "the bottleneck 1×1 convolution outputs 4k channels, not k",
            ),
            Mistake(
                lambda i, k: 2 * i + 9 * i * k,
                "that is a plain DenseNet layer (BN-ReLU-conv3×3); the BC layer has a "
                "1×1 "
                "bottleneck to 4k channels first",
            ),
            Mistake(
                lambda i, k: 2 * i + i * 4 * k + 4 * k + 2 * 4 * k + 9 * 4 * k * k + k,
                BIAS,
            ),
        ),
        generic_hint="BN(m), conv 1×1 m→4k, BN(4k), conv 3×3 4k→k",
    ),
    Check(
        "densenet.stored_channels",
        "channels of all the concatenated inputs of one block",
        "function",
        stored_channels,
        cases=((24, 16, 12), (108, 16, 12), (16, 12, 12), (150, 16, 12), (10, 3, 5)),
        arg_names=("in_channels", "num_layers", "growth_rate"),
        own=((24, 16, 12),),
        mistakes=(
            Mistake(
                lambda c, n, k: sum(c + l * k for l in range(1, n + 1)),
                "off by one: layer ℓ reads k_0 + (ℓ−1)k channels, so the first layer "
                "reads "
                "only the block input",
            ),
            Mistake(
                lambda c, n, k: sum(c + l * k for l in range(n + 1)),
                "include the n layer inputs only, not the block's output",
            ),
            Mistake(
                lambda c, n, k: n * c + k * n * n / 2,
                "Σ(ℓ−1) for ℓ = 1..n is n(n−1)/2, not n²/2",
            ),
        ),
        generic_hint="sum k_0 + (ℓ−1)k over the layers ℓ = 1..n",
    ),
]
