"""Before training on a GPU, a step that would not fit its free memory is named in
one line, with what would fit (emulated: the free memory is mocked)."""

import pytest
import torch

from resnotes.models import create_model
from resnotes.runtime import check_memory, step_memory_bytes


def test_the_estimate_counts_saved_activations_and_scales_with_the_batch():
    model = create_model("densenet100_bc_k12", depth=40)
    one, two = (step_memory_bytes(model, b, "fp32") for b in (8, 16))
    weights = 3 * 4 * sum(p.numel() for p in model.parameters())
    assert weights < one < two and (two - weights) == pytest.approx(
        2 * (one - weights), rel=0.01
    )
    assert step_memory_bytes(model, 16, "fp16") - weights == pytest.approx(
        (two - weights) / 2, rel=0.01
    )
    assert all(p.device.type == "cpu" for p in model.parameters()), (
        "the reader's model moved"
    )
    lean = create_model("densenet100_bc_k12", depth=40, memory_efficient=True)
    assert step_memory_bytes(lean, 16, "fp32") < 0.7 * two


def test_a_step_that_does_not_fit_the_gpu_is_named_with_what_would_fit(monkeypatch):
    model = create_model("densenet100_bc_k12", depth=40)
    need = step_memory_bytes(model, 64, "fp16")
    monkeypatch.setattr(
        torch.cuda, "mem_get_info", lambda device=None: (need // 2, 2 * need)
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ValueError) as refused:
        check_memory(model, 64, torch.device("cuda"), "fp16")
    message = str(refused.value)
    assert "free on Tesla T4" in message and "(batch 64, fp16)" in message
    assert (
        "--model-arg memory_efficient=true" in message
        and "a batch of 32 per GPU" in message
    )
    monkeypatch.setattr(
        torch.cuda, "mem_get_info", lambda device=None: (4 * need, 4 * need)
    )
    check_memory(model, 64, torch.device("cuda"), "fp16")  # fits
