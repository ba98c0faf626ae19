"""How an answer is checked and how a wrong one is told.

A ``Check`` runs a student's function on several cases (or compares a number
with the reference for one case) and stops at the first case that fails. The
message says which case, what came back and how it is off (too large, by a
factor, wrong from the first unit on), and gives the hint of the typical
mistake it matches. It never shows a reference's code, and never the expected
value of the exercise's own question (``own``): only of the other cases.
"""

from __future__ import annotations

import contextlib
import math
import signal
import textwrap
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

WIDTH = 88  # no printed line is longer
HIDDEN = "not shown, since it is the exercise's own answer"


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``answer(*case)`` gives what the mistake gives."""

    answer: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Check:
    """One exercise's check.

    A ``function`` check calls the student's function on each of ``cases``; a
    ``value`` check compares one number with the reference for the case given
    by ``check``'s keywords (``defaults`` otherwise). ``own`` lists the cases
    that are the exercise's own question: their expected values stay hidden.
    """

    name: str
    summary: str  # what is checked, in one line
    kind: str  # "function" or "value"
    reference: Callable[..., Any]
    cases: tuple[tuple[Any, ...], ...] = ()
    arg_names: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    mistakes: tuple[Mistake, ...] = ()
    generic_hint: str = ""
    compare: Callable[[Any, Any], bool] | None = None
    own: tuple[tuple[Any, ...], ...] = ()


class Failed(Exception):
    """Carries the lines of a failure message."""


def as_plain(value: Any) -> Any:
    """A sequence (list, tuple, NumPy array, tensor of several values) as a list of
    Python numbers; a 0-d tensor or NumPy scalar as a number; anything else as it is."""
    if isinstance(value, (str, bytes, dict)):
        return value
    if hasattr(value, "tolist") and not isinstance(value, torch.Tensor):
        return value.tolist()  # NumPy arrays and scalars
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.ndim else value.item()
    if isinstance(value, (list, tuple, range)):
        return [as_plain(v) for v in value]
    return value


def precision_of(value: Any) -> float:
    """The relative tolerance an answer's floating-point type allows: a few units
    in the last place of float16, bfloat16 or float32 (a tensor or NumPy value,
    or a list of them), 1e-9 for float64 and plain Python numbers."""
    if isinstance(value, (list, tuple)):
        return max((precision_of(v) for v in value), default=1e-9)
    dtype = getattr(value, "dtype", None)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        eps = torch.finfo(value.dtype).eps
    elif dtype is not None and getattr(dtype, "kind", "") == "f":
        import numpy as np

        eps = float(np.finfo(dtype).eps)
    else:
        return 1e-9
    return max(1e-9, 8 * eps)


def same(expected: Any, got: Any, rel_tol: float | None = None) -> bool:
    """Equality for numbers, sequences of them and tensors, to within the precision
    of the answer's type (``precision_of``): 1e-9 relative for Python floats and
    float64, a few units in the last place for float32."""
    if expected is None or got is None:
        return False
    if isinstance(expected, torch.Tensor):
        return (
            isinstance(got, torch.Tensor)
            and got.shape == expected.shape
            and torch.allclose(got.float(), expected.float(), rtol=1e-5, atol=1e-6)
        )
    rel_tol = precision_of(got) if rel_tol is None else rel_tol
    got = as_plain(got)
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(same(e, g, rel_tol) for e, g in zip(expected, got))
        )
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    if not math.isfinite(got):
        return False
    if (
        isinstance(expected, int)
        and not isinstance(got, int)
        and not float(got).is_integer()
        and rel_tol <= 1e-9
    ):
        return False
    return math.isclose(float(expected), float(got), rel_tol=rel_tol, abs_tol=1e-12)


def show(value: Any) -> str:
    """A short rendering of a value for one line of output."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 4:
            return f"tensor {[round(v, 4) for v in value.flatten().tolist()]}"
        mean = value.float().mean().item()
        return f"tensor of shape {tuple(value.shape)}, mean {mean:.4f}"
    value = as_plain(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, list):
        items = [show(v) for v in value]
        text = "[" + ", ".join(items) + "]"
        if len(text) <= 60:
            return text
        return f"a list of {len(value)}: [{', '.join(items[:3])}, ..., {items[-1]}]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def how_off(expected: Any, got: Any, hidden: bool) -> str | None:
    """How a number, or a list of numbers, is off, without revealing a hidden answer."""
    got = as_plain(got)
    if (
        isinstance(expected, (list, tuple))
        and isinstance(got, list)
        and len(got) == len(expected)
    ):
        for index, (e, g) in enumerate(zip(expected, got), start=1):
            if not same(e, g):
                where = "the first value" if index == 1 else f"position {index}"
                detail = how_off(e, g, hidden) or "differs"
                shown = "" if hidden else f" (expected {show(e)}, got {show(g)})"
                return f"wrong from {where} on{shown}: {detail}"
        return None
    if not (
        isinstance(expected, (int, float)) and isinstance(got, (int, float))
    ) or isinstance(got, bool):
        return None
    if isinstance(got, float) and not math.isfinite(got):
        return "not a finite number" if got == got else "not a number (NaN)"
    if expected == 0 or got == 0:
        return "too large" if got > expected else "too small"
    ratio = got / expected
    for factor, words in ((ratio, "times too large"), (1 / ratio, "times too small")):
        if factor >= 1.99 and abs(factor - round(factor)) < 1e-6:
            # the factor would give a hidden answer away (got / factor)
            return (
                f"a whole number of {words}" if hidden else f"{round(factor)} {words}"
            )
    if ratio < 0:
        return "of the wrong sign"
    gap = abs(ratio - 1)
    size = f"about {gap:.0%}" if gap >= 0.01 else "less than 1%"
    text = f"too {'large' if ratio > 1 else 'small'}, by {size}"
    if not hidden and isinstance(expected, int) and isinstance(got, int):
        text += f" ({got - expected:+,})"
    return text


