import pytest
import torch

from resnotes.models import count_parameters, create_model
from resnotes.models.stochastic_depth import (
    StochasticDepthBlock,
    StochasticDepthRescaledBlock,
    StochasticDepthResNet,
    stochastic_depth_rescaled,
    subsample_pad_shortcut,
    survival_probabilities,
)


def count_branch_calls(model):
    """A list that gets the index of every block whose branch runs, from a forward hook."""
    calls = []
    handles = [block.branch.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, block in enumerate(model.units())]
    return calls, handles


def test_linear_decay_and_uniform_rule():
    probs = survival_probabilities(54, 0.5)
    assert probs[0] == pytest.approx(1 - 0.5 / 54) and probs[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(probs, probs[1:]))
    assert survival_probabilities(4, 0.8, "uniform") == [0.8] * 4
    assert survival_probabilities(5, 1.0) == [1.0] * 5


def test_eval_is_deterministic_and_runs_every_block_scaled():
    torch.manual_seed(0)
    model = StochasticDepthResNet(depth=20).eval()
    calls, _ = count_branch_calls(model)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))
    assert sorted(calls) == sorted(2 * list(range(9)))


def test_dropped_blocks_are_really_skipped():
    torch.manual_seed(1)
    model = StochasticDepthResNet(depth=20, final_survival=0.2).train()
    calls, _ = count_branch_calls(model)
    x = torch.randn(2, 3, 32, 32)
    seen = []
    with torch.no_grad():
        for _ in range(20):
            calls.clear()
            model(x)
            seen.append(len(calls))
    assert min(seen) < 9, "no block was ever dropped"


def test_fraction_of_executed_blocks_matches_the_mean_survival():
    torch.manual_seed(2)
    model = StochasticDepthResNet(depth=20, final_survival=0.5).train()
    calls, _ = count_branch_calls(model)
    trials = 400
    counts = torch.zeros(9)
    x = torch.randn(2, 3, 8, 8)  # small input: only the gates matter here
    with torch.no_grad():
        for _ in range(trials):
            calls.clear()
            model(x)
            counts += torch.bincount(torch.tensor(calls, dtype=torch.long), minlength=9).float()
    expected = torch.tensor(model.survival_probs)
    overall = counts.sum() / (trials * 9)
    # Binomial standard error: sqrt(p (1 - p) / 3600) < 0.01 overall, < 0.025 per block.
    assert abs(overall - expected.mean()) < 0.03
    assert ((counts / trials - expected).abs() < 0.1).all()


def test_test_time_scaling_is_the_expectation_of_training_for_a_linear_branch():
    torch.manual_seed(3)
    p = 0.7
    block = StochasticDepthBlock(4, 4, stride=1, survival_prob=p)
    block.branch = torch.nn.Conv2d(4, 4, 1, bias=False)  # linear, and positive on positive inputs
    torch.nn.init.uniform_(block.branch.weight, 0.1, 1.0)
    x = torch.rand(1, 4, 3, 3) + 0.1
    calls = []
    block.branch.register_forward_hook(lambda *_: calls.append(1))
    block.train()
    outputs, kept = {}, 0
    with torch.no_grad():
        for _ in range(2000):
            calls.clear()
            out = block(x)
            active = bool(calls)
            outputs[active] = out
            kept += active
        assert torch.equal(outputs[False], x)  # dropped: the shortcut alone
        assert torch.allclose(outputs[True], block.branch(x) + x)
        assert abs(kept / 2000 - p) < 0.04
        expectation = p * outputs[True] + (1 - p) * outputs[False]
        block.eval()
        assert torch.allclose(block(x), expectation)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_common_variant_rescales_during_training(mode):
    torch.manual_seed(4)
    branch = torch.ones(64, 3, 2, 2)
    out = stochastic_depth_rescaled(branch, 0.75, mode, training=True)
    values = set(out.unique().tolist())
    assert values <= {0.0, torch.tensor(1 / 0.75).item()}  # float32
    if mode == "batch":
        assert len(values) == 1
    assert torch.equal(stochastic_depth_rescaled(branch, 0.75, mode, training=False), branch)
    mean = torch.stack([stochastic_depth_rescaled(branch, 0.75, mode, True) for _ in range(400)]).mean()
    assert abs(mean - 1) < 0.05


def test_common_variant_computes_every_branch():
    model = StochasticDepthResNet(depth=20, final_survival=0.2, mode="row").train()
    assert all(isinstance(block, StochasticDepthRescaledBlock) for block in model.units())
    calls, _ = count_branch_calls(model)
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 9


def test_shortcut_subsamples_and_zero_pads():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = subsample_pad_shortcut(x, 3, stride=2)
    assert out.shape == (1, 3, 2, 2)
    assert out[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]] and not out[0, 1:].any()


def test_stochastic_depth_adds_no_parameters():
    # The counts against the paper's are checked in test_models.py.
    assert count_parameters(create_model("resnet110")) == count_parameters(create_model("resnet110_stochastic_depth"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"final_survival": 0}, "final_survival \\(p_L\\) must be in \\(0, 1\\]"),
        ({"final_survival": 1.5}, "final_survival \\(p_L\\) must be in \\(0, 1\\]"),
        ({"depth": 100}, "depth must be 6n\\+2"),
        ({"survival_rule": "cosine"}, "survival rule must be one of linear, uniform"),
        ({"mode": "sample"}, "mode must be one of faithful, row, batch"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StochasticDepthResNet(**kwargs)
