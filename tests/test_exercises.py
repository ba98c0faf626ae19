"""The exercises' self-checks: every reference passes, typical mistakes are named."""

import math

import pytest
import torch

from resnotes import exercises
from resnotes.exercises import CHECKS, check
from resnotes.exercises.checker import HIDDEN, show
from resnotes.exercises.pyramidnet import pyramid_formula
from resnotes.exercises.resnet import projections, unit_formula
from resnotes.models import count_parameters
from resnotes.models.densenet import DenseLayer, densenet_bc
from resnotes.models.preact_resnet import PreActBasicUnit, PreActBottleneckUnit, PreActResNet
from resnotes.models.pyramidnet import pyramid_widths, PyramidNet


def reference_answer(spec):
    """What a correct student hands in: the function, or the number for the default case."""
    return spec.reference if spec.kind == "function" else spec.reference(*spec.defaults.values())


def run(capsys, name, answer, **kw):
    ok = check(name, answer, **kw)
    out = capsys.readouterr().out
    assert all(len(line) <= exercises.WIDTH for line in out.splitlines()), out
    return ok, out


@pytest.mark.parametrize("name", list(CHECKS))
def test_reference_passes(capsys, name):
    ok, out = run(capsys, name, reference_answer(CHECKS[name]))
    assert ok.passed is True
    assert out.startswith(f"✓ {name}")
    assert len(out.splitlines()) == 1


# A typical wrong answer for every check, and the words its hint must contain.
def _no_projection(i, w, s, b):
    return count_parameters((PreActBottleneckUnit if b else PreActBasicUnit)(i, w, s)) - (
        i * w * (4 if b else 1) if (s != 1 or i != w * (4 if b else 1)) else 0
    )


def _pyramid_without_stem(widths):
    total, previous = 0, 16
    for w in widths:
        total += 2 * previous + 9 * previous * w + 2 * w + 9 * w * w + 2 * w
        previous = w
    return total + 2 * previous + 10 * previous + 10


