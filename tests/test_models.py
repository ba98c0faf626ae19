import pytest
import torch

from resnotes.models import count_parameters, create_model, get_spec, list_models
from resnotes.models.preact_resnet import PreActBasicUnit, PreActBottleneckUnit, plain_net, preact_resnet

MODELS = list_models()


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=100)
    if hasattr(model, "survival_probs"):
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


@pytest.mark.parametrize("name", [n for n in MODELS if get_spec(n).paper_params])
def test_parameter_count_within_five_percent_of_the_paper(name):
    spec = get_spec(name)
    ours = count_parameters(spec.build())
    assert abs(ours - spec.paper_params) / spec.paper_params < 0.05, f"{name}: {ours:,} vs paper {spec.paper_params:,.0f}"


def test_known_exact_counts():
    # Fixed by the architecture: a regression here means the wiring changed.
    assert count_parameters(create_model("preact_resnet110")) == 1_730_522
    assert count_parameters(create_model("preact_resnet164")) == 1_703_258


@pytest.mark.parametrize(
    "depth, bottleneck, rule",
    [(100, False, "6n\\+2"), (100, True, "9n\\+2"), (2, False, "6n\\+2"), (7, True, "9n\\+2")],
)
def test_depth_rule(depth, bottleneck, rule):
    with pytest.raises(ValueError, match=f"depth must be {rule}"):
        preact_resnet(depth=depth, bottleneck=bottleneck)


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
    model = preact_resnet(depth=164, bottleneck=True)
    projected = [(i, j) for i, stage in enumerate(model.stages) for j, u in enumerate(stage) if u.projection is not None]
    assert projected == [(0, 0), (1, 0), (2, 0)]


def test_model_follows_the_input_dtype_and_device():
    model = preact_resnet(depth=8).to(torch.float64)
    assert model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
