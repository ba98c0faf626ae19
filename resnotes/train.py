"""The training engine: ``fit(model, data, TrainConfig(...))`` returns a ``History``.

- SGD with momentum (optionally Nesterov) and weight decay; learning-rate
  schedules set every step: the papers' step schedule, cosine, and one-cycle,
  each with optional warm-up.
- Speed on a GPU: the data stays on the device as uint8
  (``resnotes.batches.DeviceBatches``, no host-device copy inside an epoch);
  mixed precision chosen by the GPU (bf16 from compute capability 8.0, fp16
  with a gradient scaler below); channels_last; cuDNN autotuning;
  ``torch.compile``; and no host sync inside an epoch (the loss is checked for
  NaN on the device and read every ``CHECK_EVERY`` steps).
- A checkpoint after every epoch (``resnotes.checkpoint``); ``resume=True``
  continues from it, and refuses a checkpoint of a different run.
- The model kept at the end is the one with the best *validation* accuracy; the
  test set is evaluated once, on that model.
- Started by ``torchrun --nproc_per_node=K``, ``fit`` trains with
  DistributedDataParallel: each rank trains on its own shard of every epoch,
  ``batch_size`` stays the global batch (each rank takes ``batch_size / K``),
  and only rank 0 prints and writes checkpoints.

Run ``python -m resnotes.train --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .batches import DeviceBatches
from .cli import at_least, positive_number
from .checkpoint import (
    CheckpointError,
    RunLock,
    RunLockedError,
    check_same_run,
    find_checkpoint,
    load_checkpoint,
    run_identity,
    save_checkpoint,
    set_aside,
)
from .config import TrainConfig, make_config
from .datasets import CifarData, load_cifar
from .files import WriteError
from .models import count_parameters, create_model, list_models
from .progress import progress
from .report import wrap
from .runtime import (
    autocast,
    environment_summary,
    hardware_description,
    model_device,
    nondeterministic_ops,
    pick_device,
    pick_precision,
    rng_state,
    seed_everything,
    set_rng_state,
)

__all__ = ["CheckpointError", "History", "TrainConfig", "evaluate", "fit", "learning_rate", "main"]

CHECK_EVERY = 50  # steps between reads of the on-device "loss was not finite" flag


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate at optimiser step ``step`` (0-based)."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        # Linear rise from lr/25 to lr, then cosine annealing to zero.
        warmup = warmup or round(0.3 * total)
        if step < warmup:
            return config.lr * (1 / 25 + (1 - 1 / 25) * step / warmup)
        return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    if step < warmup:
        return config.lr * (0.1 + 0.9 * step / warmup)
    if config.schedule == "step":
        epoch = step / steps_per_epoch
        return config.lr * config.lr_decay ** sum(epoch >= f * config.epochs for f in config.milestones)
    return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@dataclass
class History:
    """What a run did, epoch by epoch, and where it ran. Serialises to JSON."""

    meta: dict[str, Any]
    config: dict[str, Any]
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    test_acc: float | None = None  # of the model with the best validation accuracy
    seconds: float = 0.0

    def column(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def steady(self, key: str) -> float:
        """The median of ``key`` over the epochs after the first (the first pays for
        compilation and autotuning); the first epoch's value when it is the only one.
        This is the book's one definition of seconds per epoch and images/s."""
        import statistics

        values = self.column(key)
        return float(statistics.median(values[1:] or values))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from .files import atomic_write_text

            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "History":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls(**json.loads(text))

    def summary(self) -> str:
        m = self.meta
        return (
            f"{m['model']} ({m['params']:,} params) on {m['dataset']}, profile {self.config['profile']!r}, "
            f"{len(self.epochs)} epochs, seed {self.config['seed']}, {m['hardware']}, {m.get('precision', 'fp32')}: "
            f"best val {self.best_val_acc:.2%} (epoch {self.best_epoch}), test {self.test_acc:.2%}, "
            f"{self.seconds:.0f} s"
        )


