"""Self-checks for the chapters' exercises.

A student calls ``check(name, answer)`` on an answer, usually a function and
sometimes a number. The check runs the answer against the package on several
cases. On success it prints one line starting with ✓ and returns True. On the
first failing case it prints which case, what came back and how it is off, and a
hint for the typical mistake, then returns False; it never raises for a wrong
answer, never prints a reference solution, and never the answer to the
exercise's own question. ``check("?", None)`` lists every check.

A sequence of numbers may be a list, a tuple, a NumPy array or a tensor. Each
chapter's checks are declared in their own module (``resnet``, ``pyramidnet``,
``densenet``, ``attention``, ``stochastic_depth``); ``checker`` runs them.
Everything runs on the CPU in well under a second.
"""

from __future__ import annotations

import os
from typing import Any

from . import attention, densenet, pyramidnet, resnet, stochastic_depth
from .checker import WIDTH, Check, Failed, emit, run_function, run_value

__all__ = [
    "CHECKS",
    "WIDTH",
    "Check",
    "Verdict",
    "check",
    "list_checks",
    "run_solutions",
]


def run_solutions() -> bool:
    """Whether the chapters' reference solutions run: only when the book is executed
    to be committed or tested (``RESNOTES_SOLUTIONS=1``), so that a reader's "Run
    all" prints no answer. Each reference cell starts with
    ``if rn.run_solutions():``."""
    return os.environ.get("RESNOTES_SOLUTIONS", "").strip() == "1"


CHECKS: dict[str, Check] = {
    spec.name: spec
    for module in (resnet, pyramidnet, densenet, attention, stochastic_depth)
    for spec in module.CHECKS
}


class Verdict:
    """What ``check`` returns: true when the answer passed. A notebook shows
    nothing for it (the verdict is already printed), so a cell that ends with
    ``check(...)`` shows no stray ``True``."""

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        return (
            bool(self) == other
            if isinstance(other, (bool, Verdict))
            else NotImplemented
        )

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return f"Verdict(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing: ``check`` has printed its verdict."""


def check(name: str, answer: Any, **kw: Any) -> Verdict:
    """Check ``answer`` for the exercise ``name``; print a verdict and return a
    ``Verdict``, true when the answer passed. Where the chapters' reference
    solutions run (``run_solutions``), a failed check raises ``AssertionError``,
    so that a wrong reference cannot pass unseen."""
    verdict = Verdict(_check(name, answer, **kw))
    if not verdict and run_solutions():
        raise AssertionError(
            f"{name}: a check failed with RESNOTES_SOLUTIONS=1, where only the "
            "chapters' reference solutions call it"
        )
    return verdict


def _check(name: str, answer: Any, **kw: Any) -> bool:
    spec = CHECKS.get(name)
    if spec is None:
        listed = [f"  {n}: {c.summary}" for n, c in CHECKS.items()]
        emit([f"✗ no check named {name!r}. The checks are:", *listed])
        return False
    if answer is None or answer is Ellipsis:
        emit(
            [
                f"✗ {name}: no answer yet. Fill in the exercise, then run this cell "
                f"again."
            ]
        )
        return False
    try:
        if spec.kind == "function":
            if kw:
                raise Failed(
                    [f"✗ {name}: takes no keyword arguments (got {', '.join(kw)})"]
                )
            run_function(spec, answer)
        else:
            run_value(spec, answer, kw)
    except Failed as failed:
        emit(failed.args[0])
        return False
    except Exception as exc:  # noqa: BLE001 - an answer that breaks the comparison
        emit(
            [
                f"✗ {name}: your answer could not be compared with the expected one "
                f"({type(exc).__name__}: {str(exc)[:120]}); return plain numbers",
            ]
        )
        return False
    cases = f" on all {len(spec.cases)} cases" if spec.kind == "function" else ""
    emit([f"✓ {name}: correct{cases}."])
    return True


def list_checks() -> list[str]:
    """The names of every check."""
    return list(CHECKS)
