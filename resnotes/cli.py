"""Argument types shared by the two command lines (``resnotes.train``, ``resnotes.bench``):
each refuses a bad value with a message that names the rule."""

from __future__ import annotations

import argparse
import math


def at_least(minimum: int, below: int | None = None, below_label: str = ""):
    """An integer >= ``minimum`` (and < ``below``, shown as ``below_label``, when given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"must be an integer < {below_label or below}, got {text}")
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
