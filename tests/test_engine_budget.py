"""The time budget judges the pace after an epoch's first step, with a fake clock."""

import pytest

import resnotes.engine as rengine
from resnotes.engine import TimeBudget


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(rengine.time, "monotonic", lambda: now[0])
    return now


def test_a_slow_first_step_does_not_spend_the_budget(clock):
    """An 8 s compile in the first step stopped the run at step 1 with 108 of 120 s
    left: the pace was judged on the first step."""
    budget = TimeBudget(deadline=clock[0] + 120, eval_images=10_000)
    clock[0] += 8.0  # the first step: CUDA's start, autotuning, compilation
    assert budget.ran_out(128, 8.0, step=0) is False
    clock[0] += 2.45  # 49 more steps of 0.05 s
    assert budget.ran_out(50 * 128, 10.45, step=49) is False
    assert budget.train_rate == pytest.approx(49 * 128 / 2.45)
    # With a measured rate, the reserve is the evaluation at 3x that pace: 10,000
    # images at about 7,680 images/s, some 1.3 s. Near the deadline it stops.
    clock[0] = 1000 + 120 - 1.0
    assert budget.ran_out(60 * 128, 10.95, step=59) is True


def test_a_passed_deadline_stops_even_at_the_first_step(clock):
    budget = TimeBudget(deadline=clock[0] + 5, eval_images=1000)
    clock[0] += 6
    assert budget.ran_out(128, 6.0, step=0) is True


def test_each_epoch_judges_from_its_own_first_step(clock):
    budget = TimeBudget(deadline=clock[0] + 600, eval_images=1000)
    budget.ran_out(100, 1.0, step=0)
    budget.ran_out(1100, 2.0, step=10)
    assert budget.train_rate == pytest.approx(1000.0)
    budget.ran_out(100, 5.0, step=0)  # the next epoch's first step, slow again
    budget.ran_out(600, 6.0, step=5)
    assert budget.train_rate == pytest.approx(500.0)
    assert TimeBudget(None, 1000).ran_out(1, 1.0, step=3) is False


def test_a_run_stopped_in_its_first_epoch_keeps_its_pace(tiny_cifar10, monkeypatch):
    """A model stopped inside its first epoch was recorded as failed, with no
    images/s; the error now carries the pace measured after the first step."""
    import time

    import torch

    from resnotes.models.preact_resnet import PreActResNet
    from resnotes.train import NoEpochFinished, TrainConfig, fit

    def ran_out(self, images, elapsed, step=1):
        self.train_rate = 123.0
        return step >= 2

    monkeypatch.setattr(TimeBudget, "ran_out", ran_out)
    torch.manual_seed(0)
    config = TrainConfig(progress=False, batch_size=16, epochs=2, seed=0)
    with pytest.raises(NoEpochFinished, match="123 images/s") as stop:
        fit(PreActResNet(depth=8), tiny_cifar10, config, deadline=time.monotonic() + 600)
    assert stop.value.images_per_s == 123.0
