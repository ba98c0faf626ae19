"""Self-checks for the chapters' exercises.

A student calls ``check(name, answer)`` on an answer, usually a function and
sometimes a number. The check runs the answer against the package on several
cases. On success it prints one line starting with ✓ and returns True. On the
first failing case it prints which case, what was expected and what came back,
and a hint for the typical mistake, then returns False. It never raises for a
wrong answer, and never prints the reference solution (only the expected value
of the failing case). ``check("?", None)`` lists every check.

Everything runs on the CPU in well under a second: the models a check builds
are small, and their counts are cached.
"""

from __future__ import annotations

import functools
import math
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["CHECKS", "check", "list_checks"]

WIDTH = 88  # no printed line is longer


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``answer(*case)`` gives what the mistake gives; ``hint`` names it."""

    answer: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Check:
    """One exercise check.

    ``function`` checks call the student's function on each case; ``value``
    checks compare a single answer (a number) with the reference for the case
    given by the keyword arguments of ``check`` (``defaults`` otherwise).
    """

    name: str
    summary: str  # what the check checks, in one line
    kind: str  # "function" or "value"
    reference: Callable[..., Any]
    cases: tuple[tuple[Any, ...], ...] = ()  # function checks: positional arguments
    arg_names: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)  # value checks: the case
    mistakes: tuple[Mistake, ...] = ()
    generic_hint: str = ""
    compare: Callable[[Any, Any], bool] | None = None
    success: str = ""


class _Failed(Exception):
    """Internal: carries the lines of a failure message."""


# --------------------------------------------------------------------------- helpers


def _same(expected: Any, got: Any) -> bool:
    """Equality for ints, floats (relative 1e-9), sequences of them and tensors."""
    if expected is None or got is None:
        return False
    if isinstance(expected, torch.Tensor):
        return (
            isinstance(got, torch.Tensor)
            and got.shape == expected.shape
            and torch.allclose(got.float(), expected.float(), rtol=1e-5, atol=1e-6)
        )
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return False
        return all(_same(e, g) for e, g in zip(expected, got))
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        if hasattr(got, "item") and getattr(got, "numel", lambda: 1)() == 1:
            got = got.item()  # a 0-d tensor or numpy scalar
        else:
            return False
    if isinstance(expected, int) and not isinstance(got, int) and not float(got).is_integer():
        return False
    return math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-12)


def _show(value: Any) -> str:
    """A short rendering of a value for one line of output."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 4:
            return f"tensor {[round(v, 4) for v in value.flatten().tolist()]}"
        return f"tensor of shape {tuple(value.shape)}, mean {value.float().mean().item():.4f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        items = [_show(v) for v in value]
        text = "[" + ", ".join(items) + "]"
        if len(text) <= 60:
            return text
        return f"a list of {len(value)}: [{', '.join(items[:3])}, ..., {items[-1]}]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_difference(expected: list, got: list, label: str) -> str | None:
    """For two lists of equal length, where they first differ, as one line."""
    if not isinstance(got, (list, tuple)) or len(got) != len(expected):
        return None
    for index, (e, g) in enumerate(zip(expected, got)):
        if not _same(e, g):
            return f"first difference at {label} {index + 1}: expected {_show(e)}, got {_show(g)}"
    return None


def _describe_call(check: Check, case: tuple) -> str:
    args = ", ".join(
        f"{n}={_show(v) if isinstance(v, torch.Tensor) else repr(v)}" for n, v in zip(check.arg_names, case)
    )
    return f"answer({args})"


def _emit(lines: list[str]) -> None:
    for line in lines:
        indent = len(line) - len(line.lstrip())
        for piece in textwrap.wrap(line, WIDTH, subsequent_indent=" " * (indent + 2), break_long_words=True) or [""]:
            print(piece)


def _hint_for(check: Check, case: tuple, got: Any) -> str:
    compare = check.compare or _same
    for mistake in check.mistakes:
        try:
            wrong = mistake.answer(*case)
        except Exception:  # a mistake that does not apply to this case
            continue
        if wrong is not None and got is not None and compare(wrong, got):
            return mistake.hint
    return check.generic_hint


def _type_problem(expected: Any, got: Any) -> str | None:
    if got is None:
        return "your answer returned None: did you forget the `return`?"
    if got is Ellipsis:
        return "your answer returned `...`: fill in the body of the function"
    if isinstance(expected, (list, tuple)) and not isinstance(got, (list, tuple)):
        return f"expected a list, got a {type(got).__name__}"
    if isinstance(expected, (list, tuple)) and len(got) != len(expected):
        return f"expected a list of {len(expected)} values, got {len(got)}"
    if isinstance(expected, torch.Tensor) and not isinstance(got, torch.Tensor):
        return f"expected a tensor, got a {type(got).__name__}"
    if isinstance(expected, torch.Tensor) and got.shape != expected.shape:
        return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    return None


