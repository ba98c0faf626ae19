import pytest
import torch
import torch.nn.functional as F

from resnotes.models import count_parameters, create_model, get_spec, list_models
from resnotes.models.attention import ResidualAttentionNetwork
from resnotes.models.densenet import densenet, densenet_bc
from resnotes.models.preact_resnet import PreActBasicUnit, PreActBottleneckUnit, PreActResNet, plain_net, PreActResNet
from resnotes.models.pyramidnet import PyramidNet
from resnotes.models.se_cbam import preact_resnet_attention
from resnotes.models.stochastic_depth import StochasticDepthResNet
from resnotes.models.wide_resnet import WideResNet

MODELS = list_models()

# The smallest valid depth of each family, so that the gradient test builds the
# same classes and variants as the paper models, in a fraction of the time.
SMALL = {
    PreActResNet: lambda kw: {"depth": 11 if kw.get("bottleneck") else 8},
    plain_net: lambda kw: {"depth": 8},
    preact_resnet_attention: lambda kw: {"depth": 8},
    ResidualAttentionNetwork: lambda kw: {"depth": 9 * (2 * kw.get("p", 1) + kw.get("t", 2)) + 20},
    densenet: lambda kw: {"depth": 7},
    densenet_bc: lambda kw: {"depth": 10},
    PyramidNet: lambda kw: {"depth": 11 if kw.get("bottleneck") else 8},
    StochasticDepthResNet: lambda kw: {"depth": 8},
    WideResNet: lambda kw: {"depth": 10, "widen_factor": 2},
}


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    model = spec.build(num_classes=100, **SMALL[spec.factory](spec.kwargs))
    if isinstance(model, StochasticDepthResNet):
        # Stochastic depth skips whole blocks while training: open every gate.
        for block in model.units():
            block.survival_prob = 1.0
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 100)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"
    assert all(p.grad.abs().sum() > 0 for p in model.parameters()), "a parameter's gradient is all zero"


@pytest.mark.parametrize("name", [n for n in MODELS if get_spec(n).paper and get_spec(n).paper.params])
def test_parameter_count_within_five_percent_of_the_paper(name):
    spec = get_spec(name)
    ours = count_parameters(spec.build())
    paper = spec.paper.params
    assert abs(ours - paper) / paper < 0.05, f"{name}: {ours:,} vs paper {paper:,.0f} ({spec.paper.label})"


def test_paper_figures_are_plausible():
    for name in MODELS:
        paper = get_spec(name).paper
        if paper is None:
            continue
        assert paper.label and paper.source, name
        for error in (paper.cifar10_error, paper.cifar100_error):
            assert error is None or 0 < error < 50, (name, error)
        if paper.cifar10_error is not None and paper.cifar100_error is not None:
            assert paper.cifar10_error < paper.cifar100_error, name


def test_the_names_before_the_naming_rule_are_gone():
    """Nothing was released under them: no record, chapter or user has them."""
    with pytest.raises(ValueError, match="unknown model 'se_preact_resnet110'. Did you mean"):
        get_spec("se_preact_resnet110")


def test_known_exact_counts():
    # Fixed by the architecture: a regression here means the wiring changed.
    assert count_parameters(create_model("preact_resnet110")) == 1_730_522
    assert count_parameters(create_model("preact_resnet164")) == 1_703_258
    assert count_parameters(create_model("preact_resnet1001")) == 10_327_706


@pytest.mark.parametrize(
    "depth, bottleneck, rule",
    [(100, False, "6n\\+2"), (100, True, "9n\\+2"), (2, False, "6n\\+2"), (7, True, "9n\\+2")],
)
def test_depth_rule(depth, bottleneck, rule):
    with pytest.raises(ValueError, match=f"depth must be {rule}"):
        PreActResNet(depth=depth, bottleneck=bottleneck)


def test_unknown_model_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean: preact_resnet110"):
        create_model("preact_resnet111")


@pytest.mark.parametrize("unit_cls", [PreActBasicUnit, PreActBottleneckUnit])
def test_identity_shortcut_passes_the_input_through_when_the_branch_is_zero(unit_cls):
    channels = 16 * unit_cls.expansion
    unit = unit_cls(channels, 16)
    last_conv = unit.conv3 if unit_cls is PreActBottleneckUnit else unit.conv2
    torch.nn.init.zeros_(last_conv.weight)
    x = torch.randn(2, channels, 8, 8)
    # Nothing after the addition: x_{l+1} = x_l + F(x_l) = x_l exactly.
    assert torch.equal(unit(x), x)


def test_plain_network_has_no_shortcuts():
    plain = plain_net(depth=20)
    unit = plain.stages[0][0]
    torch.nn.init.zeros_(unit.conv2.weight)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(unit(x), torch.zeros_like(x))
    assert all(u.projection is None for stage in plain.stages for u in stage)


def test_projection_only_where_the_shape_changes():
    model = PreActResNet(depth=164, bottleneck=True)
    projected = [(i, j) for i, stage in enumerate(model.stages) for j, u in enumerate(stage) if u.projection is not None]
    assert projected == [(0, 0), (1, 0), (2, 0)]


def test_first_unit_of_each_stage_shortcuts_the_activated_input():
    # fb.resnet.torch's "both_preact": BN-ReLU before the split, also on the
    # first identity shortcut; later units carry x_l untouched.
    torch.manual_seed(0)
    model = PreActResNet(depth=14)
    first, second = model.stages[0][0], model.stages[0][1]
    x = torch.randn(2, 16, 8, 8)
    for unit in (first, second):
        torch.nn.init.zeros_(unit.conv2.weight)
    assert first.projection is None
    assert torch.allclose(first(x), F.relu(first.bn1(x)))
    assert torch.equal(second(x), x)
    assert torch.allclose(first.skip(x), F.relu(first.bn1(x)))


def test_model_follows_the_input_dtype_and_device():
    model = PreActResNet(depth=8).to(torch.float64)
    assert model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
