"""Chapter 2's checks: PyramidNet's widths and parameters."""

from __future__ import annotations

import functools
import math

from .checker import Check, Mistake
from .resnet import BN_BUFFERS, FORGOT_STEM, NO_BN, params, units_per_stage


def multiplicative_widths(num_units: int, alpha: float) -> list[int]:
    from ..models.pyramidnet import pyramid_widths

    return pyramid_widths(num_units, alpha, widening="multiplicative")


def pyramid_formula(
    widths, bn=2, stem=True, fc=True, final_bn=True, shift=False
) -> int:
    """A basic PyramidNet's parameters from its unit widths, with switches for the
    typical mistakes."""
    total = (27 * 16 + bn * 16) if stem else 0
    previous = 16
    for width in widths:
        inp = width if shift else previous
        total += (
            bn * inp + 9 * inp * width + bn * width + 9 * width * width + bn * width
        )
        previous = width
    total += bn * previous if final_bn else 0
    total += 10 * previous + 10 if fc else 0
    return total


@functools.lru_cache(maxsize=64)
def pyramid_params(depth: int, alpha: float, widening: str) -> int:
    from ..models.pyramidnet import PyramidNet

    return params(
        lambda: PyramidNet(depth=depth, alpha=alpha, widening=widening, num_classes=10)
    )


def floored_widths(depth: int, alpha: float, widening: str) -> list[int]:
    """The widths with the paper's floor instead of the package's rounding."""
    n = 3 * ((depth - 2) // 6)
    if widening == "additive":
        return [math.floor(16 + k * alpha / n) for k in range(1, n + 1)]
    return [math.floor(16 * alpha ** (k / n)) for k in range(1, n + 1)]


# The networks whose widths the params_from_widths check hands to the student.
NETWORKS = (
    (20, 36, "additive"),
    (110, 48, "additive"),
    (110, 4, "multiplicative"),
    (56, 120, "additive"),
)


def widths_of(depth: int, alpha: float, widening: str) -> tuple[int, ...]:
    from ..models.pyramidnet import pyramid_widths

    return tuple(pyramid_widths(3 * units_per_stage(depth, False), alpha, widening))


NETWORK_OF = {widths_of(*network): network for network in NETWORKS}


def params_from_widths(widths) -> int:
    return pyramid_params(*NETWORK_OF[tuple(widths)])


CHECKS = [
    Check(
        "pyramidnet.multiplicative_widths",
        "the widths D_1..D_N of a multiplicative PyramidNet, rounded half up",
        "function",
        multiplicative_widths,
        cases=((9, 4.0), (54, 4.0), (12, 2.5), (54, 4.8), (90, 4.0)),
        arg_names=("num_units", "alpha"),
        own=((54, 4.0),),
        mistakes=(
            Mistake(
                lambda n, a: [math.floor(16 * a ** (k / n)) for k in range(1, n + 1)],
                "floor against round: the paper floors D_k, but the package (like the "
                "official code) keeps the exact value and rounds it half up, floor(x + "
                "0.5)",
            ),
            Mistake(
                lambda n, a: [round(16 * a ** (k / n)) for k in range(n)],
                "off by one in the unit index: k runs from 1 to N (16 is the stem, "
                "D_0), so "
                "the first unit already widens and the last is 16·α",
            ),
            Mistake(
                lambda n, a: [round(16 * a ** (k / n)) for k in range(n + 1)],
                "return N widths, for units 1..N: the stem's 16 is D_0, not a unit",
            ),
            Mistake(
                lambda n, a: [16 * a ** (k / n) for k in range(1, n + 1)],
                "widths are channel counts: round each exact value to an integer, half "
                "up",
            ),
            Mistake(
                lambda n, a: [
                    math.floor(16 + k * a / n + 0.5) for k in range(1, n + 1)
                ],
                "that is the additive rule, a constant step per unit: the "
                "multiplicative rule "
                "multiplies by a constant factor per unit instead",
            ),
            Mistake(
                lambda n, a: [math.floor(16 * a**k / n + 0.5) for k in range(1, n + 1)],
                "check the exponent: after all N units the factor must be exactly α",
            ),
        ),
        generic_hint=(
            "each unit multiplies the width by the same factor, chosen so that the last"
            " unit is 16·α wide; round each width half up"
        ),
    ),
    Check(
        "pyramidnet.params_from_widths",
        "parameters of a basic PyramidNet from its unit widths",
        "function",
        params_from_widths,
        cases=tuple((list(widths_of(*network)),) for network in NETWORKS),
        arg_names=("widths",),
        own=((list(widths_of(110, 4, "multiplicative")),),),
        mistakes=(
            Mistake(
                lambda w: pyramid_formula(w, stem=False),
                "forgot the stem: conv 3×3 from 3 to 16 channels (432) and its BN (32)",
            ),
            Mistake(lambda w: pyramid_formula(w) - 432, FORGOT_STEM),
            Mistake(
                lambda w: pyramid_formula(w) - 32,
                "forgot the stem's BN: PyramidNet's stem is conv-BN",
            ),
            Mistake(
                lambda w: pyramid_formula(w, fc=False),
                "forgot the classifier: D_N·10 weights + 10 biases",
            ),
            Mistake(
                lambda w: pyramid_formula(w, final_bn=False),
                "forgot the final BN before the pooling",
            ),
            Mistake(lambda w: pyramid_formula(w, bn=0), NO_BN),
            Mistake(lambda w: pyramid_formula(w, bn=4), BN_BUFFERS),
            Mistake(
                lambda w: pyramid_formula(w, shift=True),
                "off by one in the unit index: unit k reads D_(k-1) channels (D_0 = "
                "16), not D_k",
            ),
        ),
        generic_hint=(
            "per unit: BN(D_(k-1)), conv 3×3 D_(k-1)→D_k, BN(D_k), conv 3×3 D_k→D_k, "
            "BN(D_k); the shortcut has no parameters"
        ),
    ),
    Check(
        "pyramidnet.params",
        "parameter count of one PyramidNet (default: -110, multiplicative, α=4)",
        "value",
        pyramid_params,
        defaults={"depth": 110, "alpha": 4, "widening": "multiplicative"},
        own=((110, 4, "multiplicative"),),
        mistakes=(
            Mistake(
                lambda d, a, w: pyramid_params(d, 48, "additive"),
                "that is the additive PyramidNet with α=48; count the multiplicative "
                "one",
            ),
            Mistake(
                lambda d, a, w: (
                    pyramid_params(d, 48, w) if w == "multiplicative" else None
                ),
                "with the multiplicative rule α=48 ends at 16·48 = 768 channels; the "
                "chapter's multiplicative network uses α=4, which ends at 64 like the "
                "additive α=48",
            ),
            Mistake(
                lambda d, a, w: pyramid_formula(floored_widths(d, a, w)),
                "floor against round: you floored the widths as the paper's formula "
                "does; "
                "the package rounds half up",
            ),
            Mistake(
                lambda d, a, w: pyramid_params(d, a, w) - 464,
                "forgot the stem (conv 432 + BN 32)",
            ),
        ),
        generic_hint=(
            "build it with PyramidNet(depth=..., alpha=..., widening=...) and count, or"
            " use your params_from_widths on your widths"
        ),
    ),
]
