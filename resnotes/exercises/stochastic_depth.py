"""Chapter 5's checks: survival probabilities, expected depth, time saved."""

from __future__ import annotations

from typing import Any

from .checker import Check, Mistake, precision_of
from .resnet import units_per_stage


def survival(num_blocks: int, final_survival: float, rule: str) -> list[float]:
    from ..models.stochastic_depth import survival_probabilities

    return survival_probabilities(num_blocks, final_survival, rule)


def expected_active(num_blocks: int, final_survival: float, rule: str) -> float:
    return sum(survival(num_blocks, final_survival, rule))


def time_saving(depth: int, final_survival: float) -> float:
    blocks = 3 * units_per_stage(depth, False)
    return 1 - expected_active(blocks, final_survival, "linear") / blocks


def _from_zero(L, p, rule="linear"):
    return [1 - (l / L) * (1 - p) for l in range(L)] if rule == "linear" else [p] * L


def _within(tolerance: float):
    def compare(expected: Any, got: Any) -> bool:
        # a float32 answer is allowed a few units in its last place
        allowed = max(tolerance, precision_of(got) * abs(float(expected)))
        try:
            return abs(float(expected) - float(got)) <= allowed
        except (TypeError, ValueError):
            return False

    return compare


OFF_BY_ONE = "off by one in the unit index: l runs from 1 to L"

CHECKS = [
    Check(
        "stochastic_depth.survival_probabilities",
        "p_l for the linear and the uniform rule",
        "function",
        survival,
        cases=(
            (54, 0.5, "linear"),
            (54, 0.5, "uniform"),
            (15, 0.5, "linear"),
            (600, 0.5, "linear"),
            (10, 0.8, "linear"),
            (7, 0.2, "uniform"),
        ),
        arg_names=("num_blocks", "final_survival", "rule"),
        own=((54, 0.5, "linear"),),
        mistakes=(
            Mistake(
                _from_zero,
                f"{OFF_BY_ONE}, so the first block has p_1 = 1 − (1−p_L)/L and the "
                f"last "
                "has exactly p_L",
            ),
            Mistake(
                lambda L, p, r: (
                    [1 - (l / (L - 1)) * (1 - p) for l in range(L)]
                    if r == "linear"
                    else None
                ),
                f"{OFF_BY_ONE} and divides by L, so p_1 < 1",
            ),
            Mistake(
                lambda L, p, r: (
                    [1 - p] * L
                    if r == "uniform"
                    else [1 - (l / L) * p for l in range(1, L + 1)]
                ),
                "p_L is the probability to survive, not to be dropped",
            ),
            Mistake(
                lambda L, p, r: [p] * L if r == "linear" else None,
                "that is the uniform rule; the linear rule decays from about 1 to p_L",
            ),
        ),
        generic_hint=(
            "linear: p_l = 1 − (l/L)(1 − p_L) for l = 1..L; uniform: p_l = p_L"
        ),
    ),
    Check(
        "stochastic_depth.expected_active_blocks",
        "E[active blocks] = Σ p_l",
        "function",
        expected_active,
        cases=(
            (54, 0.5, "linear"),
            (54, 0.5, "uniform"),
            (600, 0.5, "linear"),
            (15, 0.5, "linear"),
            (15, 0.75, "uniform"),
            (100, 0.8, "linear"),
        ),
        arg_names=("num_blocks", "final_survival", "rule"),
        own=((54, 0.5, "linear"), (54, 0.5, "uniform")),
        mistakes=(
            Mistake(
                lambda L, p, r: L * (1 + p) / 2 if r == "linear" else None,
                "L(1 + p_L)/2 is the continuous approximation: Σ l for l = 1..L is "
                "L(L+1)/2",
            ),
            Mistake(lambda L, p, r: sum(_from_zero(L, p, r)), OFF_BY_ONE),
            Mistake(
                lambda L, p, r: expected_active(L, p, r) / L,
                "that is the fraction of blocks; the question asks for the number",
            ),
            Mistake(
                lambda L, p, r: L - expected_active(L, p, r),
                "that is the expected number of DROPPED blocks",
            ),
        ),
        generic_hint="each block is active with probability p_l, so E = Σ p_l",
    ),
    Check(
        "stochastic_depth.time_saving",
        "predicted fraction of training time saved",
        "function",
        time_saving,
        cases=((110, 0.5), (1202, 0.5), (32, 0.5), (56, 0.8), (20, 0.2)),
        arg_names=("depth", "final_survival"),
        own=((110, 0.5), (1202, 0.5)),
        mistakes=(
            Mistake(
                lambda d, p: (1 - p) / 2,
                "(1 − p_L)/2 is the continuous approximation; sum the p_l exactly",
            ),
            Mistake(
                lambda d, p: 1 - time_saving(d, p),
                "that is the ratio of the times; the saving is 1 minus it",
            ),
            Mistake(
                lambda d, p: 100 * time_saving(d, p),
                "give a fraction (0.25), not a percentage",
            ),
            Mistake(
                lambda d, p: (1 - p) * (d + 1) / (2 * d),
                "L is the number of BLOCKS: depth = 6n + 2 gives L = 3n, not L = depth",
            ),
            Mistake(
                lambda d, p: (1 - p) * (d // 2 + 1) / (2 * (d // 2)),
                "L = 3n = (depth − 2)/2 blocks: the stem and classifier are not blocks",
            ),
            Mistake(
                lambda d, p: (1 - p) * ((d - 2) // 6 + 1) / (2 * ((d - 2) // 6)),
                "n is the blocks of one stage; the network has L = 3n blocks",
            ),
        ),
        generic_hint=(
            "saving = 1 − E[active blocks]/L with L = 3n blocks, if time ∝ active "
            "blocks"
        ),
        compare=_within(1e-9),
    ),
]
