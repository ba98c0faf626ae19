"""The GPU path, checked on a CPU-only machine.

- Every helper that takes a model and data runs on the model's device: the model
  is moved to a *fake* CUDA device (``FakeTensorMode``), where a CPU tensor
  meeting a CUDA weight raises "Expected all tensors to be on the same device",
  just as on a real GPU. A fake tensor cannot be read as a number, and autograd
  cannot run a backward pass on a device that does not exist, so a helper that
  gets as far as either has passed every device check of its forward pass.
- The precision follows the GPU's compute capability (mocked).
- No host sync inside an epoch; the fp16 path with its gradient scaler trains.
- torch.compile works on the chapter models, and on faithful stochastic depth.
- The prepared GPU check goes on past a failing model and keeps to its budget.
(DDP with faithful stochastic depth: test_ledger_and_distributed.py.)
"""

import contextlib
import json
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode

import resnotes.train as rtrain
from conftest import write_cifar10_pickles
from resnotes.analysis import gradient_norms_per_unit, lesion_study, training_step_memory, unit_output_shapes
from resnotes.data import DeviceBatches
from resnotes.models import count_flops, create_model
from resnotes.models.stochastic_depth import StochasticDepthResNet
from resnotes.runtime import pick_precision
from resnotes.train import TrainConfig, compile_in_place, evaluate, fit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ampere(monkeypatch):
    """A CUDA device of compute capability 8.0 as far as the precision choice can tell."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))


@contextlib.contextmanager
def on_fake_cuda(model):
    """Move ``model`` to a fake CUDA device for the ``with`` block."""
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        model.to("cuda")
        yield model


def runs_on_the_models_device(helper, *args):
    """Run ``helper``; a device mismatch fails the test, reading a fake number ends it well."""
    try:
        helper(*args)
    except DataDependentOutputException:
        pass  # it got as far as turning a result into a Python number
    except RuntimeError as exc:
        if "hasPrimaryContext" not in str(exc):
            raise  # e.g. "Expected all tensors to be on the same device"
        # it got as far as the backward pass, which needs a real CUDA context


def cpu_batches(n=8):
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    return DeviceBatches(images, torch.arange(n) % 10, 4, train=False)  # the default device: the CPU


def test_the_fake_device_catches_a_mismatch():
    model = create_model("preact_resnet20")
    with on_fake_cuda(model), pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        model(torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("name", ["preact_resnet20", "resnet110_stochastic_depth"])
def test_evaluate_and_lesion_study_use_the_models_device(name, ampere):
    """Chapters 2 and 5 build test batches on the CPU and pass them with a model that
    fit() left on the GPU."""
    model = create_model(name, **({"depth": 8} if "stochastic" in name else {}))
    units = model.units() if hasattr(model, "units") else [model.stages[0][0]]
    batches = cpu_batches()
    with on_fake_cuda(model):
        runs_on_the_models_device(evaluate, model, batches)
        runs_on_the_models_device(lesion_study, model, units[:1], batches)


def test_analysis_helpers_use_the_models_device(monkeypatch):
    model = create_model("preact_resnet20")
    units = list(model.stages[0])
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    for name in ("synchronize", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    for name in ("memory_allocated", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: 0)
    with on_fake_cuda(model):
        runs_on_the_models_device(gradient_norms_per_unit, model, units, images, labels)
        assert unit_output_shapes(model, units)[0] == (1, 16, 32, 32)
        runs_on_the_models_device(training_step_memory, model, 2)
        runs_on_the_models_device(count_flops, model)


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_precision_follows_the_gpus_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert pick_precision("cuda") == expected
    assert pick_precision("cuda", "fp32") == "fp32"


def test_precision_on_cpu_is_fp32_and_bad_requests_are_refused():
    assert pick_precision("cpu") == "fp32"
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        pick_precision("cpu", "fp8")


def test_fp16_trains_with_a_gradient_scaler_and_is_recorded(tiny_cifar10):
    torch.manual_seed(0)
    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10))  # fp16 is slow on a CPU
    history = fit(tiny, tiny_cifar10, TrainConfig(epochs=1, batch_size=16, precision="fp16", progress=False))
    assert history.meta["precision"] == "fp16" and "fp16" in history.summary()
    assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in history.epochs)


def test_no_host_sync_inside_an_epoch(tiny_cifar10, monkeypatch):
    """Reading a tensor as a Python value waits for the GPU: an epoch may do it only
    every CHECK_EVERY steps (the NaN check) and at its end."""
    monkeypatch.setattr(rtrain, "CHECK_EVERY", 2)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            reads.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    model = create_model("preact_resnet20")
    config = TrainConfig(epochs=1, batch_size=16, progress=False)
    batches = DeviceBatches(tiny_cifar10.train_images, tiny_cifar10.train_labels, 16, train=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    rtrain.train_one_epoch(model, model, batches, optimizer, scaler, config, "fp32", 0, False)
    assert len(batches) == 5 and reads == ["item"] * 3, reads  # after steps 2, 4 and 5


def test_cudnn_autotuning_is_on_unless_deterministic():
    source = Path(rtrain.__file__).read_text()
    assert "torch.backends.cudnn.benchmark = True" in source
    rtrain.make_deterministic()
    try:
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def test_the_attention_networks_bilinear_upsampling_is_named_before_training():
    from resnotes.runtime import nondeterministic_ops

    assert nondeterministic_ops(create_model("attention56")) == ["bilinear upsampling"]
    assert nondeterministic_ops(create_model("preact_resnet20")) == []


def test_compile_is_on_by_default_only_for_cuda_under_fast_and_paper(monkeypatch):
    import torch.utils._triton as triton

    monkeypatch.setattr(triton, "has_triton", lambda: True)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert rtrain.compile_by_default(TrainConfig(profile="fast"), cuda)
    assert rtrain.compile_by_default(TrainConfig(profile="paper"), cuda)
    assert not rtrain.compile_by_default(TrainConfig(profile="demo"), cuda)
    assert not rtrain.compile_by_default(TrainConfig(profile="fast"), cpu)
    assert not rtrain.compile_by_default(TrainConfig(profile="fast", compile=False), cuda)


# Small depths of every chapter's network.
CHAPTER_MODELS = [
    ("preact_resnet20", {}),
    ("pyramidnet110_a48", {"depth": 20}),
    ("densenet100_bc_k12", {"depth": 16}),
    ("attention56", {"depth": 29, "p": 0, "t": 1}),
    ("resnet110_stochastic_depth", {"depth": 8}),
]


@pytest.mark.parametrize("name, kwargs", CHAPTER_MODELS, ids=[n for n, _ in CHAPTER_MODELS])
def test_each_chapter_model_compiles_and_matches_eager(name, kwargs):
    """A compiled training step gives the eager step's loss and gradients.

    Dynamo traces the model and AOTAutograd builds its backward, as on a GPU;
    the ``aot_eager`` backend then runs those graphs without generating kernels,
    which keeps this test fast on 2 CPU cores.
    """
    torch.manual_seed(0)
    eager = create_model(name, **kwargs)
    compiled = create_model(name, **kwargs)
    compiled.load_state_dict(eager.state_dict())
    torch._dynamo.reset()
    compile_in_place(compiled, backend="aot_eager")
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    losses = []
    for model in (eager, compiled):
        model.train()
        torch.manual_seed(1)  # the same stochastic-depth gates for both
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        losses.append(loss)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for (key, a), b in zip(eager.named_parameters(), compiled.parameters()):
        assert (a.grad is None) == (b.grad is None), key
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-4), key
    assert set(eager.state_dict()) == set(compiled.state_dict()), "compiling must keep the checkpoint's keys"


def test_faithful_stochastic_depth_compiles_its_branches_and_keeps_its_gates():
    model = StochasticDepthResNet(depth=8)
    compile_in_place(model, backend="aot_eager")
    compiled = [m for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    assert len(compiled) == len(model.units()) and all(m is u.branch for m, u in zip(compiled, model.units()))
    model.train()
    ran = []
    for i, unit in enumerate(model.units()):
        unit.branch.register_forward_hook(lambda *_, i=i: ran.append(i))
    skipped = set()
    for seed in range(8):
        torch.manual_seed(seed)
        ran.clear()
        model(torch.randn(2, 3, 32, 32)).sum().backward()
        skipped |= set(range(len(model.units()))) - set(ran)
    assert skipped, "the gates must still skip blocks"


# --------------------------------------------------------------------------
# The prepared GPU check (run here on the CPU with --allow-cpu)
# --------------------------------------------------------------------------


def test_fit_stops_before_an_epoch_that_would_end_past_the_deadline(tiny_cifar10):
    import time

    torch.manual_seed(0)
    history = fit(create_model("preact_resnet20"), tiny_cifar10, TrainConfig(epochs=5, batch_size=16, progress=False),
                  deadline=time.monotonic() + 0.01)  # fmt: skip
    assert len(history.epochs) == 1 and history.meta["stopped_early"] and history.test_acc is not None


def test_gpu_check_logs_a_failing_model_and_goes_on(data_env, tmp_path, monkeypatch, capsys):
    from resnotes.bench import main as bench_main

    _, external = data_env
    write_cifar10_pickles(external, per_class_train=20, per_class_test=10)
    real_fit = rtrain.fit

    def fails_for_plain20(model, data, config, name=None, **kwargs):
        if name == "plain20":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_fit(model, data, config, name=name, **kwargs)

    monkeypatch.setattr(rtrain, "fit", fails_for_plain20)
    out = tmp_path / "check"
    argv = ["gpu", "--allow-cpu", "--profile", "smoke", "--epochs", "2", "--out", str(out), "--models", "plain20", "preact_resnet20"]
    assert bench_main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    plain, preact = summary["models"]
    assert plain["status"].startswith("failed: RuntimeError: CUDA error") and preact["status"] == "done"
    assert preact["epochs"] == 2 and preact["last_epoch_seconds"] > 0
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 1 and records[0]["model"] == "preact_resnet20" and records[0]["kind"] == "bench"
    log = (out / "log.txt").read_text()
    assert "plain20: failed" in log and "preact_resnet20: last epoch" in log and "Traceback" in log  # kept for debugging