def _failure(check: Check, where: str, expected: Any, got: Any, case: tuple) -> _Failed:
    compare = check.compare or _same
    lines = [f"✗ {check.name}: {where}"]
    problem = _type_problem(expected, got)
    if problem:
        lines.append(f"  {problem}")
    else:
        lines.append(f"  expected: {_show(expected)}")
        lines.append(f"  got:      {_show(got)}")
        if isinstance(expected, (list, tuple)):
            diff = _first_difference(list(expected), list(got), "position")
            if diff:
                lines.append(f"  {diff}")
        if isinstance(expected, (int, float)) and isinstance(got, (int, float)) and not isinstance(got, bool):
            gap = got - expected
            if gap and not compare(expected, got):
                lines.append(f"  got - expected = {_show(gap) if isinstance(gap, float) else f'{gap:+,}'}")
    hint = _hint_for(check, case, got)
    if hint:
        lines.append(f"  hint: {hint}")
    return _Failed(lines)


def _run_function(check: Check, answer: Callable[..., Any]) -> None:
    if not callable(answer):
        raise _Failed([f"✗ {check.name}: expected a function, got {_show(answer)}"])
    compare = check.compare or _same
    for number, case in enumerate(check.cases, start=1):
        where = f"case {number} of {len(check.cases)}, {_describe_call(check, case)}"
        expected = check.reference(*case)
        try:
            got = answer(*case)
        except Exception as err:  # the student's code failed: say where, not why we think so
            frame = traceback.extract_tb(err.__traceback__)[-1]
            raise _Failed([
                f"✗ {check.name}: {where}",
                f"  your function raised {type(err).__name__}: {err}",
                f"  (line {frame.lineno}: {(frame.line or '').strip()})",
            ]) from None  # fmt: skip
        if not compare(expected, got):
            raise _failure(check, where, expected, got, case)


def _run_value(check: Check, answer: Any, kw: dict[str, Any]) -> None:
    unknown = set(kw) - set(check.defaults)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise _Failed([f"✗ {check.name}: unknown keyword {names}; it takes {', '.join(check.defaults)}"])
    case_kw = {**check.defaults, **kw}
    case = tuple(case_kw.values())
    expected = check.reference(*case)
    if callable(answer):
        raise _Failed([f"✗ {check.name}: expected a number, got a function: call it first"])
    if not (check.compare or _same)(expected, answer):
        where = "for " + ", ".join(f"{k}={v!r}" for k, v in case_kw.items())
        raise _failure(check, where, expected, answer, case)


def check(name: str, answer: Any, **kw: Any) -> bool:
    """Check ``answer`` for the exercise ``name``; print a verdict and return True or False."""
    spec = CHECKS.get(name)
    if spec is None:
        _emit([f"✗ no check named {name!r}. The checks are:", *(f"  {n}: {c.summary}" for n, c in CHECKS.items())])
        return False
    if answer is None or answer is Ellipsis:
        _emit([f"✗ {name}: no answer yet. Fill in the exercise, then run this cell again."])
        return False
    try:
        if spec.kind == "function":
            if kw:
                raise _Failed([f"✗ {name}: takes no keyword arguments (got {', '.join(kw)})"])
            _run_function(spec, answer)
        else:
            _run_value(spec, answer, kw)
    except _Failed as failed:
        _emit(failed.args[0])
        return False
    cases = f" on all {len(spec.cases)} cases" if spec.kind == "function" else ""
    _emit([f"✓ {name}: correct{cases}." + (f" {spec.success}" if spec.success else "")])
    return True


def list_checks() -> list[str]:
    """The names of every check."""
    return list(CHECKS)


# --------------------------------------------------------------------------- references
# Every reference reads the package (a helper or a model built with explicit
# keyword arguments); the mistakes are formulas for what a typical error gives.


def _params(build: Callable[[], torch.nn.Module]) -> int:
    from .models import count_parameters

    # The models counted here are small: building them on the CPU is faster than
    # on the meta device, whose dispatch overhead dominates at this size.
    with torch.no_grad():
        return count_parameters(build())


# Chapter 1: the pre-activation ResNet


def _ref_units_per_stage(depth: int, bottleneck: bool) -> int:
    from .models.preact_resnet import units_per_stage

    return units_per_stage(depth, bottleneck)


