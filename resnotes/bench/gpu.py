"""``python -m resnotes.bench gpu``: the prepared check for a lent GPU machine.

In order, within ``--budget-minutes`` in all (data included):

1. the environment: torch, CUDA, cuDNN, the GPU and its compute capability,
   Triton, and the precision and compilation ``fit`` would choose;
2. the data: the offline archive (``--archive``) is extracted into a temporary
   folder *outside* the output folder, which travels back, and decoded once;
3. the checks of ``resnotes.bench.checks``: the chapters' pattern, host syncs in
   fp16 and bf16, fp16 with overflowing first steps, compile on against off;
4. each chapter's paper model (ResNet-110, PyramidNet-110 with α=48,
   DenseNet-BC-100, Attention-92, ResNet-110 with stochastic depth) for
   ``--epochs`` epochs under ``fast`` on full CIFAR-10, with a ledger record each
   (kind ``bench``).

The budget is a hard bound: every part is skipped when too little time is left,
and a model's training stops inside an epoch when the time left would not cover
its evaluation. ``OUT/summary.json`` is rewritten after every part and every
model, so a machine taken back mid-way still leaves what was measured; it names
what ran, what failed and what had no time. A model's speed is reported only
from the epochs after its first (which pays for compilation and autotuning).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

from .. import train as rtrain
from ..config import get_profile
from ..datasets import load_cifar
from ..files import atomic_write_text
from ..runtime import hardware_description, pick_device, pick_precision
from . import checks

# One paper model per chapter, in the book's order.
CHAPTER_MODELS = (
    "preact_resnet110",
    "pyramidnet110_a48",
    "densenet100_bc_k12",
    "attention92",
    "resnet110_stochastic_depth",
)
CHECK_SECONDS = 60  # no check starts with less than this left, or this x 3 on a CPU


class GpuCheck:
    """The run of one ``bench gpu``: its clock, its log and its summary."""

    def __init__(self, out: Path, budget_minutes: float, start: float):
        self.out, self.deadline = out, start + 60 * budget_minutes
        self.start = start
        self.summary: dict = {
            "budget_minutes": budget_minutes,
            "parts": {},
            "models": {},
        }
        (out / "records").mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.summary["seconds"] = round(time.monotonic() - self.start, 1)
        atomic_write_text(
            self.out / "summary.json", json.dumps(self.summary, indent=2, default=str)
        )

    def part(self, name: str, work, needs: float) -> None:
        """Run ``work()`` if ``needs`` seconds are left; record its result or
        failure."""
        if self.left() < needs:
            self.summary["parts"][name] = (
                f"skipped: {self.left():.0f} s left, it needs {needs:.0f}"
            )
        else:
            began = time.monotonic()
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 - one failure must not end the check
                traceback.print_exc(file=sys.stdout)
                result = {"failed": f"{type(exc).__name__}: {str(exc)[:300]}"}
            self.summary["parts"][name] = {
                "seconds": round(time.monotonic() - began, 1),
                "result": result,
            }
        print(
            f"{name}: {json.dumps(self.summary['parts'][name], default=str)[:600]}",
            flush=True,
        )
        self.save()


def environment() -> dict:
    device = pick_device()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": hardware_description(device),
        "precision_fit_chooses": pick_precision(device),
    }
    if device.type == "cuda":
        info.update(
            capability=torch.cuda.get_device_capability(),
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    try:
        from torch.utils._triton import has_triton

        info["triton"] = has_triton()
    except ImportError:
        info["triton"] = False
    return info


def extract_archive(archive: Path, into: Path) -> Path:
    """Extract the offline CIFAR archive (no links, no paths outside ``into``)."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        for m in members:
            if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts:
                raise ValueError(f"{archive} holds a path outside its folder: {m.name}")
        # filter="data" (Python 3.12, and 3.8.17+ security releases) also refuses
        # what the checks above might miss; Python 3.12 and 3.13 warn without it.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, members=members, **safe)
    return into


