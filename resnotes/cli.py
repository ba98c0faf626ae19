"""Argument types shared by the two command lines (``resnotes.train``, ``resnotes.bench``):
each refuses a bad value with a message that names the rule."""

from __future__ import annotations

import argparse
import math


def at_least(minimum: int, below: int | None = None):
    """An integer >= ``minimum`` (and < ``below`` when given)."""

    def parse(text: str) -> int:
        rule = f"an integer >= {minimum}" if below is None else f"an integer in [{minimum}, {below})"
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        if value < minimum or (below is not None and value >= below):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


def positive_number(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value
