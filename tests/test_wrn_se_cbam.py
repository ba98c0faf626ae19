import pytest
import torch

from resnotes.models import count_parameters, create_model
from resnotes.models.preact_resnet import PreActResNet
from resnotes.models.se_cbam import CBAM, SqueezeExcitation, preact_resnet_attention
from resnotes.models.wide_resnet import WideResNet
from resnotes.config import paper_recipe
from resnotes.train import TrainConfig, learning_rate


def test_wrn_28_10_count_widths_and_three_projections():
    model = create_model("wrn28_k10")
    assert count_parameters(model) == 36_479_194  # the paper: 36.5M
    assert [g[0].conv1.out_channels for g in model.groups] == [160, 320, 640]
    assert sum(block.projection is not None for block in model.units()) == 3  # k > 1: 16 -> 160 too
    assert [len(g) for g in model.groups] == [4, 4, 4]


@pytest.mark.parametrize("kwargs, rule", [({"depth": 27}, "depth must be 6n\\+4"), ({"widen_factor": 0}, "widen_factor must be"), ({"drop_rate": 1.0}, "drop_rate must be in")])
def test_wrn_bad_arguments(kwargs, rule):
    with pytest.raises(ValueError, match=rule):
        WideResNet(**kwargs)


def test_se_rescales_channels_by_weights_in_the_unit_interval():
    torch.manual_seed(0)
    se = SqueezeExcitation(32)
    x = torch.rand(2, 32, 8, 8) + 0.1
    out = se(x)
    ratio = out / x
    # One weight per (sample, channel), constant over positions, in (0, 1).
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()


def test_cbam_gates_channels_then_positions():
    torch.manual_seed(0)
    cbam = CBAM(32).eval()
    x = torch.rand(2, 32, 8, 8) + 0.1
    out = cbam(x)
    assert out.shape == x.shape and (out.abs() <= x.abs() + 1e-6).all()
    ratio = out / x
    assert not torch.allclose(ratio[:, :, 0, 0], ratio[:, :, 4, 4])  # the spatial gate varies by position


def test_se_and_cbam_are_drop_in_and_cheap():
    base = count_parameters(PreActResNet(depth=110))
    for attention in ("se", "cbam"):
        model = preact_resnet_attention(depth=110, attention=attention)
        assert 0 < count_parameters(model) - base < 0.05 * base
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="attention must be one of se, cbam"):
        preact_resnet_attention(depth=20, attention="eca")


def test_identity_shortcut_survives_se():
    # x_{l+1} = x_l + A(F(x_l)): a zero branch leaves the input unchanged.
    model = preact_resnet_attention(depth=14, attention="se")
    unit = model.stages[0][1]  # not the first unit, whose shortcut reads BN-ReLU(x)
    torch.nn.init.zeros_(unit.conv2.weight)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(unit(x), x)


def test_paper_recipes():
    assert paper_recipe("densenet100_bc_k12")["batch_size"] == 64
    assert paper_recipe("pyramidnet110_a48", "cifar100")["lr"] == 0.5
    assert paper_recipe("pyramidnet110_a48", "cifar10")["lr"] == 0.1
    wrn = paper_recipe("wrn28_k10")
    config = TrainConfig(epochs=200, warmup_epochs=0, schedule="step", **{k: v for k, v in wrn.items() if k != "epochs"})
    # WRN: 0.1, x0.2 at epochs 60, 120 and 160.
    assert [round(learning_rate(config, e * 10, 10), 6) for e in (0, 59, 60, 120, 160, 199)] == [0.1, 0.1, 0.02, 0.004, 0.0008, 0.0008]


def test_bad_milestones_are_rejected():
    with pytest.raises(ValueError, match="milestones must be increasing fractions"):
        TrainConfig(milestones=(0.75, 0.5))
    with pytest.raises(ValueError, match="lr_decay must be in"):
        TrainConfig(lr_decay=1.0)
