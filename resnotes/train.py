"""The training loop: ``fit(model, data, TrainConfig(...))`` returns a ``History``.

- SGD with momentum (optionally Nesterov) and weight decay; the learning rate is
  set before every step (``learning_rate``): the papers' step schedule, cosine
  or one-cycle, each with an optional warm-up.
- The weights kept at the end are those of the epoch with the best *validation*
  accuracy; the test set is evaluated once, on them.
- How the run uses the hardware is ``resnotes.engine``'s business (device,
  precision, compilation, several GPUs, the time budget); the run folder,
  checkpoints and resuming are ``resnotes.runs``'; the command line,
  ``python -m resnotes.train``, is ``resnotes.cli``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # python -m resnotes.train: a Ctrl-C during the imports below ends quietly
    from resnotes.cli import end_quietly_on_interrupt

    end_quietly_on_interrupt()

import math
import secrets
import time

import torch
import torch.nn.functional as F
from torch import nn

from .batches import DeviceBatches
from .config import TrainConfig, make_config
from .datasets import CifarData
from .engine import (
    Engine,
    NoEpochFinished,
    OutOfTime,
    all_reduce_sum,
    deterministic_kernels,
    share_buffers,
    start,
)
from .evidence import pack_correct
from .history import History
from .models import count_parameters
from .progress import progress
from .runs import RunFolder, run_identity
from .runtime import (
    autocast,
    environment_summary,
    hardware_description,
    model_device,
    pick_precision,
)

__all__ = ["History", "TrainConfig", "evaluate", "fit", "learning_rate", "make_config"]

CHECK_EVERY = 50  # steps between reads of the "loss was not finite" flag


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate at optimiser step ``step`` (0-based)."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        # A linear rise from lr/25 to lr, then cosine annealing to zero.
        warmup = warmup or round(0.3 * total)
        if step < warmup:
            return config.lr * (1 / 25 + (1 - 1 / 25) * step / warmup)
    elif step < warmup:
        return config.lr * (0.1 + 0.9 * step / warmup)
    if config.schedule == "step":
        drops = sum(
            step / steps_per_epoch >= f * config.epochs for f in config.milestones
        )
        return config.lr * config.lr_decay**drops
    done = (step - warmup) / max(1, total - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * done))


@torch.no_grad()
def correct_per_image(
    model: nn.Module, batches, precision: str | None = None
) -> torch.Tensor:
    """Whether ``model`` (in eval mode, on its own device) classifies each image of
    ``batches`` right: booleans on the CPU, in the batches' order.

    The batches may live anywhere: ``DeviceBatches`` are moved to the model's
    device once, other batches one at a time. ``precision`` defaults to the one
    ``fit`` would choose for that device.
    """
    device = model_device(model)
    precision = pick_precision(device) if precision is None else precision
    if isinstance(batches, DeviceBatches):
        batches = batches.to(device)
    model.eval()
    right = []
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        with autocast(device, precision):
            logits = model(images)
        right.append(logits.argmax(1) == labels)
    if not right:
        return torch.zeros(0, dtype=torch.bool)
    return torch.cat(right).cpu()


def evaluate(model: nn.Module, batches, precision: str | None = None) -> float:
    """Top-1 accuracy of ``model`` over ``batches`` (``correct_per_image``)."""
    right = correct_per_image(model, batches, precision)
    return right.sum().item() / max(1, len(right))


def train_one_epoch(
    engine: Engine,
    batches: DeviceBatches,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    epoch: int,
) -> dict[str, float]:
    """One pass over ``batches``; the epoch's record, before validation.

    Nothing here waits for the GPU, except after the first step and every
    ``CHECK_EVERY`` steps, where the loss is checked for NaN (``engine.check``), and
    in fp16, whose gradient scaler reads the gradients' finiteness at every step.
    """
    model, device, steps = engine.train_model, engine.device, len(batches)
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_bad_step = torch.full((), -1, device=device, dtype=torch.long)
    start_time = time.perf_counter()
    shown = config.progress and engine.writes
    bar = progress(batches, total=steps, desc=f"epoch {epoch + 1}", disable=not shown)
    for step, (images, labels) in enumerate(bar):
        lr = learning_rate(config, epoch * steps + step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device, engine.precision):
            logits = model(images)
            loss = F.cross_entropy(
                logits, labels, label_smoothing=config.label_smoothing
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss = loss.detach()
        not_finite = (first_bad_step < 0) & ~torch.isfinite(loss)
        first_bad_step = torch.where(not_finite, step, first_bad_step)
        loss_sum += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        if step == 0 or (step + 1) % CHECK_EVERY == 0 or step + 1 == steps:
            engine.check(first_bad_step, epoch, step, start_time, batches.batch_size)
    # Every process runs the same number of whole batches: the count needs no copy
    # to the device. The .tolist() is the epoch's one read of the device.
    seen = steps * batches.batch_size * engine.world_size
    totals = torch.stack([loss_sum.float(), correct.float()])
    loss_sum, correct = all_reduce_sum(totals, engine.world_size).tolist()
    seconds = time.perf_counter() - start_time
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "lr": lr,
        "seconds": seconds,
        "images_per_s": seen / seconds,
    }


def fit(
    model: nn.Module,
    data: CifarData,
    config: TrainConfig,
    name: str | None = None,
    *,
    deadline: float | None = None,
) -> History:
    """Train ``model`` on ``data`` and return its ``History``.

    On return, ``model`` is the reader's own module, never a compiled wrapper,
    with the weights of the epoch that had the best validation accuracy;
    ``history.test_acc`` is their test accuracy. ``deadline`` (a
    ``time.monotonic()`` value) ends the run early enough to evaluate it in time.
    """
    eval_images = len(data.val_labels) + len(data.test_labels)
    engine = start(model, config, deadline, eval_images)
    train_batches = engine.batches(
        data.train_images, data.train_labels, data, config, True
    )
    val_batches = engine.batches(data.val_images, data.val_labels, data, config, False)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    scaler = engine.grad_scaler()
    history = _new_history(model, data, config, name, engine)
    folder = RunFolder(
        config, run_identity(history, data), engine.rank, engine.world_size
    )
    with deterministic_kernels(config.deterministic), folder:
        done, best_state = folder.resume(model, optimizer, scaler, history)
        engine.log_start(history.meta, config, data)
        run_start = time.perf_counter() - history.seconds
        for epoch in range(done, config.epochs):
            if not engine.room_for_epoch(history):
                _stop_early(
                    engine, history, f"epoch {epoch + 1} would end past the budget"
                )
                break
            train_batches.set_epoch(epoch)
            try:
                record = train_one_epoch(
                    engine, train_batches, optimizer, scaler, config, epoch
                )
            except OutOfTime as stop:
                _stop_early(engine, history, str(stop))
                break
            share_buffers(model, engine.world_size)
            eval_start = time.perf_counter()
            record["val_acc"] = evaluate(model, val_batches, engine.precision)
            record["eval_seconds"] = time.perf_counter() - eval_start
            if history.add(record):
                best_state = cpu_copy(model.state_dict())
            history.seconds = time.perf_counter() - run_start
            engine.log(history.epoch_line(config.epochs))
            folder.save(model, optimizer, scaler, history, best_state)
    if best_state is None:
        rate = engine.budget.train_rate if engine.budget is not None else None
        pace = (
            f" (it trained {rate:,.0f} images/s after its first step)" if rate else ""
        )
        raise NoEpochFinished(
            f"no epoch finished within the time budget{pace}", images_per_s=rate
        )
    model.load_state_dict(best_state)
    test_batches = engine.batches(
        data.test_images, data.test_labels, data, config, False
    )
    right = correct_per_image(model, test_batches, engine.precision)
    history.test_acc = right.sum().item() / len(right)
    history.test_correct = pack_correct(right.numpy())
    engine.log(
        f"Test accuracy {history.test_acc:.2%} (model from epoch {history.best_epoch}, "
        "chosen on validation)"
    )
    return history


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state dict in CPU memory, which later steps cannot change."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _new_history(
    model, data: CifarData, config: TrainConfig, name, engine: Engine
) -> History:
    meta = {
        "model": name or type(model).__name__,
        "params": count_parameters(model),
        "dataset": data.name,
        "num_classes": data.num_classes,
        "data_source": data.source,
        "train_images": len(data.train_labels),
        "val_images": len(data.val_labels),
        "test_images": len(data.test_labels),
        "test_set": data.test_fingerprint(),
        "device": engine.device.type,
        "hardware": hardware_description(engine.device),
        "world_size": engine.world_size,
        "precision": engine.precision,
        "compiled": engine.compiled,
        "run_id": secrets.token_hex(8),
        **environment_summary(),
    }
    return History(meta=meta, config=config.to_dict())


def _stop_early(engine: Engine, history: History, why: str) -> None:
    engine.log(f"Stopping early: {why}")
    history.meta["stopped_early"] = True


if __name__ == "__main__":  # python -m resnotes.train
    import sys

    from .cli import main

    sys.exit(main())