def _unit_formula(in_ch, width, stride, bottleneck, bn=2, expansion=None, projection=True, bias=False) -> int:
    """Parameters of a pre-activation unit, with switches for the typical mistakes."""
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


def _ref_unit_params(in_channels: int, width: int, stride: int, bottleneck: bool) -> int:
    from .models.preact_resnet import PreActBasicUnit, PreActBottleneckUnit

    unit = PreActBottleneckUnit if bottleneck else PreActBasicUnit
    return _params(lambda: unit(in_channels=in_channels, width=width, stride=stride))


def _projections(depth: int, bottleneck: bool) -> int:
    n = _ref_units_per_stage(depth, bottleneck)
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
def _ref_resnet_params(depth: int, bottleneck: bool) -> int:
    from .models.preact_resnet import PreActResNet

    return _params(lambda: PreActResNet(depth=depth, bottleneck=bottleneck, num_classes=10))


def _final(bottleneck: bool) -> int:
    return 64 * (4 if bottleneck else 1)


# Chapter 2: PyramidNet


def _ref_multiplicative_widths(num_units: int, alpha: float) -> list[int]:
    from .models.pyramidnet import pyramid_widths

    return pyramid_widths(num_units, alpha, widening="multiplicative")


def _pyramid_formula(widths, bn=2, stem=True, fc=True, final_bn=True, shift=False) -> int:
    """Parameters of a basic PyramidNet whose units have ``widths``, with switches for the typical mistakes."""
    total = (27 * 16 + bn * 16) if stem else 0
    previous = 16
    for width in widths:
        inp = width if shift else previous
        total += bn * inp + 9 * inp * width + bn * width + 9 * width * width + bn * width
        previous = width
    total += bn * previous if final_bn else 0
    total += 10 * previous + 10 if fc else 0
    return total


def _pyramid_case(widths: list[int]) -> tuple[int, float, str]:
    """The (depth, alpha, widening) of the registry-style PyramidNet with these unit widths."""
    return _WIDTH_CASES[tuple(widths)]


def _ref_pyramid_params_from_widths(widths: list[int]) -> int:
    return _ref_pyramid_params(*_pyramid_case(widths))


@functools.lru_cache(maxsize=64)
def _ref_pyramid_params(depth: int, alpha: float, widening: str) -> int:
    from .models.pyramidnet import PyramidNet

    return _params(lambda: PyramidNet(depth=depth, alpha=alpha, bottleneck=False, widening=widening, num_classes=10))