@torch.no_grad()
def evaluate(model: nn.Module, batches, precision: str | None = None) -> float:
    """Top-1 accuracy of ``model`` over ``batches`` (eval mode), on the model's device.

    The batches may live anywhere: each is moved to the model's device.
    ``precision`` defaults to the one ``fit`` would choose for that device.
    """
    device = model_device(model)
    precision = pick_precision(device) if precision is None else precision
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(images)
        correct += (logits.argmax(1) == labels).sum()
        total += len(labels)
    return correct.item() / max(1, total)


def make_deterministic() -> None:
    """Ask PyTorch for deterministic kernels wherever they exist.

    ``warn_only=True``: an operator with no deterministic CUDA backward (the
    Attention networks' bilinear upsampling) warns instead of stopping the run;
    ``fit`` lists such operators before training starts.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def skips_whole_branches(model: nn.Module) -> bool:
    """Whether some block may skip its residual branch for a whole batch (faithful
    stochastic depth): its parameters then get no gradient in that step."""
    from .models.stochastic_depth import StochasticDepthBlock

    return any(isinstance(m, StochasticDepthBlock) and m.mode == "faithful" for m in model.modules())


def compile_in_place(model: nn.Module, **options: Any) -> None:
    """``torch.compile`` the model (``options`` go to it), keeping its state_dict keys.

    A network whose blocks decide in Python, per batch, whether to run their
    branch (faithful stochastic depth) compiles each branch instead, so the
    gates stay plain Python and every branch is one compiled graph.
    """
    from .models.stochastic_depth import StochasticDepthBlock

    if skips_whole_branches(model):
        for module in model.modules():
            if isinstance(module, StochasticDepthBlock):
                module.branch.compile(**options)
    else:
        model.compile(**options)


def compile_by_default(config: TrainConfig, device: torch.device) -> bool:
    """``compile=None``: compile on CUDA (with Triton) under the fast and paper profiles."""
    if config.compile is not None:
        return config.compile
    if device.type != "cuda" or config.profile not in ("fast", "paper"):
        return False
    from torch.utils._triton import has_triton

    return has_triton()


def distributed_context() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) for a plain run.

    Under torchrun with more than one process, this also joins the process
    group (NCCL on CUDA, gloo on the CPU) if that has not been done yet.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 0, 1
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, local_rank, world_size


def all_reduce_sum(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """Sum a tensor over every process (unchanged in a plain run)."""
    if world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(values)
    return values


def train_one_epoch(step_model, model, batches, optimizer, scaler, config: TrainConfig, precision: str,
                    epoch: int, show_progress: bool) -> dict[str, Any]:  # fmt: skip
    """One pass over ``batches``. Returns the epoch's summed loss, correct count
    and image count as device tensors: nothing here waits for the GPU, except
    the NaN check every ``CHECK_EVERY`` steps."""
    device = model_device(model)
    steps = len(batches)
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_bad_step = torch.full((), -1, device=device, dtype=torch.long)
    seen = 0
    bar = progress(batches, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not show_progress)
    for step, (images, labels) in enumerate(bar):
        lr = learning_rate(config, epoch * steps + step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device, precision):
            logits = step_model(images)
            loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss = loss.detach()
        first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
        loss_sum += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        if (step + 1) % CHECK_EVERY == 0 or step + 1 == steps:
            _raise_if_not_finite(first_bad_step, epoch)
    return {"loss_sum": loss_sum, "correct": correct, "seen": seen, "lr": lr}


def _raise_if_not_finite(first_bad_step: torch.Tensor, epoch: int) -> None:
    bad = int(first_bad_step.item())
    if bad >= 0:
        raise FloatingPointError(
            f"the loss was not finite at epoch {epoch + 1}, step {bad + 1}; lower the learning rate or check the data"
        )


@contextlib.contextmanager
def _run_folder(config: TrainConfig, is_writer: bool):
    """Lock the run folder for the whole run (rank 0 only); a fresh start keeps old files aside."""
    if config.checkpoint_dir is None or not is_writer:
        yield None if config.checkpoint_dir is None else Path(config.checkpoint_dir)
        return
    folder = Path(config.checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder):
        if not config.resume:
            kept = set_aside(folder)
            if kept is not None:
                print(f"Starting afresh: the earlier run's files were moved to {kept}")
        yield folder


@dataclass
class _Setup:
    """Where and how a run trains: what ``fit`` decides before the first epoch."""

    device: torch.device
    precision: str
    compiled: bool
    channels_last: bool
    step_model: nn.Module  # the model, or its DistributedDataParallel wrapper


def _set_up(model: nn.Module, config: TrainConfig, local_rank: int, world_size: int, log) -> _Setup:
    """Pick the device and precision, seed, move (and compile, and wrap in DDP) the model."""
    device = pick_device(config.device)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    precision = pick_precision(device, config.precision)
    on_cuda = device.type == "cuda"
    if config.deterministic:
        make_deterministic()
    elif on_cuda:
        torch.backends.cudnn.benchmark = True  # autotune convolutions for the fixed batch shape
    seed_everything(config.seed)
    channels_last = config.channels_last and on_cuda
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    if config.deterministic and on_cuda:
        for op in nondeterministic_ops(model):
            log(f"note: {op} has no deterministic CUDA backward; it runs non-deterministically (warn_only)")
    compiled = compile_by_default(config, device)
    if compiled:
        compile_in_place(model)
    step_model = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(
            model, device_ids=[device.index] if on_cuda else None, find_unused_parameters=skips_whole_branches(model)
        )
    return _Setup(device, precision, compiled, channels_last, step_model)


def _new_history(model: nn.Module, data: CifarData, config: TrainConfig, name: str | None, setup: _Setup,
                 world_size: int) -> History:  # fmt: skip
    return History(
        meta={
            "model": name or type(model).__name__,
            "params": count_parameters(model),
            "dataset": data.name,
            "data_source": data.source,
            "train_images": len(data.train_labels),
            "val_images": len(data.val_labels),
            "test_images": len(data.test_labels),
            "device": setup.device.type,
            "hardware": hardware_description(setup.device),
            "world_size": world_size,
            "precision": setup.precision,
            "compiled": setup.compiled,
            "run_id": secrets.token_hex(8),
            **environment_summary(),
        },
        config=config.to_dict(),
    )


def _identity(history: History, data: CifarData) -> dict:
    """What a checkpoint must match to be resumed by this run (``checkpoint.run_identity``)."""
    meta = history.meta
    n_train, n_val, n_test = meta["train_images"], meta["val_images"], meta["test_images"]
    drawn = (n_train + n_val) // data.num_classes
    data_identity = f"{data.name}: {drawn} per class from train ({n_train} train / {n_val} val), {n_test} test"
    return run_identity(meta["model"], meta["params"], data_identity, meta["world_size"], meta["precision"],
                        history.config)  # fmt: skip


def _train_and_validate(setup: _Setup, model: nn.Module, train_batches, val_batches, optimizer, scaler,
                        config: TrainConfig, epoch: int, world_size: int, show_progress: bool) -> dict:  # fmt: skip
    """One epoch of training, summed over the processes, then validation: the epoch's record."""
    start = time.perf_counter()
    sums = train_one_epoch(setup.step_model, model, train_batches, optimizer, scaler, config, setup.precision,
                           epoch, show_progress)  # fmt: skip
    seen = torch.tensor(float(sums["seen"]), device=setup.device)
    totals = torch.stack([sums["loss_sum"].float(), sums["correct"].float(), seen])
    loss_sum, correct, seen = all_reduce_sum(totals, world_size).tolist()
    train_seconds = time.perf_counter() - start
    val_acc = evaluate(model, val_batches, setup.precision)
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "val_acc": val_acc,
        "lr": sums["lr"],
        "seconds": train_seconds,
        "images_per_s": seen / train_seconds,
        "eval_seconds": time.perf_counter() - start - train_seconds,
    }