WRONG = [
    ("resnet.units_per_stage", lambda d, b: d / (9 if b else 6), "the stem convolution and the classifier"),
    ("resnet.units_per_stage", lambda d, b: (d - 2) // 6, "3 convolutions"),
    ("resnet.unit_params", _no_projection, "forgot the projection"),
    (
        "resnet.unit_params",
        lambda i, w, s, b: (
            count_parameters((PreActBottleneckUnit if b else PreActBasicUnit)(i, w, s))
            - 2
            * sum(
                m.num_features
                for m in (PreActBottleneckUnit if b else PreActBasicUnit)(i, w, s).modules()
                if isinstance(m, torch.nn.BatchNorm2d)
            )
        ),
        "forgot the batch norms",
    ),
    ("resnet.params", lambda d, b: count_parameters(PreActResNet(depth=d, bottleneck=b)) - 432, "forgot the stem"),
    (
        "pyramidnet.multiplicative_widths",
        lambda n, a: [math.floor(16 * a ** (k / n)) for k in range(1, n + 1)],
        "floor against round",
    ),
    (
        "pyramidnet.multiplicative_widths",
        lambda n, a: [math.floor(16 * a ** (k / n) + 0.5) for k in range(n)],
        "off by one in the unit index",
    ),
    ("pyramidnet.multiplicative_widths", lambda n, a: pyramid_widths(n, a), "additive rule"),
    ("pyramidnet.params_from_widths", _pyramid_without_stem, "forgot the stem"),
    ("pyramidnet.params", count_parameters(PyramidNet(depth=110, alpha=48)), "additive PyramidNet with α=48"),
    ("pyramidnet.params", count_parameters(PyramidNet(depth=110, alpha=48, widening="multiplicative")), "768"),
    (
        "densenet.transition_channels",
        lambda d, k, t: [16 + (d - 4) // 6 * k, (16 + (d - 4) // 6 * k) // 2 + (d - 4) // 6 * k],
        "stem has 2k channels",
    ),
    (
        "densenet.transition_channels",
        lambda d, k, t: [2 * k + (d - 4) // 6 * k, round(t * (2 * k + (d - 4) // 6 * k)) + (d - 4) // 6 * k],
        "floor against round",
    ),
    ("densenet.layer_params", lambda i, k: 2 * i + i * k + 2 * k + 9 * k * k, "outputs 4k channels"),
    ("densenet.stored_channels", lambda c, n, k: sum(c + l * k for l in range(1, n + 1)), "off by one"),
    ("attention.signal", lambda m, n, a: m**n if a == "nal" else 1 + m**n, "in every module, not only once"),
    ("attention.signal", lambda m, n, a: (m if a == "nal" else 1 + m) * n, "a power"),
    ("attention.combine", lambda t, m, a: 1 + m * t if a == "arl" else m * t, "survey's misprint"),
    ("attention.modules_per_stage", lambda d, p, t: d // (9 * (2 * p + t)), "forgot the 20 layers"),
    (
        "stochastic_depth.survival_probabilities",
        lambda L, p, r: [1 - (l / L) * (1 - p) for l in range(L)] if r == "linear" else [p] * L,
        "off by one in the unit index",
    ),
    (
        "stochastic_depth.expected_active_blocks",
        lambda L, p, r: L * (1 + p) / 2 if r == "linear" else L * p,
        "continuous approximation",
    ),
    ("stochastic_depth.time_saving", lambda d, p: (1 - p) * (d + 1) / (2 * d), "number of BLOCKS"),
    (
        "stochastic_depth.time_saving",
        lambda d, p: 1 - (1 - p) * ((d - 2) // 2 + 1) / (2 * ((d - 2) // 2)),
        "ratio of the times",
    ),
]


@pytest.mark.parametrize("name, answer, hint", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)])
def test_typical_mistake_fails_with_its_hint(capsys, name, answer, hint):
    ok, out = run(capsys, name, answer)
    assert ok.passed is False
    assert out.startswith(f"✗ {name}")
    assert "expected:" in out and "got:" in out
    assert "hint: " in out
    assert hint in " ".join(out.split()), out  # the hint may be wrapped over lines


def test_every_check_has_a_tested_mistake():
    assert {name for name, _, _ in WRONG} == set(CHECKS)


@pytest.mark.parametrize("name", [n for n, c in CHECKS.items() if c.kind == "function"])
def test_failure_does_not_reveal_the_solution(capsys, name):
    spec = CHECKS[name]

    def off(*args):
        value = spec.reference(*args)
        if isinstance(value, torch.Tensor):
            return value + 1
        if isinstance(value, list):
            return [v + 1 for v in value]
        return value + 1

    ok, out = run(capsys, name, off)
    assert not ok
    assert "def " not in out and "return" not in out
    # Only the failing case's expected value is shown, and never the exercise's own.
    assert out.count("expected:") == 1
    first = spec.cases[0]
    if first in spec.own:
        assert f"expected: {HIDDEN}" in out
        assert show(spec.reference(*first)) not in out.split("got:")[0]
    else:
        assert f"expected: {show(spec.reference(*first))}\n" in out
    # An answer right on every case but the last is told about the last case only.
    last = spec.cases[-1]
    assert last not in spec.own

    def wrong_on_last(*args):
        return off(*args) if all(_equal(a, b) for a, b in zip(args, last)) else spec.reference(*args)

    ok, out = run(capsys, name, wrong_on_last)
    assert not ok and f"case {len(spec.cases)} of {len(spec.cases)}" in out
    assert out.count("expected:") == 1
    assert f"expected: {show(spec.reference(*last))}\n" in out


def test_the_exercises_own_numbers_are_never_printed(capsys):
    """check("pyramidnet.params", 1370000) printed the answer, 1,373,208."""
    ok, out = run(capsys, "pyramidnet.params", 1_370_000)
    assert not ok and "1,373,208" not in out and "1373208" not in out
    assert "too small" in out
    ok, out = run(capsys, "densenet.transition_channels", lambda d, k, t: [216, 301])
    assert not ok and "300" not in out and "position 2" in out and "too large" in out
    ok, out = run(capsys, "stochastic_depth.time_saving", lambda d, p: 0.25)
    assert not ok and "0.245" not in out


def test_how_an_answer_is_off_is_said(capsys):
    ok, out = run(capsys, "resnet.params", lambda d, b: 2 * count_parameters(PreActResNet(depth=d, bottleneck=b)))
    assert not ok and "2 times too large" in out
    ok, out = run(capsys, "pyramidnet.multiplicative_widths", lambda n, a: [w - 1 for w in pyramid_widths(n, a, "multiplicative")])
    assert not ok and "wrong from the first value on" in out and "too small" in out


def test_answers_written_with_numpy_or_torch_are_accepted(capsys):
    import numpy as np

    def numpy_survival(L, p, rule):
        return 1 - np.arange(1, L + 1) / L * (1 - p) if rule == "linear" else np.full(L, p)

    assert run(capsys, "stochastic_depth.survival_probabilities", numpy_survival)[0]
    torch_survival = lambda L, p, r: torch.tensor(numpy_survival(L, p, r), dtype=torch.float64)  # noqa: E731
    assert run(capsys, "stochastic_depth.survival_probabilities", torch_survival)[0]
    widths = lambda n, a: np.array(pyramid_widths(n, a, "multiplicative"))  # noqa: E731
    assert run(capsys, "pyramidnet.multiplicative_widths", widths)[0]
    assert run(capsys, "stochastic_depth.expected_active_blocks", lambda L, p, r: np.float64(sum(numpy_survival(L, p, r))))[0]
    assert run(capsys, "pyramidnet.params", np.int64(1_373_208))[0]


def test_the_multiplicative_widths_hint_does_not_give_the_formula(capsys):
    ok, out = run(capsys, "pyramidnet.multiplicative_widths", lambda n, a: [16] * n)
    assert not ok and "hint:" in out and "α^(k/N)" not in out and "k/N" not in out


def _equal(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    return a == b


def test_unknown_name_lists_the_checks(capsys):
    ok, out = run(capsys, "pyramidnet.widths", lambda: None)
    assert not ok and "no check named 'pyramidnet.widths'" in out
    assert all(name in out for name in CHECKS)


def test_stub_answers_and_crashing_answers_are_reported_not_raised(capsys):
    ok, out = run(capsys, "resnet.units_per_stage", None)
    assert not ok and "no answer yet" in out
    ok, out = run(capsys, "resnet.units_per_stage", lambda depth, bottleneck: None)
    assert not ok and "forget the `return`" in out
    ok, out = run(capsys, "resnet.units_per_stage", lambda depth, bottleneck: ...)
    assert not ok and "fill in the body" in out
    ok, out = run(capsys, "resnet.units_per_stage", lambda depth, bottleneck: 1 / 0)
    assert not ok and "ZeroDivisionError" in out and "case 1 of" in out
    ok, out = run(capsys, "pyramidnet.multiplicative_widths", lambda n, a: 16)
    assert not ok and "expected a sequence of numbers" in out
    ok, out = run(capsys, "pyramidnet.params", lambda: 1)
    assert not ok and "call it first" in out


def test_value_checks_take_their_case_as_keywords(capsys):
    ok, _ = run(
        capsys,
        "pyramidnet.params",
        count_parameters(PyramidNet(depth=20, alpha=36)),
        depth=20,
        alpha=36,
        widening="additive",
    )
    assert ok
    ok, out = run(capsys, "pyramidnet.params", 1, bottleneck=True)
    assert not ok and "unknown keyword bottleneck" in out


def test_an_unknown_mistake_still_gets_expected_got_and_a_hint(capsys):
    ok, out = run(capsys, "densenet.stored_channels", lambda c, n, k: 7)
    assert not ok and "expected:" in out and "got:      7" in out and "hint: sum k_0" in out


def test_mistake_formulas_agree_with_the_package_when_switched_off():
    # The mistake formulas are the correct count with one term changed: with
    # nothing changed they must give the package's counts.
    for i, w, s, b in CHECKS["resnet.unit_params"].cases:
        unit = (PreActBottleneckUnit if b else PreActBasicUnit)(i, w, s)
        assert unit_formula(i, w, s, b) == count_parameters(unit)
    for (widths,) in CHECKS["pyramidnet.params_from_widths"].cases:
        assert pyramid_formula(widths) == CHECKS["pyramidnet.params_from_widths"].reference(widths)
    for i, k in CHECKS["densenet.layer_params"].cases:
        layer = DenseLayer(i, k, bottleneck=True)
        assert 2 * i + i * 4 * k + 2 * 4 * k + 9 * 4 * k * k == count_parameters(layer)
    for d, b in CHECKS["resnet.params"].cases:
        model = PreActResNet(depth=d, bottleneck=b)
        counted = sum(u.projection.weight.numel() for u in model.units() if u.projection is not None)
        assert projections(d, b) == counted


def test_transition_reference_matches_the_model():
    for depth, k, theta in CHECKS["densenet.transition_channels"].cases:
        with torch.device("meta"):  # shapes only: the large rows would take seconds on the CPU
            model = densenet_bc(depth=depth, growth_rate=k, compression=theta).eval()
            entering = []
            for transition in model.transitions:
                transition.register_forward_pre_hook(lambda _m, args, seen=entering: seen.append(args[0].shape[1]))
            model(torch.zeros(1, 3, 32, 32))
        assert CHECKS["densenet.transition_channels"].reference(depth, k, theta) == entering


def test_numbers_quoted_in_the_exercises():
    ref = {name: spec.reference for name, spec in CHECKS.items()}
    assert ref["densenet.transition_channels"](100, 12, 0.5) == [216, 300]
    assert ref["attention.signal"](0.5, 12, "nal") == pytest.approx(2**-12)
    assert ref["attention.signal"](0.5, 12, "arl") == pytest.approx(1.5**12)
    assert ref["stochastic_depth.expected_active_blocks"](54, 0.5, "linear") == pytest.approx(40.25)
    assert ref["stochastic_depth.expected_active_blocks"](600, 0.5, "linear") == pytest.approx(449.75)
    assert ref["stochastic_depth.time_saving"](1202, 0.5) == pytest.approx(0.2504, abs=1e-4)
    assert ref["pyramidnet.params"](110, 4, "multiplicative") == 1_373_208


def _as(kind, value):
    """``value`` as a student might compute it: a torch float32 or float64 tensor,
    or a NumPy float32 or float64 array (a 0-d one for a single number)."""
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value.to(torch.float32 if kind.endswith("32") else torch.float64)
    if kind.startswith("torch"):
        return torch.tensor(value, dtype=getattr(torch, kind.split("_")[1]))
    return np.asarray(value, dtype=getattr(np, kind.split("_")[1]))


@pytest.mark.parametrize("kind", ["torch_float32", "torch_float64", "numpy_float32", "numpy_float64"])
@pytest.mark.parametrize("name", list(CHECKS))
def test_a_correct_answer_in_float32_float64_or_numpy_passes(capsys, name, kind):
    """A reference computed with torch.arange in float32 was called "too small, by
    less than 1%": the tolerance follows the answer's precision."""
    spec = CHECKS[name]
    reference = reference_answer(spec)
    if spec.kind == "function":
        sample = spec.reference(*spec.cases[0])
        if isinstance(sample, torch.Tensor) and kind.startswith("numpy"):
            pytest.skip("a tensor exercise expects a tensor")
        answer = lambda *args: _as(kind, spec.reference(*args))
    else:
        answer = _as(kind, reference)
    ok, out = run(capsys, name, answer)
    assert ok.passed is True, out


def test_float32_tolerance_still_refuses_a_wrong_answer_and_names_nan(capsys):
    ok, out = run(capsys, "stochastic_depth.time_saving", lambda *a: torch.tensor(CHECKS["stochastic_depth.time_saving"].reference(*a) * 1.001, dtype=torch.float32))
    assert ok.passed is False and "too large, by less than 1%" in out
    ok, out = run(capsys, "stochastic_depth.time_saving", lambda *a: float("nan"))
    assert ok.passed is False and "NaN" in out and "too small" not in out


def test_a_cell_ending_in_check_shows_no_stray_true(capsys):
    verdict = check("resnet.units_per_stage", CHECKS["resnet.units_per_stage"].reference)
    assert verdict and verdict == True and hasattr(verdict, "_ipython_display_")  # noqa: E712
    assert verdict._ipython_display_() is None


class Hostile:
    def __float__(self):
        raise ValueError("no float for you")

    def tolist(self):
        raise RuntimeError("no list either")


@pytest.mark.parametrize(
    "answer, fact",
    [
        (float("inf"), "not a finite number"),
        (10**400, "could not be compared"),
        (Hostile(), "could not be compared"),
    ],
)
def test_a_hostile_value_is_a_verdict_not_a_traceback(capsys, answer, fact):
    ok, out = run(capsys, "pyramidnet.params", answer)
    assert ok.passed is False and out.startswith("✗ pyramidnet.params") and fact in out, out


def test_a_hostile_function_is_a_verdict_not_a_traceback(capsys, monkeypatch):
    import resnotes.exercises.checker as checker

    ok, out = run(capsys, "stochastic_depth.survival_probabilities", lambda *a: [float("inf")] * 3)
    assert ok.passed is False and "✗" in out
    ok, out = run(capsys, "resnet.units_per_stage", lambda *a: exit())
    assert ok.passed is False and "called exit()" in out
    monkeypatch.setattr(checker, "TIME_LIMIT", 0.2)

    def forever(*a):
        while True:
            pass

    ok, out = run(capsys, "resnet.units_per_stage", forever)
    assert ok.passed is False and "ran for more than 0.2 s" in out
