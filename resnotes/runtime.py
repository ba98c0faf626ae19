"""The machine a run uses: device choice, a hardware line for every result, seeds."""

from __future__ import annotations

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
    """One line naming the hardware, e.g. 'NVIDIA H100 80GB HBM3 (1 GPU)' or 'CPU: ... (2 threads)'."""
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({torch.cuda.device_count()} GPU visible)"
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
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(("MT19937", nps["key"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def environment_summary() -> dict:
    """Versions a result depends on."""
    return {"torch": torch.__version__, "python": platform.python_version(), "os": platform.system()}
