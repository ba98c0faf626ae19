"""Chapter 4's checks: attention residual learning against naive attention."""

from __future__ import annotations

import torch

from .checker import Check, Mistake


def _module(attention: str):
    from ..models.attention import AttentionModule

    # The smallest module there is: 4 channels (bottleneck width 1), 8x8 input.
    return AttentionModule(channels=4, input_size=8, p=1, t=1, r=1, attention=attention)


def signal(mask: float, modules: int, attention: str) -> float:
    combine = _module(attention).combine
    value = torch.ones((), dtype=torch.float64)
    for _ in range(modules):
        value = combine(value, torch.tensor(mask, dtype=torch.float64))
    return value.item()


def _combine_cases() -> tuple[tuple, ...]:
    generator = torch.Generator().manual_seed(16)
    trunk = torch.randn(2, 4, 8, 8, generator=generator)
    mask = torch.sigmoid(torch.randn(2, 4, 8, 8, generator=generator))
    return (
        (trunk, mask, "arl"),
        (trunk, mask, "nal"),
        (trunk, torch.zeros_like(mask), "arl"),
        (trunk, torch.full_like(mask, 0.5), "nal"),
    )


def combine(trunk: torch.Tensor, mask: torch.Tensor, attention: str) -> torch.Tensor:
    return _module(attention).combine(trunk, mask)


def modules_per_stage(depth: int, p: int, t: int) -> int:
    from ..models.attention import modules_per_stage as rule

    return rule(depth, p, t)


SWAPPED = "NAL and ARL swapped: NAL is H = M·T, ARL is H = (1 + M)·T"

CHECKS = [
    Check(
        "attention.signal",
        "trunk signal left after m modules with a constant mask",
        "function",
        signal,
        cases=(
            (0.5, 3, "nal"),
            (0.5, 6, "nal"),
            (0.5, 12, "nal"),
            (0.5, 3, "arl"),
            (0.5, 12, "arl"),
            (0.8, 6, "nal"),
            (0.25, 6, "arl"),
        ),
        arg_names=("mask", "modules", "attention"),
        own=(
            (0.5, 3, "nal"),
            (0.5, 6, "nal"),
            (0.5, 12, "nal"),
            (0.5, 3, "arl"),
            (0.5, 12, "arl"),
        ),
        mistakes=(
            Mistake(
                lambda m, n, a: 1 + m**n if a == "arl" else None,
                "ARL multiplies by (1 + M) in every module, not only once",
            ),
            Mistake(lambda m, n, a: (1 + m) ** n if a == "nal" else m**n, SWAPPED),
            Mistake(
                lambda m, n, a: (m if a == "nal" else 1 + m) * n,
                "the factors multiply from module to module: a power, not a product by "
                "m",
            ),
            Mistake(
                lambda m, n, a: (m if a == "nal" else 1 + m) ** (n - 1),
                "off by one: every one of the m modules applies its factor",
            ),
            Mistake(
                lambda m, n, a: (m if a == "nal" else 1 + m) ** (n + 1),
                "off by one: m modules apply the factor m times",
            ),
            Mistake(
                lambda m, n, a: (1 - m) ** n,
                "the mask M is what is kept, not what is removed",
            ),
        ),
        generic_hint="one module multiplies the trunk by M (NAL) or by 1 + M (ARL)",
    ),
    Check(
        "attention.combine",
        "H from the trunk T and the mask M, for ARL and NAL",
        "function",
        combine,
        cases=_combine_cases(),
        arg_names=("trunk", "mask", "attention"),
        mistakes=(
            Mistake(
                lambda t, m, a: 1 + m * t if a == "arl" else m * t,
                "that is the survey's misprint, 1 + M·T; the paper's formula is (1 + "
                "M)·T",
            ),
            Mistake(lambda t, m, a: m * t if a == "arl" else (1 + m) * t, SWAPPED),
            Mistake(
                lambda t, m, a: m + t,
                "the mask multiplies the trunk: H = (1 + M)·T for ARL",
            ),
            Mistake(lambda t, m, a: (1 + m) * t, "NAL has no 1: H = M·T"),
        ),
        generic_hint="ARL: H = (1 + M)·T; NAL: H = M·T, elementwise",
    ),
    Check(
        "attention.modules_per_stage",
        "m from depth = 9m(2p+t) + 20",
        "function",
        modules_per_stage,
        cases=(
            (56, 1, 2),
            (92, 1, 2),
            (164, 1, 2),
            (236, 1, 2),
            (452, 2, 4),
            (29, 0, 1),
        ),
        arg_names=("depth", "p", "t"),
        own=((452, 2, 4),),
        mistakes=(
            Mistake(
                lambda d, p, t: d // (9 * (2 * p + t)),
                "forgot the 20 layers outside the modules: stem, classifier and six "
                "more units",
            ),
            Mistake(
                lambda d, p, t: (d - 20) // (3 * (2 * p + t)),
                "each module sits in all 3 stages and each unit has 3 layers: 9 = 3 × "
                "3",
            ),
            Mistake(
                lambda d, p, t: (d - 20) // (9 * (p + t)),
                "p units come before the split AND p after: 2p + t",
            ),
            Mistake(
                lambda d, p, t: (d - 20) // 36,
                "36m + 20 holds only for p=1, t=2: use 9m(2p+t) + 20",
            ),
        ),
        generic_hint="solve depth = 9m(2p+t) + 20 for m",
    ),
]