def _epoch_line(record: dict, epochs: int) -> str:
    return (
        f"epoch {record['epoch']:3d}/{epochs}  loss {record['train_loss']:.3f}  "
        f"train {record['train_acc']:.2%}  val {record['val_acc']:.2%}  lr {record['lr']:.4f}  "
        f"{record['seconds']:.1f} s  {record['images_per_s']:.0f} img/s"
    )


def fit(model: nn.Module, data: CifarData, config: TrainConfig, name: str | None = None, *,
        trace_dir: str | os.PathLike | None = None, deadline: float | None = None) -> History:  # fmt: skip
    """Train ``model`` on ``data`` and return its ``History``.

    On return the model holds the weights of the epoch with the best validation
    accuracy, and ``history.test_acc`` is that model's test accuracy.
    ``deadline`` (a ``time.monotonic()`` value) stops before an epoch that would
    end after it; ``trace_dir`` (debugging) receives each rank's training indices.
    """
    rank, local_rank, world_size = distributed_context()
    if world_size > 1 and config.batch_size % world_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world_size} processes")

    def log(text: str) -> None:
        if rank == 0:
            print(wrap(text))

    setup = _set_up(model, config, local_rank, world_size, log)

    def batches(images, labels, train):
        shard = {"rank": rank, "world_size": world_size} if train else {}
        return DeviceBatches(
            images, labels, config.batch_size // world_size if train else config.eval_batch_size, setup.device,
            data.mean, data.std, train=train, seed=config.seed, channels_last=setup.channels_last, **shard,
        )  # fmt: skip

    train_batches = batches(data.train_images, data.train_labels, True)
    if len(train_batches) == 0:
        raise ValueError(
            f"the training split has {len(data.train_labels)} images, fewer than one batch of "
            f"{config.batch_size} per process: lower the batch size or use more images"
        )
    val_batches = batches(data.val_images, data.val_labels, False)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
        weight_decay=config.weight_decay, fused=setup.precision == "fp16" or None,
    )  # fmt: skip  (fused: the gradient scaler then checks for inf on the device, with no sync per step)
    scaler = torch.amp.GradScaler(setup.device.type, enabled=setup.precision == "fp16")
    history = _new_history(model, data, config, name, setup, world_size)
    run = _identity(history, data)
    best_state, start_epoch = None, 0
    with _run_folder(config, rank == 0) as folder:
        found = find_checkpoint(folder) if folder is not None and config.resume else None
        if found is not None:
            start_epoch, best_state = _resume(found, run, model, optimizer, scaler, history)
            log(f"Resumed from {found.name} after epoch {start_epoch}")
        processes = f" x {world_size} processes" if world_size > 1 else ""
        log(f"Training {history.meta['model']} ({history.meta['params']:,} params) on {history.meta['hardware']}"
            f"{processes}, {setup.precision}{', compiled' if setup.compiled else ''}")  # fmt: skip
        log(f"  recipe: {describe_config(config)}")
        log(f"  data: {data.describe()}")
        run_start = time.perf_counter() - history.seconds
        for epoch in range(start_epoch, config.epochs):
            if deadline is not None and history.epochs and time.monotonic() + _epoch_cost(history) > deadline:
                log(f"Stopping before epoch {epoch + 1}: it would end past the time budget")
                history.meta["stopped_early"] = True
                break
            train_batches.set_epoch(epoch)
            record = _train_and_validate(setup, model, train_batches, val_batches, optimizer, scaler, config,
                                         epoch, world_size, config.progress and rank == 0)  # fmt: skip
            if trace_dir is not None:
                _write_trace(trace_dir, rank, epoch, train_batches)
            history.epochs.append(record)
            if history.best_val_acc is None or record["val_acc"] > history.best_val_acc:
                history.best_val_acc, history.best_epoch = record["val_acc"], epoch + 1
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            history.seconds = time.perf_counter() - run_start
            log(_epoch_line(record, config.epochs))
            if folder is not None:
                _save(folder, rank, world_size, model, optimizer, scaler, epoch, history, best_state, run)
    if best_state is None:
        raise TimeoutError("no epoch fitted in the time budget")
    model.load_state_dict(best_state)
    history.test_acc = evaluate(model, batches(data.test_images, data.test_labels, False), setup.precision)
    log(f"Test accuracy {history.test_acc:.2%} (model from epoch {history.best_epoch}, chosen on validation)")
    return history


