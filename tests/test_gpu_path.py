"""The GPU path, checked on a CPU-only machine.

- Every helper that takes a model and data runs on the model's device: the model
  is moved to a *fake* CUDA device (``FakeTensorMode``), where a CPU tensor
  meeting a CUDA weight raises "Expected all tensors to be on the same device",
  just as on a real GPU. A fake tensor cannot be read as a number, and autograd
  cannot run a backward pass on a device that does not exist, so a helper that
  gets as far as either has passed every device check of its forward pass.
- The precision follows the GPU's compute capability (mocked); fp16 survives a
  gradient scaler whose first steps overflow.
- No host sync inside an epoch.
- ``fit`` compiles a wrapper and hands back the reader's own module; what cannot
  be compiled (faithful stochastic depth, the memory-efficient DenseNet) runs
  eagerly and says why. Compilation uses the ``aot_eager`` backend here: Dynamo
  and AOTAutograd trace as on a GPU, without generating kernels.
"""

import contextlib
import time

import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode

import resnotes.engine as rengine
import resnotes.train as rtrain
from resnotes.analysis import (
    gradient_norms_per_unit,
    lesion_study,
    training_step_memory,
    unit_output_shapes,
)
from resnotes.batches import DeviceBatches
from resnotes.bench.checks import dynamo_graphs
from resnotes.models import count_flops, create_model
from resnotes.models.stochastic_depth import StochasticDepthResNet
from resnotes.runtime import pick_precision
from resnotes.train import TrainConfig, evaluate, fit


@pytest.fixture
def ampere(monkeypatch):
    """A CUDA device of compute capability 8.0 as far as the precision choice can tell."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend, and a fresh compile cache."""
    torch._dynamo.reset()
    monkeypatch.setitem(rengine.COMPILE_OPTIONS, "backend", "aot_eager")
    yield
    torch._dynamo.reset()


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
    return DeviceBatches(images, torch.arange(n) % 10, 4, train=False)  # on the CPU