def _pyramid_widths_floor(depth: int, alpha: float, widening: str) -> list[int]:
    n = 3 * ((depth - 2) // 6)
    if widening == "additive":
        return [math.floor(16 + k * alpha / n) for k in range(1, n + 1)]
    return [math.floor(16 * alpha ** (k / n)) for k in range(1, n + 1)]


# Chapter 3: DenseNet-BC


def _ref_transition_channels(depth: int, growth_rate: int, compression: float) -> list[int]:
    from .models.densenet import block_widths, layers_per_block

    n = layers_per_block(depth, bottleneck=True)
    first = block_widths(2 * growth_rate, n, growth_rate)[-1]
    second = block_widths(math.floor(compression * first), n, growth_rate)[-1]
    return [first, second]


def _transitions_formula(depth, k, theta, stem=None, n=None, squeeze=math.floor, compress=True, extra=0):
    n = ((depth - 4) // 6 if n is None else n) + extra
    first = (2 * k if stem is None else stem) + n * k
    start = squeeze(theta * first) if compress else first
    return [first, start + n * k]


def _ref_dense_layer_params(in_channels: int, growth_rate: int) -> int:
    from .models.densenet import DenseLayer

    return _params(lambda: DenseLayer(in_channels=in_channels, growth_rate=growth_rate, bottleneck=True))


def _ref_stored_channels(in_channels: int, num_layers: int, growth_rate: int) -> int:
    from .models.densenet import block_widths

    return sum(block_widths(in_channels, num_layers, growth_rate)[:-1])


# Chapter 4: the Residual Attention Network


def _module(attention: str):
    from .models.attention import AttentionModule

    # The smallest module there is: 4 channels (bottleneck width 1), 8x8 input (one pooling).
    return AttentionModule(channels=4, input_size=8, p=1, t=1, r=1, attention=attention)


def _ref_signal(mask: float, modules: int, attention: str) -> float:
    combine = _module(attention).combine
    signal = torch.ones((), dtype=torch.float64)
    for _ in range(modules):
        signal = combine(signal, torch.tensor(mask, dtype=torch.float64))
    return signal.item()


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


def _ref_combine(trunk: torch.Tensor, mask: torch.Tensor, attention: str) -> torch.Tensor:
    return _module(attention).combine(trunk, mask)


def _ref_modules_per_stage(depth: int, p: int, t: int) -> int:
    from .models.attention import modules_per_stage

    return modules_per_stage(depth, p, t)


# Chapter 5: stochastic depth


def _ref_survival(num_blocks: int, final_survival: float, rule: str) -> list[float]:
    from .models.stochastic_depth import survival_probabilities

    return survival_probabilities(num_blocks, final_survival, rule)


def _ref_expected_active(num_blocks: int, final_survival: float, rule: str) -> float:
    return sum(_ref_survival(num_blocks, final_survival, rule))


def _blocks(depth: int) -> int:
    return 3 * _ref_units_per_stage(depth, False)


def _ref_time_saving(depth: int, final_survival: float) -> float:
    blocks = _blocks(depth)
    return 1 - _ref_expected_active(blocks, final_survival, "linear") / blocks


def _linear_from_zero(L, p, rule="linear"):
    return [1 - (l / L) * (1 - p) for l in range(L)] if rule == "linear" else [p] * L


def _loose(tolerance: float) -> Callable[[Any, Any], bool]:
    def compare(expected: Any, got: Any) -> bool:
        try:
            return abs(float(expected) - float(got)) <= tolerance
        except (TypeError, ValueError):
            return False

    return compare


# --------------------------------------------------------------------------- the registry

_WIDTH_CASES: dict[tuple[int, ...], tuple[int, float, str]] = {}


def _width_case(depth: int, alpha: float, widening: str) -> list[int]:
    from .models.pyramidnet import pyramid_widths

    widths = pyramid_widths(3 * _ref_units_per_stage(depth, False), alpha, widening)
    _WIDTH_CASES[tuple(widths)] = (depth, alpha, widening)
    return widths


_FORGOT_STEM = "forgot the stem: a 3×3 convolution from 3 to 16 channels (432 parameters)"
_NO_BN = "forgot the batch norms: each BatchNorm2d has 2 trainable parameters per channel (γ and β)"
_BN_BUFFERS = "counted 4 per BN channel: the running mean and variance are buffers, not parameters"
_BIAS = "counted conv biases: every convolution here has bias=False"

CHECKS: dict[str, Check] = {}


def _register(check: Check) -> None:
    CHECKS[check.name] = check


def _build_registry() -> None:
    # ---- chapter 1
    _register(Check(
        "resnet.units_per_stage", "n, units per stage, from the depth (6n+2 or 9n+2)", "function",
        _ref_units_per_stage,
        cases=((20, False), (56, False), (110, False), (164, True), (1001, True), (29, True)),
        arg_names=("depth", "bottleneck"),
        mistakes=(
            Mistake(lambda d, b: d / (9 if b else 6), "forgot the 2 layers that are not in a unit: "
                    "the stem convolution and the classifier (depth = 6n+2 or 9n+2)"),
            Mistake(lambda d, b: (d - 2) // 6, "a bottleneck unit has 3 convolutions, so depth = 9n+2, not 6n+2"),
            Mistake(lambda d, b: (d - 2) // (3 if b else 2), "n counts the units of ONE stage: divide by 3 stages too"),
        ),
        generic_hint="count the layers: 2 (basic) or 3 (bottleneck) per unit, 3 stages of n units, +2",
    ))  # fmt: skip
    _register(Check(
        "resnet.unit_params", "parameters of one pre-activation unit (basic or bottleneck)", "function",
        _ref_unit_params,
        cases=((16, 16, 1, False), (16, 32, 2, False), (64, 64, 1, False), (64, 16, 1, True), (16, 16, 1, True),
               (256, 32, 2, True)),
        arg_names=("in_channels", "width", "stride", "bottleneck"),
        mistakes=(
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, projection=False),
                    "forgot the projection: where the stride is 2 or the channels change, the shortcut "
                    "is a 1×1 convolution from in_channels to the unit's output channels"),
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, bn=0), _NO_BN),
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, bn=4), _BN_BUFFERS),
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, bias=True), _BIAS),
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, expansion=1),
                    "a bottleneck unit's last 1×1 convolution expands to 4 × width channels"),
            Mistake(lambda i, w, s, b: _unit_formula(i, w, s, b, bn=0, projection=False),
                    "forgot both the batch norms (2 parameters per channel) and the projection shortcut"),
        ),
        generic_hint="list the layers of the unit (print it) and add them up: a k×k conv from a to b "
                     "channels has a·b·k² weights; a BN has 2 per channel",
    ))  # fmt: skip
    _register(Check(
        "resnet.params", "parameters of a whole pre-activation ResNet", "function",
        _ref_resnet_params,
        cases=((20, False), (56, False), (110, False), (164, True), (47, True)),
        arg_names=("depth", "bottleneck"),
        mistakes=(
            Mistake(lambda d, b: _ref_resnet_params(d, b) - 432, _FORGOT_STEM),
            Mistake(lambda d, b: _ref_resnet_params(d, b) - 10 * _final(b) - 10,
                    "forgot the classifier: a linear layer from the last width to 10 classes, with bias"),
            Mistake(lambda d, b: _ref_resnet_params(d, b) - 10 * _final(b),
                    "the classifier's weights are missing but its 10 biases are there"),
            Mistake(lambda d, b: _ref_resnet_params(d, b) - 2 * _final(b),
                    "forgot the final BN (before the pooling): 2 parameters per channel"),
            Mistake(lambda d, b: _ref_resnet_params(d, b) - _projections(d, b),
                    "forgot the projection shortcuts where a unit changes the shape"),
            Mistake(lambda d, b: _ref_resnet_params(d, b) - 432 - 10 * _final(b) - 10 - 2 * _final(b),
                    "counted only the units: add the stem convolution, the final BN and the classifier"),
        ),
        generic_hint="stem + 3 stages of n units (the first unit of stages 2 and 3 strides) + final "
                     "BN + classifier; check one unit with check('resnet.unit_params', ...) first",
    ))  # fmt: skip
    # ---- chapter 2
    _register(Check(
        "pyramidnet.multiplicative_widths", "D_k = 16·α^(k/N), k = 1..N, rounded half up", "function",
        _ref_multiplicative_widths,
        cases=((9, 4.0), (54, 4.0), (12, 2.5), (54, 4.8), (90, 4.0)),
        arg_names=("num_units", "alpha"),
        mistakes=(
            Mistake(lambda n, a: [math.floor(16 * a ** (k / n)) for k in range(1, n + 1)],
                    "floor against round: the paper floors D_k, but the package (like the official "
                    "code) keeps the exact value and rounds it half up, floor(x + 0.5)"),
            Mistake(lambda n, a: [round(16 * a ** (k / n)) for k in range(n)],
                    "off by one in the unit index: k runs from 1 to N (16 is the stem, D_0), so the "
                    "first unit already widens and the last is 16·α"),
            Mistake(lambda n, a: [round(16 * a ** (k / n)) for k in range(n + 1)],
                    "return N widths, for units 1..N: the stem's 16 is D_0, not a unit"),
            Mistake(lambda n, a: [16 * a ** (k / n) for k in range(1, n + 1)],
                    "widths are channel counts: round each exact value to an integer, half up"),
            Mistake(lambda n, a: [math.floor(16 + k * a / n + 0.5) for k in range(1, n + 1)],
                    "that is the additive rule, 16 + kα/N: multiply by α^(1/N) per unit instead"),
            Mistake(lambda n, a: [math.floor(16 * a ** k / n + 0.5) for k in range(1, n + 1)],
                    "the exponent is k/N: 16·α^(k/N), not 16·α^k/N"),
        ),
        generic_hint="D_k = D_(k-1)·α^(1/N) with D_0 = 16, that is 16·α^(k/N); round each half up",
    ))  # fmt: skip
    networks = ((20, 36, "additive"), (110, 48, "additive"), (110, 4, "multiplicative"), (56, 120, "additive"))
    width_cases = tuple((_width_case(d, a, w),) for d, a, w in networks)
    _register(Check(
        "pyramidnet.params_from_widths", "parameters of a basic PyramidNet from its unit widths", "function",
        _ref_pyramid_params_from_widths,
        cases=width_cases,
        arg_names=("widths",),
        mistakes=(
            Mistake(lambda w: _pyramid_formula(w, stem=False), "forgot the stem: conv 3×3 from 3 to 16 "
                    "channels (432) and its BN (32)"),
            Mistake(lambda w: _pyramid_formula(w) - 432, _FORGOT_STEM),
            Mistake(lambda w: _pyramid_formula(w) - 32, "forgot the stem's BN: PyramidNet's stem is conv-BN"),
            Mistake(lambda w: _pyramid_formula(w, fc=False), "forgot the classifier: D_N·10 weights + 10 biases"),
            Mistake(lambda w: _pyramid_formula(w, final_bn=False), "forgot the final BN before the pooling"),
            Mistake(lambda w: _pyramid_formula(w, bn=0), _NO_BN),
            Mistake(lambda w: _pyramid_formula(w, bn=4), _BN_BUFFERS),
            Mistake(lambda w: _pyramid_formula(w, shift=True),
                    "off by one in the unit index: unit k reads D_(k-1) channels (D_0 = 16), not D_k"),
        ),
        generic_hint="per unit: BN(D_(k-1)), conv 3×3 D_(k-1)→D_k, BN(D_k), conv 3×3 D_k→D_k, BN(D_k); "
                     "the shortcut has no parameters",
    ))  # fmt: skip
    _register(Check(
        "pyramidnet.params", "parameter count of one PyramidNet (default: -110, ×, α=4)", "value",
        _ref_pyramid_params,
        defaults={"depth": 110, "alpha": 4, "widening": "multiplicative"},
        mistakes=(
            Mistake(lambda d, a, w: _ref_pyramid_params(d, 48, "additive"),
                    "that is the additive PyramidNet with α=48; count the multiplicative one"),
            Mistake(lambda d, a, w: _ref_pyramid_params(d, 48, w) if w == "multiplicative" else None,
                    "with the multiplicative rule α=48 ends at 16·48 = 768 channels; the chapter's "
                    "multiplicative network uses α=4, which ends at 64 like the additive α=48"),
            Mistake(lambda d, a, w: _pyramid_formula(_pyramid_widths_floor(d, a, w)),
                    "floor against round: you floored the widths as the paper's formula does; the "
                    "package rounds half up"),
            Mistake(lambda d, a, w: _ref_pyramid_params(d, a, w) - 464, "forgot the stem (conv 432 + BN 32)"),
        ),
        generic_hint="build it with pyramidnet(depth=..., alpha=..., widening=...) and count, or use "
                     "your params_from_widths on your widths",
    ))  # fmt: skip
    # ---- chapter 3
    _register(Check(
        "densenet.transition_channels", "channels entering the two transitions of a DenseNet-BC", "function",
        _ref_transition_channels,
        cases=((100, 12, 0.5), (250, 24, 0.5), (190, 40, 0.5), (22, 7, 0.5), (40, 12, 0.25)),
        arg_names=("depth", "growth_rate", "compression"),
        mistakes=(
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, stem=16),
                    "forgot that DenseNet-BC's stem has 2k channels; 16 is the plain DenseNet's"),
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, n=(d - 4) // 3),
                    "each BC layer has two convolutions (1×1 and 3×3), so depth = 6n+4, not 3n+4"),
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, compress=False),
                    "the first transition compresses: block 2 starts from floor(θ·m) channels"),
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, squeeze=lambda x: math.floor(x + 0.5)),
                    "floor against round: a transition maps m channels to floor(θ·m)"),
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, squeeze=round),
                    "floor against round: a transition maps m channels to floor(θ·m)"),
            Mistake(lambda d, k, t: _transitions_formula(d, k, t, extra=-1),
                    "off by one: a block of n layers adds n·k channels (the last layer's output too)"),
            Mistake(lambda d, k, t: [math.floor(t * x) for x in _ref_transition_channels(d, k, t)],
                    "those are the channels leaving the transitions; the question asks for entering"),
        ),
        generic_hint="stem 2k; block: + n·k; transition: floor(θ·m); with n = (depth − 4) / 6",
    ))  # fmt: skip
    _register(Check(
        "densenet.layer_params", "parameters of one DenseNet-BC layer", "function",
        _ref_dense_layer_params,
        cases=((24, 12), (204, 12), (108, 12), (48, 24), (80, 40)),
        arg_names=("in_channels", "growth_rate"),
        mistakes=(
            Mistake(lambda i, k: i * 4 * k + 9 * 4 * k * k, _NO_BN),
            Mistake(lambda i, k: 4 * i + i * 4 * k + 4 * 4 * k + 9 * 4 * k * k, _BN_BUFFERS),
            Mistake(lambda i, k: 2 * i + i * k + 2 * k + 9 * k * k,
                    "the bottleneck 1×1 convolution outputs 4k channels, not k"),
            Mistake(lambda i, k: 2 * i + 9 * i * k, "that is a plain DenseNet layer (BN-ReLU-conv3×3); "
                    "the BC layer has a 1×1 bottleneck to 4k channels first"),
            Mistake(lambda i, k: 2 * i + i * 4 * k + 4 * k + 2 * 4 * k + 9 * 4 * k * k + k, _BIAS),
        ),
        generic_hint="BN(m), conv 1×1 m→4k, BN(4k), conv 3×3 4k→k",
    ))  # fmt: skip
    _register(Check(
        "densenet.stored_channels", "channels of all the concatenated inputs of one block", "function",
        _ref_stored_channels,
        cases=((24, 16, 12), (108, 16, 12), (16, 12, 12), (150, 16, 12), (10, 3, 5)),
        arg_names=("in_channels", "num_layers", "growth_rate"),
        mistakes=(
            Mistake(lambda c, n, k: sum(c + l * k for l in range(1, n + 1)),
                    "off by one: layer ℓ reads k_0 + (ℓ−1)k channels, so the first layer reads only "
                    "the block input"),
            Mistake(lambda c, n, k: sum(c + l * k for l in range(n + 1)),
                    "include the n layer inputs only, not the block's output"),
            Mistake(lambda c, n, k: n * c + k * n * n / 2,
                    "Σ(ℓ−1) for ℓ = 1..n is n(n−1)/2, not n²/2"),
        ),
        generic_hint="sum k_0 + (ℓ−1)k over the layers ℓ = 1..n",
    ))  # fmt: skip
    # ---- chapter 4
    _register(Check(
        "attention.signal", "trunk signal left after m modules with a constant mask", "function",
        _ref_signal,
        cases=((0.5, 3, "nal"), (0.5, 6, "nal"), (0.5, 12, "nal"), (0.5, 3, "arl"), (0.5, 12, "arl"),
               (0.8, 6, "nal"), (0.25, 6, "arl")),
        arg_names=("mask", "modules", "attention"),
        mistakes=(
            Mistake(lambda m, n, a: 1 + m**n if a == "arl" else None,
                    "ARL multiplies by (1 + M) in every module: (1 + M)^m, not 1 + M^m"),
            Mistake(lambda m, n, a: (1 + m) ** n if a == "nal" else m**n,
                    "NAL and ARL swapped: NAL is H = M·T, ARL is H = (1 + M)·T"),
            Mistake(lambda m, n, a: (m if a == "nal" else 1 + m) * n,
                    "the factors multiply from module to module: a power, not a product by m"),
            Mistake(lambda m, n, a: (m if a == "nal" else 1 + m) ** (n - 1),
                    "off by one: every one of the m modules applies its factor"),
            Mistake(lambda m, n, a: (m if a == "nal" else 1 + m) ** (n + 1),
                    "off by one: m modules apply the factor m times"),
            Mistake(lambda m, n, a: (1 - m) ** n, "the mask M is what is kept, not what is removed"),
        ),
        generic_hint="one module multiplies the trunk by M (NAL) or by 1 + M (ARL)",
    ))  # fmt: skip
    _register(Check(
        "attention.combine", "H from the trunk T and the mask M, for ARL and NAL", "function",
        _ref_combine,
        cases=_combine_cases(),
        arg_names=("trunk", "mask", "attention"),
        mistakes=(
            Mistake(lambda t, m, a: 1 + m * t if a == "arl" else m * t,
                    "that is the survey's misprint, 1 + M·T; the paper's formula is (1 + M)·T"),
            Mistake(lambda t, m, a: m * t if a == "arl" else (1 + m) * t,
                    "NAL and ARL swapped: NAL is H = M·T, ARL is H = (1 + M)·T"),
            Mistake(lambda t, m, a: m + t, "the mask multiplies the trunk: H = (1 + M)·T for ARL"),
            Mistake(lambda t, m, a: (1 + m) * t, "NAL has no 1: H = M·T"),
        ),
        generic_hint="ARL: H = (1 + M)·T; NAL: H = M·T, elementwise",
    ))  # fmt: skip
    _register(Check(
        "attention.modules_per_stage", "m from depth = 9m(2p+t) + 20", "function",
        _ref_modules_per_stage,
        cases=((56, 1, 2), (92, 1, 2), (164, 1, 2), (236, 1, 2), (452, 2, 4), (29, 0, 1)),
        arg_names=("depth", "p", "t"),
        mistakes=(
            Mistake(lambda d, p, t: d // (9 * (2 * p + t)), "forgot the 20 layers outside the modules: "
                    "stem, classifier and six more units"),
            Mistake(lambda d, p, t: (d - 20) // (3 * (2 * p + t)), "each module sits in all 3 stages and "
                    "each unit has 3 layers: 9 = 3 × 3"),
            Mistake(lambda d, p, t: (d - 20) // (9 * (p + t)), "p units come before the split AND p after: 2p + t"),
            Mistake(lambda d, p, t: (d - 20) // 36, "36m + 20 holds only for p=1, t=2: use 9m(2p+t) + 20"),
        ),
        generic_hint="solve depth = 9m(2p+t) + 20 for m",
    ))  # fmt: skip
    # ---- chapter 5
    _register(Check(
        "stochastic_depth.survival_probabilities", "p_l for the linear and the uniform rule", "function",
        _ref_survival,
        cases=((54, 0.5, "linear"), (54, 0.5, "uniform"), (15, 0.5, "linear"), (600, 0.5, "linear"),
               (10, 0.8, "linear"), (7, 0.2, "uniform")),
        arg_names=("num_blocks", "final_survival", "rule"),
        mistakes=(
            Mistake(_linear_from_zero, "off by one in the unit index: l runs from 1 to L, so the first block "
                    "has p_1 = 1 − (1−p_L)/L and the last has exactly p_L"),
            Mistake(lambda L, p, r: [1 - (l / (L - 1)) * (1 - p) for l in range(L)] if r == "linear" else None,
                    "off by one in the unit index: the paper's l runs from 1 to L and divides by L, so "
                    "p_1 < 1"),
            Mistake(lambda L, p, r: [1 - p] * L if r == "uniform" else [1 - (l / L) * p for l in range(1, L + 1)],
                    "p_L is the probability to survive, not to be dropped"),
            Mistake(lambda L, p, r: [p] * L if r == "linear" else None,
                    "that is the uniform rule; the linear rule decays from about 1 to p_L"),
        ),
        generic_hint="linear: p_l = 1 − (l/L)(1 − p_L) for l = 1..L; uniform: p_l = p_L",
    ))  # fmt: skip
    _register(Check(
        "stochastic_depth.expected_active_blocks", "E[active blocks] = Σ p_l", "function",
        _ref_expected_active,
        cases=((54, 0.5, "linear"), (54, 0.5, "uniform"), (600, 0.5, "linear"), (15, 0.5, "linear"),
               (15, 0.75, "uniform"), (100, 0.8, "linear")),
        arg_names=("num_blocks", "final_survival", "rule"),
        mistakes=(
            Mistake(lambda L, p, r: L * (1 + p) / 2 if r == "linear" else None,
                    "L(1 + p_L)/2 is the continuous approximation: Σ l for l = 1..L is L(L+1)/2, so "
                    "E = L − (1 − p_L)(L+1)/2"),
            Mistake(lambda L, p, r: sum(_linear_from_zero(L, p, r)),
                    "off by one in the unit index: l runs from 1 to L"),
            Mistake(lambda L, p, r: _ref_expected_active(L, p, r) / L,
                    "that is the fraction of blocks; the question asks for the number"),
            Mistake(lambda L, p, r: L - _ref_expected_active(L, p, r),
                    "that is the expected number of DROPPED blocks"),
        ),
        generic_hint="each block is active with probability p_l, so E = Σ p_l",
    ))  # fmt: skip
    _register(Check(
        "stochastic_depth.time_saving", "predicted fraction of training time saved", "function",
        _ref_time_saving,
        cases=((110, 0.5), (1202, 0.5), (32, 0.5), (56, 0.8), (20, 0.2)),
        arg_names=("depth", "final_survival"),
        mistakes=(
            Mistake(lambda d, p: (1 - p) / 2, "(1 − p_L)/2 is the continuous approximation; the exact "
                    "sum gives (1 − p_L)(L+1)/(2L)"),
            Mistake(lambda d, p: 1 - _ref_time_saving(d, p),
                    "that is the ratio of the times; the saving is 1 minus it"),
            Mistake(lambda d, p: 100 * _ref_time_saving(d, p), "give a fraction (0.25), not a percentage"),
            Mistake(lambda d, p: (1 - p) * (d + 1) / (2 * d),
                    "L is the number of BLOCKS: depth = 6n + 2 gives L = 3n, not L = depth"),
            Mistake(lambda d, p: (1 - p) * (d // 2 + 1) / (2 * (d // 2)),
                    "L = 3n = (depth − 2)/2 blocks: the stem and classifier are not blocks"),
            Mistake(lambda d, p: (1 - p) * ((d - 2) // 6 + 1) / (2 * ((d - 2) // 6)),
                    "n is the blocks of one stage; the network has L = 3n blocks"),
        ),
        generic_hint="saving = 1 − E[active blocks]/L with L = 3n blocks, if time ∝ active blocks",
        compare=_loose(1e-9),
    ))  # fmt: skip


_build_registry()
