"""The epoch plan's generator seeds: the same order as ever for the usual seeds,
and no overflow for any seed the command line takes (below 2**63)."""

import pytest
import torch

from resnotes.batches import DeviceBatches


def plan(seed, epoch=3, world_size=1, rank=0):
    images = torch.zeros(64, 3, 32, 32, dtype=torch.uint8)
    batches = DeviceBatches(images, torch.arange(64) % 10, 16, "cpu", (0.5,) * 3, (0.25,) * 3,
                            train=True, seed=seed, world_size=world_size, rank=rank)  # fmt: skip
    batches.set_epoch(epoch)
    return batches.epoch_plan()


def test_the_usual_seeds_keep_their_order():
    order, _, _ = plan(7)
    expected = torch.randperm(64, generator=torch.Generator().manual_seed(7 * 100_003 + 3))
    assert order.tolist() == expected.tolist()


@pytest.mark.parametrize("seed", [10**14, 2**63 - 1])
@pytest.mark.parametrize("world_size", [1, 2])
def test_a_seed_of_any_size_draws_a_plan(seed, world_size):
    """It failed with "Overflow when unpacking long long" above about 9e13."""
    order, offsets, flips = plan(seed, world_size=world_size, rank=world_size - 1)
    assert len(order) == 64 // world_size and offsets is not None and flips is not None
    assert plan(seed, world_size=world_size, rank=world_size - 1)[0].tolist() == order.tolist()


def test_the_epoch_plan_goes_to_a_gpu_from_pinned_memory_without_waiting(monkeypatch):
    """Three blocking copies of the plan per epoch would each count as a host sync
    in CUDA's sync debug mode; emulated here by recording the calls."""
    from resnotes.batches import to_device

    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append("pin") or self)
    real_to = torch.Tensor.to

    def fake_to(self, device, *args, **kwargs):
        calls.append(("to", str(device), kwargs.get("non_blocking", False)))
        return real_to(self, "cpu")

    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    to_device(torch.arange(4), torch.device("cuda", 0))
    assert calls == ["pin", ("to", "cuda:0", True)]
    calls.clear()
    to_device(torch.arange(4), torch.device("cpu"))
    assert calls == [("to", "cpu", False)]