def test_the_fake_device_catches_a_mismatch():
    model = create_model("preact_resnet20")
    with on_fake_cuda(model), pytest.raises(RuntimeError, match="same device"):
        model(torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("name", ["preact_resnet20", "resnet110_stochastic_depth"])
def test_evaluate_and_lesion_study_use_the_models_device(name, ampere):
    """Chapters 2 and 5 build test batches on the CPU and pass them with a model that
    fit() left on the GPU."""
    model = create_model(name, **({"depth": 8} if "stochastic" in name else {}))
    batches = cpu_batches()
    with on_fake_cuda(model):
        runs_on_the_models_device(evaluate, model, batches)
        runs_on_the_models_device(lesion_study, model, model.units()[:1], batches)


def test_a_lesion_study_copies_the_data_to_the_device_once(ampere, monkeypatch):
    """Each batch used to be normalised on the CPU and copied to the GPU again for
    every deleted unit; now the uint8 images and labels travel once."""
    copies = []
    real_to = torch.Tensor.to

    def counted(self, *args, **kwargs):
        out = real_to(self, *args, **kwargs)
        if self.device.type == "cpu" and out.device.type == "cuda":
            copies.append(tuple(self.shape))
        return out

    model = create_model("preact_resnet20")
    batches = cpu_batches(16)
    with on_fake_cuda(model):
        monkeypatch.setattr(torch.Tensor, "to", counted)
        runs_on_the_models_device(lesion_study, model, model.units()[:3], batches)
    uint8_data = [shape for shape in copies if shape == (16, 3, 32, 32)]
    per_batch = [shape for shape in copies if shape == (4, 3, 32, 32)]
    assert len(uint8_data) == 1 and per_batch == [], copies


def test_analysis_helpers_use_the_models_device(monkeypatch):
    model = create_model("preact_resnet20")
    units = list(model.stages[0])
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    for name in ("synchronize", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    for name in ("memory_allocated", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: 0)
    # training_step_memory measures in the precision training uses (a T4's fp16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with on_fake_cuda(model):
        runs_on_the_models_device(gradient_norms_per_unit, model, units, images, labels)
        assert unit_output_shapes(model, units)[0] == (1, 16, 32, 32)
        runs_on_the_models_device(training_step_memory, model, 2)
        runs_on_the_models_device(count_flops, model)


@pytest.mark.parametrize(
    "capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_precision_follows_the_gpus_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert pick_precision("cuda") == expected
    assert pick_precision("cuda", "fp32") == "fp32"


def test_precision_on_cpu_is_fp32_and_bad_requests_are_refused():
    assert pick_precision("cpu") == "fp32"
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        pick_precision("cpu", "fp8")


def tiny_net():
    """A network small enough for fp16 on a CPU, which is slow."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10)
    )


def test_fp16_trains_with_a_gradient_scaler_and_is_recorded(tiny_cifar10):
    torch.manual_seed(0)
    config = TrainConfig(epochs=1, batch_size=16, precision="fp16", progress=False)
    history = fit(tiny_net(), tiny_cifar10, config)
    assert history.meta["precision"] == "fp16" and "fp16" in history.summary()
    assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in history.epochs)


def test_fp16_survives_first_steps_that_overflow(tiny_cifar10, monkeypatch):
    """On a T4 the gradient scaler skips an overflowing first step. Fused SGD had
    created its momentum buffers from uninitialised memory on that step, and the next
    step read garbage: 'the loss was not finite at epoch 1, step 9'."""
    real = torch.amp.GradScaler
    monkeypatch.setattr(
        torch.amp, "GradScaler", lambda *a, **k: real(*a, **{"init_scale": 2.0**24, **k})
    )
    steps = []
    real_step = torch.optim.SGD.step
    monkeypatch.setattr(
        torch.optim.SGD, "step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k)
    )
    torch.manual_seed(0)
    model = create_model("preact_resnet20", depth=8)
    config = TrainConfig(epochs=2, batch_size=16, precision="fp16", progress=False)
    history = fit(model, tiny_cifar10, config)
    assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in history.epochs)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert 0 < len(steps) < 2 * (len(tiny_cifar10.train_labels) // 16), "no step was skipped"


def test_no_host_sync_inside_an_epoch(tiny_cifar10, monkeypatch):
    """Reading a tensor as a Python value waits for the GPU: an epoch may do it only
    after its first step, every CHECK_EVERY steps (the NaN check) and at its end."""
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
    engine = rengine.start(model, config)
    batches = engine.batches(
        tiny_cifar10.train_images, tiny_cifar10.train_labels, tiny_cifar10, config, True
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reads.clear()
    rtrain.train_one_epoch(engine, batches, optimizer, engine.grad_scaler(), config, 0)
    # after steps 1, 2, 4 and 5, then the epoch's totals
    assert len(batches) == 5 and reads == ["item"] * 4 + ["tolist"], reads


def test_cudnn_autotuning_is_on_unless_deterministic(monkeypatch):
    class Placed(torch.nn.Conv2d):
        def to(self, *args, **kwargs):  # stays on the CPU: the test needs no GPU
            return self

    monkeypatch.setattr(rengine, "pick_device", lambda requested="auto": torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    rengine.start(Placed(3, 2, 3), TrainConfig(compile=False))
    assert torch.backends.cudnn.benchmark is True
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    rengine.start(Placed(3, 2, 3), TrainConfig(compile=False, deterministic=True))
    assert torch.backends.cudnn.benchmark is False


def test_deterministic_kernels_are_put_back_after_the_run(tiny_cifar10, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic
    seen = []
    real = rtrain.train_one_epoch

    def watch(*args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(rtrain, "train_one_epoch", watch)
    config = TrainConfig(epochs=1, batch_size=16, deterministic=True, progress=False)
    fit(create_model("preact_resnet20", depth=8), tiny_cifar10, config)
    assert seen == [True]
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic) == before
    import os

    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_the_attention_networks_bilinear_upsampling_is_named_before_training():
    from resnotes.runtime import nondeterministic_ops

    assert nondeterministic_ops(create_model("attention56")) == ["bilinear upsampling"]
    assert nondeterministic_ops(create_model("preact_resnet20")) == []


def test_compile_is_on_by_default_only_for_cuda_under_paper(monkeypatch):
    import torch.utils._triton as triton

    monkeypatch.setattr(triton, "has_triton", lambda: True)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    model = create_model("preact_resnet20", depth=8)
    plan = lambda device, **kw: rengine.compile_plan(model, TrainConfig(**kw), device)[0]
    assert plan(cuda, profile="paper")
    assert not plan(cuda, profile="fast") and not plan(cuda, profile="demo")
    assert not plan(cpu, profile="paper")
    assert not plan(cuda, profile="paper", compile=False)
    assert plan(cpu, compile=True)


@pytest.mark.parametrize(
    "name, kwargs, eager",
    [
        ("resnet110_stochastic_depth", {"depth": 8}, True),
        ("resnet110", {"depth": 8}, False),  # survival 1: no block is ever skipped
        ("resnet110_stochastic_depth", {"depth": 8, "mode": "row"}, False),
        ("densenet100_bc_k12", {"depth": 16, "memory_efficient": True}, True),
        ("densenet100_bc_k12", {"depth": 16}, False),
    ],
)
def test_what_cannot_be_compiled_says_so(name, kwargs, eager):
    model = create_model(name, **kwargs)
    compiled, note = rengine.compile_plan(model, TrainConfig(compile=True), torch.device("cpu"))
    assert compiled is not eager
    assert ("not compiled:" in note) is eager
    if name.startswith("resnet110"):
        assert model.skips_whole_branches is eager


def test_fit_hands_back_the_readers_module_and_helpers_compile_nothing(tiny_cifar10, aot_eager):
    """fit used to compile the model in place: a lesion study then recompiled once per
    unit, and hooks added afterwards were not guarded."""
    torch.manual_seed(0)
    model = create_model("preact_resnet20", depth=8)
    config = TrainConfig(epochs=1, batch_size=16, compile=True, progress=False)
    history = fit(model, tiny_cifar10, config)
    assert history.meta["compiled"]
    assert type(model).__name__ == "PreActResNet"
    assert all(getattr(m, "_compiled_call_impl", None) is None for m in model.modules())
    before = dynamo_graphs()
    batches = DeviceBatches(
        tiny_cifar10.test_images, tiny_cifar10.test_labels, 8, train=False
    )
    lesions = lesion_study(model, model.units(), batches)
    shapes = unit_output_shapes(model, model.units())
    images, labels = next(iter(batches))
    norms = gradient_norms_per_unit(model, model.units(), images, labels)
    model.float().cpu()(images)
    assert dynamo_graphs() == before, "a helper ran compiled code"
    assert len(lesions) == len(shapes) == len(norms) == len(model.units())


def test_a_memory_efficient_densenet_trains_when_compiling_is_asked(tiny_cifar10, aot_eager, capsys):
    """It raised InternalTorchDynamoError ('checkpoint not implemented ... context_fn')."""
    torch.manual_seed(0)
    model = create_model("densenet100_bc_k12", depth=16, memory_efficient=True)
    config = TrainConfig(epochs=1, batch_size=16, compile=True, progress=False)
    history = fit(model, tiny_cifar10, config)
    assert not history.meta["compiled"] and "not compiled:" in capsys.readouterr().out


def test_faithful_stochastic_depth_runs_eagerly_and_keeps_its_gates(tiny_cifar10, aot_eager):
    """Its branches used to share one compile cache, and a counting hook recompiled
    every mini-batch."""
    torch.manual_seed(0)
    model = StochasticDepthResNet(depth=8)
    ran = []
    for i, unit in enumerate(model.units()):
        unit.branch.register_forward_hook(lambda m, *_, i=i: ran.append(i) if m.training else None)
    before = dynamo_graphs()
    config = TrainConfig(epochs=1, batch_size=16, compile=True, progress=False)
    history = fit(model, tiny_cifar10, config)
    steps = len(tiny_cifar10.train_labels) // 16
    assert not history.meta["compiled"] and dynamo_graphs() == before
    assert 0 < len(ran) < steps * len(model.units()), "the gates must still skip blocks"


# Small depths of every chapter's network.
CHAPTER_MODELS = [
    ("preact_resnet20", {}),
    ("pyramidnet110_a48", {"depth": 20}),
    ("densenet100_bc_k12", {"depth": 16}),
    ("attention56", {"depth": 29, "p": 0, "t": 1}),
    ("resnet110_stochastic_depth", {"depth": 8, "mode": "row"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs", CHAPTER_MODELS, ids=[n for n, _ in CHAPTER_MODELS])
def test_each_chapter_model_compiles_and_matches_eager(name, kwargs):
    """A compiled training step gives the eager step's loss and gradients."""
    torch.manual_seed(0)
    eager = create_model(name, **kwargs)
    twin = create_model(name, **kwargs)
    twin.load_state_dict(eager.state_dict())
    torch._dynamo.reset()
    compiled = torch.compile(twin, backend="aot_eager")
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    losses = []
    for model in (eager, compiled):
        model.train()
        torch.manual_seed(1)  # the same random draws for both
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        losses.append(loss)
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    for (key, a), b in zip(eager.named_parameters(), twin.parameters()):
        assert (a.grad is None) == (b.grad is None), key
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-4), key


# --------------------------------------------------------------------------
# The time budget
# --------------------------------------------------------------------------


def test_fit_stops_before_an_epoch_that_would_end_past_the_deadline(tiny_cifar10, monkeypatch):
    monkeypatch.setattr(rengine.TimeBudget, "ran_out", lambda *args: False)  # epochs run whole
    torch.manual_seed(0)
    config = TrainConfig(epochs=5, batch_size=16, progress=False)
    history = fit(create_model("preact_resnet20"), tiny_cifar10, config, deadline=time.monotonic() + 0.01)
    assert len(history.epochs) == 1 and history.meta["stopped_early"]
    assert history.test_acc is not None


def test_fit_stops_inside_an_epoch_when_the_budget_runs_out(data_env, monkeypatch):
    """The first epoch used to run whole, however long it took."""
    from conftest import write_cifar10_pickles
    from resnotes.datasets import load_cifar

    _, external = data_env
    write_cifar10_pickles(external, per_class_train=60, per_class_test=4)
    data = load_cifar("cifar10", download=False)
    monkeypatch.setattr(rtrain, "CHECK_EVERY", 2)
    torch.manual_seed(0)
    model = create_model("preact_resnet20", depth=56)
    config = TrainConfig(epochs=3, batch_size=8, progress=False)
    budget = 4.0  # one epoch of this network takes far longer here
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no epoch finished"):
        fit(model, data, config, deadline=start + budget)
    assert time.monotonic() - start < budget + 2