def _save(folder: Path, rank: int, world_size: int, model, optimizer, scaler, epoch: int, history: History,
          best_state: dict | None, run: dict) -> None:  # fmt: skip
    """Rank 0 writes the checkpoint after ``epoch``; every rank waits for it."""
    if rank == 0:
        save_checkpoint(folder, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch + 1,
            "history": json.dumps(history.to_dict()),
            "best_state": best_state,
            "rng": rng_state(),
            "run": json.dumps(run),
        })  # fmt: skip
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()  # no rank runs ahead of the checkpoint it may have to resume from


def _epoch_cost(history: History) -> float:
    """Seconds the last epoch took, training and evaluation."""
    last = history.epochs[-1]
    return last["seconds"] + last.get("eval_seconds", 0.0)


def _write_trace(trace_dir, rank: int, epoch: int, batches: DeviceBatches) -> None:
    used = batches.last_order[: len(batches) * batches.batch_size]
    trace = Path(trace_dir) / f"rank{rank}-epoch{epoch + 1}.json"
    trace.parent.mkdir(parents=True, exist_ok=True)
    trace.write_text(json.dumps(used.tolist()))


def _resume(path: Path, run: dict, model, optimizer, scaler, history: History) -> tuple[int, dict]:
    """Load a checkpoint into the model, optimiser and history; refuse one of another run."""
    state = load_checkpoint(path)
    check_same_run(path, json.loads(state["run"]), run)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path} does not fit this model ({str(exc).splitlines()[0][:200]}); use another --out folder "
            "or start afresh with --no-resume"
        ) from exc
    saved = json.loads(state["history"])
    history.meta["run_id"] = saved["meta"]["run_id"]
    history.epochs = saved["epochs"]
    history.best_epoch, history.best_val_acc = saved["best_epoch"], saved["best_val_acc"]
    history.seconds = saved["seconds"]
    set_rng_state(state["rng"])
    return state["epoch"], state["best_state"]


