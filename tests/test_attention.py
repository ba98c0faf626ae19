import pytest
import torch
from torch import nn

from resnotes.models import count_parameters, create_model
from resnotes.models.attention import AttentionModule, SoftMaskBranch, ResidualAttentionNetwork, mask_poolings, modules_per_stage


class ZeroMask(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_stage_shapes_and_masks_in_the_open_unit_interval():
    torch.manual_seed(0)
    # Train mode: BN normalises with batch statistics. (In eval mode, an untrained
    # network's running statistics let activations grow until the sigmoid
    # rounds to exactly 1.0 in float32.)
    model = ResidualAttentionNetwork(depth=56).train()
    stage_shapes, masks = [], []
    for stage in model.stages:
        stage.register_forward_hook(lambda _m, _i, out: stage_shapes.append(tuple(out.shape)))
    for module in model.attention_modules():
        module.mask.register_forward_hook(lambda _m, _i, out: masks.append(out))
    with torch.no_grad():
        out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 10)
    assert stage_shapes == [(3, 64, 32, 32), (3, 128, 16, 16), (3, 256, 8, 8)]
    assert [tuple(m.shape) for m in masks] == stage_shapes  # one M(x) value per channel and position
    for mask in masks:
        assert (mask > 0).all() and (mask < 1).all()


def test_mask_branch_goes_down_to_4x4_in_every_stage():
    for size, poolings in [(32, 3), (16, 2), (8, 1)]:
        assert mask_poolings(size) == poolings
        branch = SoftMaskBranch(64, r=1, poolings=poolings)
        sizes = []
        for unit in branch.bottom:
            unit.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1]))
        out = branch(torch.randn(2, 64, size, size))
        assert out.shape == (2, 64, size, size)
        assert set(sizes) == {4}
        assert len(branch.skips) == poolings - 1 and len(branch.down) == poolings - 1


def test_bottom_units_rule():
    assert len(SoftMaskBranch(64, r=1, poolings=1).bottom) == 2  # the official r=1 prototxt
    assert len(SoftMaskBranch(64, r=3, poolings=1).bottom) == 3
    assert len(SoftMaskBranch(64, r=3, poolings=1, bottom_units=6).bottom) == 6


def test_output_equals_trunk_when_the_mask_is_zero():
    torch.manual_seed(0)
    module = AttentionModule(64, input_size=16).eval()
    module.mask = ZeroMask()
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        expected = module.post(module.trunk(module.pre(x)))
        assert torch.equal(module(x), expected)


def test_arl_and_nal_differ_exactly_by_the_trunk():
    torch.manual_seed(0)
    arl = AttentionModule(64, input_size=16, p=0, attention="arl").eval()
    nal = AttentionModule(64, input_size=16, p=0, attention="nal").eval()
    nal.load_state_dict(arl.state_dict())
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        trunk, mask = arl.trunk(x), arl.mask(x)
        # (1 + M) T - M T = T
        torch.testing.assert_close(arl(x) - nal(x), trunk)
        torch.testing.assert_close(nal(x), mask * trunk)
        torch.testing.assert_close(arl(x), trunk + mask * trunk)
    assert torch.equal(arl.combine(trunk, torch.zeros_like(trunk)), trunk)
    assert torch.equal(nal.combine(trunk, torch.zeros_like(trunk)), torch.zeros_like(trunk))


@pytest.mark.parametrize(
    "name, exact, modules",
    # Fixed by the architecture; a regression here means the wiring changed.
    [("attention56", 1_148_826, 3), ("attention92", 1_959_706, 6), ("attention236", 5_203_226, 18), ("attention452", 8_630_426, 18)],
)
def test_known_exact_counts_and_module_counts(name, exact, modules):
    model = create_model(name)
    assert count_parameters(model) == exact
    assert len(model.attention_modules()) == modules


def test_depth_formula():
    assert modules_per_stage(56, 1, 2) == 1
    assert modules_per_stage(92, 1, 2) == 2
    assert modules_per_stage(236, 1, 2) == 6
    assert modules_per_stage(452, 2, 4) == 6


@pytest.mark.parametrize(
    "kwargs, rule",
    [
        ({"depth": 93}, "depth must be 9m\\(2p\\+t\\)\\+20 = 36m\\+20 for p=1, t=2"),
        ({"depth": 20}, "depth must be 9m\\(2p\\+t\\)\\+20"),
        ({"depth": 56, "p": 2, "t": 4}, "depth must be 9m\\(2p\\+t\\)\\+20 = 72m\\+20 for p=2, t=4"),
        ({"depth": 92, "p": -1}, "p must be an integer >= 0"),
        ({"depth": 92, "t": 0}, "t must be an integer >= 1"),
        ({"depth": 92, "t": 1.5}, "t must be an integer >= 1"),
        ({"depth": 92, "r": 0}, "r must be an integer >= 1"),
        ({"depth": 92, "attention": "none"}, "attention must be one of arl, nal"),
        ({"depth": 92, "bottom_units": 0}, "bottom_units must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, rule):
    with pytest.raises(ValueError, match=rule):
        ResidualAttentionNetwork(**kwargs)


def test_too_small_a_stage_input_is_rejected():
    with pytest.raises(ValueError, match="too small to pool down to 4x4"):
        mask_poolings(4)