def train_models(
    check: GpuCheck, models, epochs: int, profile_name: str, data
) -> list[dict]:
    """Each model for ``epochs`` epochs within the budget; a ledger record each."""
    from ..ledger import make_record, write_record
    from ..models import count_flops, get_spec

    records, profile = [], get_profile(profile_name)
    for name in models:
        check.summary["models"].setdefault(name, "not started")
    for name in models:
        if check.left() < 5:
            check.summary["models"][name] = "skipped: no time left"
            check.save()
            continue
        row = check.summary["models"][name] = {"status": "running"}
        try:
            spec = get_spec(name)
            torch.manual_seed(0)
            model = spec.build(num_classes=data.num_classes)
            config = profile.train_config(
                epochs=epochs, warmup_epochs=0, progress=False
            )
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            history = rtrain.fit(
                model, data, config, name=name, deadline=check.deadline
            )
            peak = None
            if torch.cuda.is_available():
                peak = torch.cuda.max_memory_allocated()
            record = make_record(
                history,
                model_kwargs={**spec.kwargs, "num_classes": data.num_classes},
                flops_per_image=count_flops(model),
                kind="bench",
                peak_memory_bytes=peak,
            )
            path = write_record(record, check.out / "records")
        except rtrain.NoEpochFinished as exc:  # keep the pace it reached
            row.update(
                status="stopped by the time budget inside its first epoch",
                steady_images_per_s=exc.images_per_s,
                speed_note="measured after the first step, inside the first epoch",
            )
            print(f"{name}: {json.dumps(row, default=str)}", flush=True)
            check.save()
            continue
        except Exception as exc:  # noqa: BLE001 - one model's failure must not end the check
            row["status"] = (
                f"failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"
            )
            print(f"{name}: {row['status']}")
            traceback.print_exc(file=sys.stdout)
            check.save()
            continue
        records.append(record)
        steady = len(history.epochs) > 1
        stopped = history.meta.get("stopped_early", False)
        row.update(
            status="stopped by the time budget" if stopped else "done",
            epochs=len(history.epochs),
            precision=history.meta["precision"],
            compiled=history.meta["compiled"],
            first_epoch_seconds=history.epochs[0]["seconds"],
            steady_epoch_seconds=history.steady("seconds") if steady else None,
            steady_images_per_s=history.steady("images_per_s") if steady else None,
            speed_note=None
            if steady
            else "one epoch only: it includes compilation and autotuning",
            test_acc=history.test_acc,
            peak_memory_bytes=peak,
            record=path.name,
        )
        print(f"{name}: {json.dumps(row, default=str)}", flush=True)
        check.save()
    return records


def run_checks(check: GpuCheck, loaded: dict, tiny: bool) -> None:
    """The checks of ``resnotes.bench.checks``, on a small subset of the data."""
    needs = CHECK_SECONDS * (3 if tiny else 1)
    per_class = (40, 10) if tiny else (500, 100)

    def small():
        if "small" not in loaded:
            subset = dict(zip(("train_per_class", "test_per_class"), per_class))
            loaded["small"] = load_cifar("cifar10", **subset)
        return loaded["small"]

    check.part("chapter_pattern", lambda: checks.chapter_pattern(small(), tiny), needs)
    for p in ("fp16", "bf16"):
        check.part(
            f"host_syncs_{p}", lambda p=p: checks.host_syncs(small(), p, tiny), needs
        )
    check.part(
        "fp16_overflowing_first_steps",
        lambda: checks.overflowing_first_steps(small(), tiny),
        needs,
    )
    check.part(
        "compile_on_and_off",
        lambda: checks.compile_on_and_off(small(), tiny),
        3 * needs,
    )


def gpu_check(
    models=CHAPTER_MODELS,
    epochs: int = 2,
    profile_name: str = "fast",
    out="runs/gpu-check",
    budget_minutes: float = 6.0,
    allow_cpu: bool = False,
    archive: str | None = None,
    data_kwargs: dict | None = None,
    parts=("checks", "models"),
) -> list[dict]:
    """The whole check (see the module's docstring); returns the models' records."""
    start = time.monotonic()
    if pick_device().type != "cuda" and not allow_cpu:
        raise SystemExit(
            "bench gpu needs a CUDA GPU (pass --allow-cpu to try the command on a CPU)"
        )
    out = Path(out)
    check = GpuCheck(out, budget_minutes, start)
    check.part("environment", environment, 0)
    scratch = Path(tempfile.mkdtemp(prefix="resnotes-gpu-check-"))  # outside OUT
    data_env = os.environ.get("RESNOTES_DATA")
    try:
        if archive:
            os.environ["RESNOTES_DATA"] = str(extract_archive(Path(archive), scratch))
        tiny = pick_device().type != "cuda"
        profile = get_profile(profile_name)
        subset = profile.data_kwargs() if data_kwargs is None else data_kwargs
        loaded = {}
        check.part(
            "data",
            lambda: loaded.setdefault(
                "data", load_cifar("cifar10", **subset)
            ).describe(),
            0,
        )
        data = loaded.get("data")
        if data is None:
            return []
        if "checks" in parts:
            run_checks(check, loaded, tiny)
        records = (
            train_models(check, models, epochs, profile_name, data)
            if "models" in parts
            else []
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if archive:
            os.environ.pop("RESNOTES_DATA", None)
            if data_env is not None:
                os.environ["RESNOTES_DATA"] = data_env
        check.save()
    print(f"total {time.monotonic() - start:.0f} s; summary in {out / 'summary.json'}")
    return records