def describe_config(config: TrainConfig) -> str:
    """The recipe in force, in one line."""
    parts = [f"{config.epochs} epochs", f"batch {config.batch_size}", f"{config.schedule} lr {config.lr:g}"]
    if config.warmup_epochs:
        parts.append(f"warm-up {config.warmup_epochs:g} epochs")
    if config.schedule == "step":
        parts.append(f"x{config.lr_decay:g} at {', '.join(f'{m:.0%}' for m in config.milestones)}")
    parts.append(("Nesterov " if config.nesterov else "") + f"momentum {config.momentum:g}")
    parts.append(f"weight decay {config.weight_decay:g}")
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    return ", ".join(parts) + f"; seed {config.seed}"


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from .config import PRECISIONS, PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m resnotes.train",
        description=(
            "Train a registered model on CIFAR-10 or CIFAR-100 under a run profile. The run writes "
            "OUT/<model>-<dataset>-<profile>-seed<seed>/last.pt after every epoch (and keeps the one "
            "before as previous.pt) and history.json at the end; the same command resumes it."
        ),
    )
    parser.add_argument("--model", required=True, metavar="NAME", help=f"a registered model: {', '.join(list_models())}")
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"], help="default: cifar10")
    parser.add_argument("--profile", default=None, choices=list(PROFILES), help=f"one of {', '.join(PROFILES)}; default: $RESNOTES_PROFILE, else fast on a GPU and demo otherwise. Under paper, the model's own published recipe (epochs, batch, schedule) applies")
    parser.add_argument("--epochs", type=at_least(1), default=None, help="override the profile's number of epochs")
    parser.add_argument("--batch-size", type=at_least(1), default=None, help="override the profile's batch size")
    parser.add_argument("--lr", type=positive_number, default=None, help="override the profile's peak learning rate")
    parser.add_argument("--train-per-class", type=at_least(1), default=None, help="override the profile's subset: images per class drawn from train (10%% of them are held out for validation)")
    parser.add_argument("--test-per-class", type=at_least(1), default=None, help="override the profile's subset: images per class drawn from test")
    parser.add_argument("--seed", type=at_least(0, below=2**63, below_label='2**63'), default=0, help="seed for weights, data order and augmentation (default: 0)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto (default): bf16 on GPUs of compute capability >= 8.0, fp16 with a gradient scaler below, fp32 on the CPU")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model (default: on for CUDA under the fast and paper profiles)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic GPU kernels where they exist (slower; operators without one are listed and warn)")
    parser.add_argument("--out", default="runs", help="folder for the run's checkpoints and history.json (default: runs/)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if the run's checkpoint exists (its files are moved to a replaced-<time>/ subfolder, not deleted)")
    parser.add_argument("--ledger", default=None, metavar="DIR", help="also write the run's results record (JSON) into DIR, e.g. results/")
    parser.add_argument("--trace-indices", default=None, metavar="DIR", help=argparse.SUPPRESS)  # tests: each process writes its training indices
    parser.epilog = (
        "Multi-GPU: torchrun --nproc_per_node=K -m resnotes.train ... runs DistributedDataParallel; each process "
        "trains on its own shard of every epoch, --batch-size stays the global batch, and only rank 0 writes "
        "checkpoints, logs and the ledger. Exit status: 0 done, 1 a failure at run time (data, checkpoint, disk), "
        "2 a bad argument, 130 interrupted (run the same command to resume)."
    )
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    from .config import get_profile
    from .datasets import DataFormatError, DataNotFoundError
    from .models import canonical_name, get_spec

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        get_spec(args.model)  # an old name warns here, then the run uses the new one
        args.model = canonical_name(args.model)
        profile = get_profile(args.profile)
        config = make_config(
            args.model, profile, args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            seed=args.seed, precision=args.precision, compile=args.compile, deterministic=args.deterministic,
            resume=not args.no_resume,
        )  # fmt: skip
    except ValueError as err:
        parser.error(str(err))
    run_name = f"{args.model}-{args.dataset}-{profile.name}-seed{args.seed}"
    out = Path(args.out) / run_name
    config.checkpoint_dir = str(out)
    rank, _, world_size = distributed_context()
    try:
        if rank == 0:
            _check_writable(out, "--out")
            if args.ledger:
                _check_writable(Path(args.ledger), "--ledger")
        subset = profile.data_kwargs()
        subset.update({k: v for k, v in (("train_per_class", args.train_per_class), ("test_per_class", args.test_per_class)) if v is not None})
        try:
            data = load_cifar(args.dataset, **subset, seed=args.seed)
        except ValueError as err:
            if isinstance(err, DataFormatError):
                raise
            parser.error(str(err))  # a subset that the data cannot give
        seed_everything(args.seed)  # the initial weights depend on the seed too
        model = create_model(args.model, num_classes=data.num_classes)
        overridden = {k: v for k, v in (("epochs", args.epochs), ("batch size", args.batch_size), ("lr", args.lr)) if v is not None}
        if rank == 0:
            print(f"profile {profile.name!r}" + (f", overridden: {overridden}" if overridden else ""))
        history = fit(model, data, config, name=args.model, trace_dir=args.trace_indices)
        if rank == 0:
            history.to_json(out / "history.json")
            print(history.summary())
            if args.ledger:
                _write_ledger(history, model, args.model, data.num_classes, world_size, args.ledger)
    except KeyboardInterrupt:
        print(f"\nInterrupted. The checkpoint of the last finished epoch is kept in {out}; "
              "run the same command to resume.", file=sys.stderr)  # fmt: skip
        return 130
    except (CheckpointError, RunLockedError, DataNotFoundError, DataFormatError, WriteError, FloatingPointError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc} ({exc.filename or out})")
    finally:
        if world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


def _check_writable(folder: Path, flag: str) -> None:
    """Fail before any work when ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise WriteError(f"{flag} {folder} cannot be written: {exc.strerror or exc}") from None


def _write_ledger(history: History, model: nn.Module, name: str, num_classes: int, world_size: int, folder: str) -> None:
    from .ledger import make_record, write_record
    from .models import count_flops, get_spec

    try:
        record = make_record(history, model_kwargs={**get_spec(name).kwargs, "num_classes": num_classes},
                             flops_per_image=count_flops(model), world_size=world_size)  # fmt: skip
        print(f"results record: {write_record(record, folder)}")
    except ValueError as exc:  # e.g. the ledger already holds this run's record
        print(f"results record not written: {exc}")


if __name__ == "__main__":
    sys.exit(main())
