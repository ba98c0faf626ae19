"""Random-generator states in a checkpoint: one GPU's, so that a run saved with two
GPUs visible resumes with one, or on the CPU."""

import torch

from resnotes import runtime


def fake_cuda(monkeypatch, current=0):
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda *a: torch.full((16,), 7, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, *a: restored.append(state.clone()))
    return restored


def test_a_save_holds_the_current_gpus_state_only(monkeypatch):
    fake_cuda(monkeypatch)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: (_ for _ in ()).throw(AssertionError("all GPUs")))
    state = runtime.rng_state()
    assert len(state["cuda"]) == 1 and state["cuda"][0].tolist() == [7] * 16


def test_a_two_gpu_save_resumes_with_one_gpu_and_on_the_cpu(monkeypatch):
    saved = runtime.rng_state()
    saved["cuda"] = [torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)]
    restored = fake_cuda(monkeypatch, current=0)
    runtime.set_rng_state(saved)  # it raised IndexError, reported as "does not fit this model"
    assert restored[-1].tolist() == [1] * 16
    restored = fake_cuda(monkeypatch, current=3)  # a device index the save never had
    runtime.set_rng_state(saved)
    assert restored[-1].tolist() == [1] * 16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runtime.set_rng_state(saved)  # on the CPU the GPU's state is left alone
