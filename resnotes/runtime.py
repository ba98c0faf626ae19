"""The machine a run uses: device and precision choice, a hardware line for every
result, seeds."""

from __future__ import annotations

import contextlib
import platform
import random

import numpy as np
import torch


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is taken as it is."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_precision(device: torch.device | str, requested: str = "auto") -> str:
    """The numeric precision to train in: "bf16", "fp16" or "fp32".

    ``auto`` chooses by the GPU's compute capability: bf16 from 8.0 (Ampere)
    on, fp16 with a gradient scaler below (a T4 is 7.5: its cuDNN has no bf16
    convolutions, so bf16 would silently fall back to slow kernels), and fp32
    on the CPU and on Apple's MPS.
    """
    device = torch.device(device)
    if requested != "auto":
        if requested not in ("bf16", "fp16", "fp32"):
            raise ValueError(
                f"unknown precision {requested!r}; valid: auto, bf16, fp16, fp32"
            )
        return requested
    if device.type != "cuda":
        return "fp32"
    major, _minor = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast(device: torch.device | str, precision: str):
    """Mixed-precision autocast for "bf16" or "fp16"; a no-op for "fp32"."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (or buffers); the CPU for a model with
    neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_description(device: torch.device | str | None = None) -> str:
    """One line naming the hardware, e.g. 'NVIDIA H100 80GB HBM3 (1 GPU visible)' or
    'CPU: ... (2 threads)'."""
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        return f"{torch.cuda.get_device_name(device)} ({count} GPU visible)"
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"CPU: {_cpu_name()} ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG state (torch, CUDA, numpy, python) as tensors and plain values,
    so that a checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
    }
    if torch.cuda.is_available():
        # This process's own GPU only: a checkpoint then resumes on a machine with
        # another number of GPUs (a save with two visible failed to load with one).
        state["cuda"] = [torch.cuda.get_rng_state()]
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            nps["key"].numpy().astype(np.uint32),
            nps["pos"],
            nps["has_gauss"],
            nps["gauss"],
        )
    )
    if state.get("cuda") and torch.cuda.is_available():
        # Older checkpoints hold one state per visible GPU: take this process's,
        # or the first; on a CPU the GPU's state has nothing to restore.
        saved = state["cuda"]
        index = torch.cuda.current_device()
        torch.cuda.set_rng_state(saved[index] if index < len(saved) else saved[0])


def environment_summary() -> dict:
    """Versions a result depends on."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.system(),
    }


# Operators whose CUDA backward has no deterministic kernel (from the list in
# torch.use_deterministic_algorithms' documentation), by their aten name.
NONDETERMINISTIC_CUDA_BACKWARD = {
    "upsample_bilinear2d": "bilinear upsampling",
    "upsample_bicubic2d": "bicubic upsampling",
    "_adaptive_avg_pool2d": "adaptive average pooling to a size other than 1x1",
    "adaptive_max_pool2d": "adaptive max pooling",
    "max_pool3d_with_indices": "3-D max pooling",
    "avg_pool3d": "3-D average pooling",
    "index_add": "index_add",
    "scatter_add": "scatter_add",
}


def nondeterministic_ops(
    model: torch.nn.Module, input_size: tuple[int, ...] = (2, 3, 32, 32)
) -> list[str]:
    """The operators in ``model``'s forward pass whose CUDA backward is not
    deterministic.

    Found by running one forward pass in eval mode (no statistics change, no
    random numbers drawn) on a zero batch on the model's device, and watching
    every operator it dispatches.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: set[str] = set()

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func._schema.name.split("::")[-1])
            return func(*args, **(kwargs or {}))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), Watch():
            model(torch.zeros(input_size, device=model_device(model)))
    finally:
        model.train(was_training)
    return sorted(
        {label for op, label in NONDETERMINISTIC_CUDA_BACKWARD.items() if op in seen}
    )


def step_memory_bytes(model: torch.nn.Module, batch_size: int, precision: str) -> int:
    """About how many bytes one training step of ``model`` at ``batch_size`` needs on
    a GPU: the weights, their gradients and momentum (fp32), and the tensors that
    autograd keeps for the backward pass, counted by a forward pass of a copy on
    meta tensors (shapes only: it takes a second and no memory). Activations are
    halved for fp16 and bf16. The reader's model is not touched."""
    import copy

    meta = copy.deepcopy(model).to("meta").train()
    seen: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        seen.setdefault(id(tensor), tensor)  # one tensor kept by two layers counts once
        return tensor

    images = torch.empty(batch_size, 3, 32, 32, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        meta(images)
    saved = sum(t.numel() * t.element_size() for t in seen.values())
    if precision in ("fp16", "bf16"):
        saved //= 2
    weights = sum(p.numel() for p in model.parameters() if p.requires_grad) * 4 * 3
    return weights + saved


def check_memory(model: torch.nn.Module, batch: int, device, precision: str) -> None:
    """Before anything is moved to the GPU: if one step at ``batch`` (per GPU) would
    not fit its free memory (``step_memory_bytes``), say so in one line, with what
    would fit (the memory-efficient mode where the model has one, a smaller batch); a
    ``ValueError``. DenseNet-BC-190 under ``fast`` needs about 21 GiB at batch 128
    in fp16, and a T4 has some 14.5 GiB."""
    try:
        need = step_memory_bytes(model, batch, precision)
    except Exception:  # noqa: BLE001 - a model the meta device cannot run: no estimate
        return
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):  # no driver to ask (an emulated GPU)
        return
    if need <= 0.9 * free:
        return
    gib = 2**30
    ways = []
    efficient = [
        m for m in model.modules() if getattr(m, "memory_efficient", None) is False
    ]
    if efficient:
        import copy

        lean = copy.deepcopy(model)
        for layer in lean.modules():
            if getattr(layer, "memory_efficient", None) is False:
                layer.memory_efficient = True
        lean_need = step_memory_bytes(lean, batch, precision)
        ways.append(
            f"the memory-efficient mode (--model-arg memory_efficient=true), about "
            f"{lean_need / gib:.1f} GiB"
        )
    if batch > 1:
        half = step_memory_bytes(model, batch // 2, precision)
        ways.append(
            f"a batch of {batch // 2} per GPU (--batch-size), {half / gib:.1f} GiB"
        )
    raise ValueError(
        f"one training step needs about {need / gib:.1f} GiB (batch {batch}, "
        f"{precision}), more than the {free / gib:.1f} GiB free on "
        f"{torch.cuda.get_device_name(device)}: use " + " or ".join(ways)
    )
