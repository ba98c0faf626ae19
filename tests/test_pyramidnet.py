import pytest
import torch

from resnotes.analysis import lesioned
from resnotes.models import count_parameters, get_spec, list_models
from resnotes.models.preact_resnet import PreActResNet
from resnotes.models.pyramidnet import PyramidBasicUnit, PyramidBottleneckUnit, pyramid_widths, PyramidNet, zero_pad_shortcut

TABLE_ROWS = [
    "pyramidnet110_a48",
    "pyramidnet110_a84",
    "pyramidnet110_a270",
    "pyramidnet164_bottleneck_a270",
    "pyramidnet200_bottleneck_a240",
    "pyramidnet236_bottleneck_a220",
    "pyramidnet272_bottleneck_a200",
]


@pytest.mark.parametrize("alpha, num_units", [(48, 54), (84, 54), (270, 54), (200, 90), (10, 3), (0, 9), (7.5, 12)])
def test_additive_widths_follow_formula_2(alpha, num_units):
    # D_k = D_{k-1} + alpha / N with D_0 = 16, rounded half up per unit as the Torch code does.
    expected, d = [], 16.0
    for _ in range(num_units):
        d += alpha / num_units
        expected.append(int(d + 0.5 + 1e-9))
    assert pyramid_widths(num_units, alpha) == expected
    assert pyramid_widths(num_units, alpha)[-1] == round(16 + alpha)


def test_every_unit_widens_including_the_first_of_each_stage():
    model = PyramidNet(depth=20, alpha=36)
    widths = [unit.out_channels for unit in model.units()]
    assert widths == [20, 24, 28, 32, 36, 40, 44, 48, 52]
    assert model.widths == widths


def test_multiplicative_widths_grow_by_a_constant_ratio_to_16_alpha():
    widths = pyramid_widths(9, 4.0, "multiplicative")
    assert widths[-1] == 64
    ratios = [b / a for a, b in zip(widths, widths[1:])]
    assert max(ratios) - min(ratios) < 0.1 and all(r > 1 for r in ratios)


def test_zero_padded_shortcut_pads_and_pools():
    x = torch.randn(2, 5, 8, 8)
    same = zero_pad_shortcut(x, 7, stride=1)
    assert same.shape == (2, 7, 8, 8)
    assert torch.equal(same[:, :5], x) and not same[:, 5:].any()
    down = zero_pad_shortcut(x, 7, stride=2)
    assert down.shape == (2, 7, 4, 4)
    assert torch.allclose(down[:, :5], torch.nn.functional.avg_pool2d(x, 2)) and not down[:, 5:].any()


def test_shortcut_keeps_dtype_on_cpu_and_under_autocast():
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    assert zero_pad_shortcut(x, 6, 2).dtype == torch.float64
    model = PyramidNet(depth=20, alpha=12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


@pytest.mark.parametrize("unit_cls, last_bn", [(PyramidBasicUnit, "bn3"), (PyramidBottleneckUnit, "bn4")])
@pytest.mark.parametrize("stride", [1, 2])
def test_unit_is_exactly_its_shortcut_when_the_branch_is_zero(unit_cls, last_bn, stride):
    unit = unit_cls(in_channels=16, width=20, stride=stride).eval()
    bn = getattr(unit, last_bn)
    torch.nn.init.zeros_(bn.weight)
    torch.nn.init.zeros_(bn.bias)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(unit(x), zero_pad_shortcut(x, unit.out_channels, stride))


def test_all_seven_table_rows_are_registered_with_the_papers_figures():
    # Their counts are checked against the paper in test_models.py.
    assert set(TABLE_ROWS) <= set(list_models())
    for name in TABLE_ROWS:
        paper = get_spec(name).paper
        assert paper.params and paper.cifar10_error and paper.cifar100_error, name
        assert f"PyramidNet-{get_spec(name).kwargs['depth']} (α={get_spec(name).kwargs['alpha']})" in paper.label


def test_known_exact_count():
    # The official code gives about 1.77M for depth 110, alpha 48 (Table: 1.7M).
    assert count_parameters(PyramidNet(depth=110, alpha=48)) == 1_772_706


@pytest.mark.parametrize("build", [lambda: PyramidNet(depth=20, alpha=24), lambda: PyramidNet(depth=29, alpha=24, bottleneck=True), lambda: PreActResNet(depth=20)])
def test_lesioning_any_unit_keeps_the_output_valid_and_is_undone(build):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 32, 32)
    reference = model(x)
    for unit in model.units():
        with lesioned(unit):
            out = model(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        assert not torch.equal(out, reference), "deleting a unit changed nothing"
    assert torch.equal(model(x), reference)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 100}, "depth must be 6n\\+2"),
        ({"depth": 100, "bottleneck": True}, "depth must be 9n\\+2"),
        ({"alpha": -1}, "alpha must be >= 0"),
        ({"widening": "geometric"}, "widening must be one of additive, multiplicative"),
        ({"widening": "multiplicative", "alpha": 0.5}, "multiplicative widening needs alpha >= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PyramidNet(**{"depth": 110, "alpha": 48, **kwargs})