def type_problem(expected: Any, got: Any) -> str | None:
    if got is None:
        return "your answer returned None: did you forget the `return`?"
    if got is Ellipsis:
        return "your answer returned `...`: fill in the body of the function"
    plain = as_plain(got)
    if isinstance(expected, (list, tuple)) and not isinstance(plain, list):
        return f"expected a sequence of numbers, got a {type(got).__name__}"
    if isinstance(expected, (list, tuple)) and len(plain) != len(expected):
        return f"expected {len(expected)} values, got {len(plain)}"
    if isinstance(expected, torch.Tensor) and not isinstance(got, torch.Tensor):
        return f"expected a tensor, got a {type(got).__name__}"
    if isinstance(expected, torch.Tensor) and got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    return None


def emit(lines: list[str]) -> None:
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        for piece in textwrap.wrap(line, WIDTH, subsequent_indent=indent) or [""]:
            print(piece)


def _hint(spec: Check, case: tuple, got: Any) -> str:
    compare = spec.compare or same
    for mistake in spec.mistakes:
        try:
            wrong = mistake.answer(*case)
        except Exception:  # noqa: BLE001 - a mistake that does not apply to this case
            continue
        if wrong is not None and got is not None and compare(wrong, got):
            return mistake.hint
    return spec.generic_hint


def failure(spec: Check, where: str, case: tuple, got: Any, expected: Any) -> Failed:
    hidden = case in spec.own
    lines = [f"✗ {spec.name}: {where}"]
    problem = type_problem(expected, got)
    if problem:
        lines.append(f"  {problem}")
    else:
        lines.append(f"  expected: {HIDDEN if hidden else show(expected)}")
        lines.append(f"  got:      {show(got)}")
        off = how_off(expected, got, hidden)
        if off:
            lines.append(f"  {off}")
    hint = _hint(spec, case, got)
    if hint:
        lines.append(f"  hint: {hint}")
    return Failed(lines)


def describe_call(spec: Check, case: tuple) -> str:
    shown = [
        show(v) if isinstance(v, torch.Tensor) or isinstance(v, list) else repr(v)
        for v in case
    ]
    return (
        "answer(" + ", ".join(f"{n}={v}" for n, v in zip(spec.arg_names, shown)) + ")"
    )


def fresh(case: tuple) -> tuple:
    """The case's arguments, tensors cloned."""
    return tuple(v.clone() if isinstance(v, torch.Tensor) else v for v in case)


TIME_LIMIT = 10.0  # seconds one call of an answer may take


@contextlib.contextmanager
def time_limit(seconds: float, where: str):
    """End a call that takes longer than ``seconds`` (a loop that never ends) with a
    ``Failed`` that says so. It needs SIGALRM (not on Windows) and the main
    thread; elsewhere the call runs without a limit."""
    usable = hasattr(signal, "setitimer") and (
        threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def too_long(signum, frame):
        raise Failed(
            [
                where,
                f"  your function ran for more than {seconds:g} s and was stopped: "
                "does a loop never end?",
            ]
        )

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_function(spec: Check, answer: Callable[..., Any]) -> None:
    if not callable(answer):
        raise Failed([f"✗ {spec.name}: expected a function, got {show(answer)}"])
    compare = spec.compare or same
    for number, case in enumerate(spec.cases, start=1):
        where = f"case {number} of {len(spec.cases)}, {describe_call(spec, case)}"
        expected = spec.reference(*fresh(case))
        try:
            with time_limit(TIME_LIMIT, f"✗ {spec.name}: {where}"):
                got = answer(*fresh(case))  # an answer in place changes a copy
        except Failed:
            raise
        except SystemExit:
            raise Failed(
                [
                    f"✗ {spec.name}: {where}",
                    "  your function called exit() (or sys.exit): it would end the "
                    "kernel; return a value instead",
                ]
            ) from None
        except Exception as err:  # noqa: BLE001 - the student's code failed: say where
            frame = traceback.extract_tb(err.__traceback__)[-1]
            raise Failed(
                [
                    f"✗ {spec.name}: {where}",
                    f"  your function raised {type(err).__name__}: {err}",
                    f"  (line {frame.lineno}: {(frame.line or '').strip()})",
                ]
            ) from None
        if not compare(expected, got):
            raise failure(spec, where, case, got, expected)


def run_value(spec: Check, answer: Any, kw: dict[str, Any]) -> None:
    unknown = set(kw) - set(spec.defaults)
    if unknown:
        raise Failed(
            [
                f"✗ {spec.name}: unknown keyword {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(spec.defaults)}"
            ]
        )
    case_kw = {**spec.defaults, **kw}
    case = tuple(case_kw.values())
    if callable(answer):
        raise Failed(
            [f"✗ {spec.name}: expected a number, got a function: call it first"]
        )
    expected = spec.reference(*case)
    if not (spec.compare or same)(expected, answer):
        where = "for " + ", ".join(f"{k}={v!r}" for k, v in case_kw.items())
        raise failure(spec, where, case, answer, expected)
