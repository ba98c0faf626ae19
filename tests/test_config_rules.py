"""TrainConfig names the rule a value breaks: devices and learning rates."""

import pytest

from resnotes.config import TrainConfig


@pytest.mark.parametrize("device", ["cuda:banana", "gpu", "cuda:", "cuda:0 ", ""])
def test_a_device_that_no_run_can_use_is_refused(device):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'"):
        TrainConfig(device=device)


@pytest.mark.parametrize("device", ["auto", "cpu", "mps", "cuda", "cuda:1"])
def test_every_real_device_name_is_taken(device):
    assert TrainConfig(device=device).device == device


@pytest.mark.parametrize("lr", [1e300, 1e31, 0.0, -1.0, float("nan")])
def test_a_learning_rate_outside_its_range_is_refused(lr):
    """--lr 1e300 was taken and ended in "value cannot be converted to type float
    without overflow" inside the optimiser."""
    with pytest.raises(ValueError, match=r"lr must be in \(0, 1e\+30\]"):
        TrainConfig(lr=lr)
