"""How ``fit`` runs a model on the hardware it finds: the device and numeric
precision, deterministic kernels, ``torch.compile``, DistributedDataParallel and
the time budget.

None of this changes the reader's model beyond moving it to the device (and, on
CUDA, its weights to channels_last). Compilation and DDP *wrap* it: ``fit``
trains through the wrapper and hands back the model itself, so a lesion study, a
forward hook or ``.cpu()`` afterwards runs plain eager code, and the checkpoint's
keys are the model's own.

A model may declare ``eager_only``: a sentence saying why it must not be
compiled (faithful stochastic depth decides in Python, per mini-batch, whether a
block runs; the memory-efficient DenseNet's checkpointing does not compile), and
``skips_whole_branches``: some parameters get no gradient in some steps, which
DDP must be told.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from .batches import DeviceBatches
from .config import TrainConfig
from .report import wrap
from .runtime import (
    check_memory,
    nondeterministic_ops,
    pick_device,
    pick_precision,
    seed_everything,
)

# Passed to torch.compile. The tests set a backend that runs on a CPU in seconds.
COMPILE_OPTIONS: dict[str, Any] = {}
# Profiles under which fit compiles by default (on CUDA with Triton). Compiling is
# CPU work: on 2 CPU cores (Colab's), Inductor took 75 s to compile ResNet-110's
# training step, for steps 18% faster (measured with its CPU backend; ResNet-20:
# 41 s, 6% faster). That pays in the paper profile's hours of training, and
# hardly in the fast profile's minutes.
COMPILE_BY_DEFAULT = ("paper",)


def distributed_context() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) alone.

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


class OtherProcessFailed(RuntimeError):
    """Another process of a DDP run stopped; it has said why."""


def largest(values: list[int], world_size: int) -> list[int]:
    """Each value's largest across every process (unchanged in a plain run).

    Whatever stops one process must stop all of them, and together: a process that
    stops alone leaves the others waiting for ever at their next collective call.
    """
    if world_size <= 1:
        return values
    import torch.distributed as dist

    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else "cpu"
    tensor = torch.tensor(values, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def everyone(ok: bool, world_size: int) -> bool:
    """Whether ``ok`` holds in every process; every process gets the same answer."""
    return largest([int(not ok)], world_size) == [0]


def share_buffers(model: nn.Module, world_size: int) -> None:
    """Give every process rank 0's buffers (BatchNorm's running statistics).

    Each process updates its own during an epoch's last forward passes; sharing
    rank 0's before validation means every process validates the same model, and
    so picks the same best epoch.
    """
    if world_size > 1:
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


@contextlib.contextmanager
def deterministic_kernels(on: bool = True) -> Iterator[None]:
    """Deterministic kernels wherever they exist, for the ``with`` block only.

    ``warn_only=True``: an operator with no deterministic CUDA backward (the
    Attention networks' bilinear upsampling) warns instead of stopping the run.
    Every global setting it changes is put back afterwards.
    """
    if not on:
        yield
        return
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        enabled, warn_only, benchmark, cudnn_deterministic, cublas = saved
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        torch.backends.cudnn.deterministic = cudnn_deterministic
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas


def compile_plan(model: nn.Module, config: TrainConfig, device: torch.device):
    """(compile or not, why): ``config.compile`` when given, else on for CUDA with
    Triton under the profiles of ``COMPILE_BY_DEFAULT``; never for ``eager_only``."""
    why_eager = getattr(model, "eager_only", None)
    if why_eager and config.compile is not False:
        return False, f"not compiled: {why_eager}"
    if config.compile is not None:
        return config.compile, "compiled (asked for)" if config.compile else ""
    if device.type != "cuda" or config.profile not in COMPILE_BY_DEFAULT:
        return False, ""
    from torch.utils._triton import has_triton

    if not has_triton():
        return False, "not compiled: Triton is not installed"
    return True, f"compiled (the default under the {config.profile} profile)"


@dataclass
class Engine:
    """Where and how ``fit`` trains, decided before the first epoch."""

    device: torch.device
    precision: str
    channels_last: bool
    compiled: bool
    compile_note: str
    rank: int
    world_size: int
    train_model: nn.Module  # the model, or its compiled and/or DDP wrapper
    budget: TimeBudget | None = None
    compile_seconds: float | None = None

    @property
    def writes(self) -> bool:
        """Whether this process prints and writes files (rank 0 of a DDP run)."""
        return self.rank == 0

    def log(self, text: str) -> None:
        if self.writes:
            print(wrap(text))

    def batches(self, images, labels, data, config: TrainConfig, train: bool):
        """The run's batches of one split, on the device (training: this rank's
        shard, whole batches only)."""
        shard = {"rank": self.rank, "world_size": self.world_size} if train else {}
        size = config.batch_size // self.world_size if train else config.eval_batch_size
        if train and len(labels) < size * self.world_size:
            raise ValueError(
                f"the training split has {len(labels)} images, fewer than one batch "
                f"of {config.batch_size}: lower the batch size or use more images"
            )
        return DeviceBatches(
            images,
            labels,
            size,
            self.device,
            data.mean,
            data.std,
            train=train,
            seed=config.seed,
            channels_last=self.channels_last,
            **shard,
        )

    def check(
        self, first_bad_step, epoch: int, step: int, epoch_start: float, batch: int
    ):
        """After the first step and every few: stop on a loss that was not finite, or on
        a spent time budget; after a compiled run's first step, say what compiling
        took. Under DDP every process takes the same decision."""
        bad = int(first_bad_step.item())  # this waits for the GPU
        elapsed = time.perf_counter() - epoch_start
        images = (step + 1) * batch
        late = self.budget is not None and self.budget.ran_out(images, elapsed, step)
        bad, late = largest([bad, int(late)], self.world_size)
        if bad >= 0:
            raise FloatingPointError(
                f"the loss was not finite at epoch {epoch + 1}, step {bad + 1}; "
                "lower the learning rate or check the data"
            )
        if self.compiled and self.compile_seconds is None:
            self.compile_seconds = elapsed
            self.log(
                f"  compiling the training step took {elapsed:.0f} s (its first step)"
            )
        if late:
            raise OutOfTime(
                f"the time budget ran out in epoch {epoch + 1}, step {step + 1}"
            )

    def room_for_epoch(self, history) -> bool:
        """Whether one more epoch fits the time budget, in every process's view."""
        room = self.budget is None or self.budget.room_for_epoch(history)
        return everyone(room, self.world_size)

    def log_start(self, meta: dict, config: TrainConfig, data) -> None:
        """What is about to train, where, how, and on what."""
        processes = f" x {self.world_size} processes" if self.world_size > 1 else ""
        compiled = ", compiled" if self.compiled else ""
        self.log(
            f"Training {meta['model']} ({meta['params']:,} params) on "
            f"{meta['hardware']}{processes}, {self.precision}{compiled}"
        )
        if self.compile_note and not self.compiled:
            self.log(f"  {self.compile_note}")
        self.log(f"  recipe: {config.describe()}")
        self.log(f"  data: {data.describe()}")
        if config.checkpoint_dir is not None:
            self.log(
                f"  run folder: {config.checkpoint_dir} (a checkpoint after every "
                "epoch)"
            )

    def grad_scaler(self) -> torch.amp.GradScaler:
        """fp16's gradient scaler (disabled in every other precision)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")


def start(
    model: nn.Module,
    config: TrainConfig,
    deadline: float | None = None,
    eval_images: int = 0,
) -> Engine:
    """Pick the device and precision, seed, move the model, wrap it for training,
    and set the time budget (``deadline``: a ``time.monotonic()`` value or None).

    One global setting changes for the rest of the process: on CUDA, unless the
    run is deterministic, ``cudnn.benchmark`` (convolutions autotuned for the
    fixed batch shape).
    """
    rank, local_rank, world_size = distributed_context()
    if world_size > 1 and config.batch_size % world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must be divisible by the {world_size} "
            f"processes"
        )
    device = pick_device(config.device)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    on_cuda = device.type == "cuda"
    if on_cuda and not config.deterministic:
        torch.backends.cudnn.benchmark = True
    if on_cuda:  # before anything is on the GPU: say if one step cannot fit
        batch = config.batch_size // world_size
        check_memory(model, batch, device, pick_precision(device, config.precision))
    seed_everything(config.seed)
    channels_last = config.channels_last and on_cuda
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model.to(device, memory_format=memory_format)
    compiled, note = compile_plan(model, config, device)
    train_model = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model,
            device_ids=[device.index] if on_cuda else None,
            find_unused_parameters=bool(getattr(model, "skips_whole_branches", False)),
        )
    if compiled:
        train_model = torch.compile(train_model, **COMPILE_OPTIONS)
    engine = Engine(
        device,
        pick_precision(device, config.precision),
        channels_last,
        compiled,
        note,
        rank,
        world_size,
        train_model,
        TimeBudget(deadline, eval_images),
    )
    if config.deterministic and on_cuda:
        for op in nondeterministic_ops(model):
            engine.log(f"note: {op} has no deterministic CUDA backward (warn_only)")
    return engine


class NoEpochFinished(TimeoutError):
    """The time budget ended a run inside its first epoch; ``images_per_s`` is the
    training pace measured after the first step, or None."""

    def __init__(self, message: str, images_per_s: float | None = None):
        super().__init__(message)
        self.images_per_s = images_per_s


class OutOfTime(TimeoutError):
    """The time budget ran out inside an epoch."""


class TimeBudget:
    """Keeps a run within ``deadline`` (a ``time.monotonic()`` value), test included.

    Inside an epoch, ``ran_out`` says when the time left would no longer cover
    evaluating the validation and test images; before an epoch, ``room_for_epoch``
    says whether one more epoch, at the pace of the last one, fits.
    """

    def __init__(self, deadline: float | None, eval_images: int):
        self.deadline, self.eval_images = deadline, eval_images
        self.started = time.monotonic()
        self.eval_rate: float | None = None  # images evaluated per second
        self.train_rate: float | None = None  # steady training images per second
        self._first: tuple[int, float] | None = None  # (images, seconds) at step 0

    def evaluation_reserve(self, train_rate: float | None) -> float:
        """Seconds that evaluating the validation and test images should take: at the
        measured evaluation rate, else at three times the steady training rate (a
        forward pass without the backward), else nothing yet."""
        rate = self.eval_rate or (3 * train_rate if train_rate else None)
        return self.eval_images / rate if rate else 0.0

    def ran_out(self, images_seen: int, elapsed: float, step: int = 1) -> bool:
        """Whether the time left would not cover the evaluation. The pace is judged
        on the steps after an epoch's first, which pays for CUDA's start, cuDNN's
        autotuning and compilation: at the first step only a deadline already
        passed stops the run."""
        if self.deadline is None:
            return False
        if step == 0 or self._first is None:
            self._first = (images_seen, elapsed)
            return time.monotonic() > self.deadline
        images = images_seen - self._first[0]
        seconds = elapsed - self._first[1]
        if images > 0 and seconds > 0:
            self.train_rate = images / seconds
        return (
            time.monotonic() + self.evaluation_reserve(self.train_rate) > self.deadline
        )

    def room_for_epoch(self, history) -> bool:
        if self.deadline is None or not history.epochs:
            return True
        last = history.epochs[-1]
        self.eval_rate = history.meta["val_images"] / max(last["eval_seconds"], 1e-9)
        cost = last["seconds"] + last["eval_seconds"]
        return time.monotonic() + cost + self.evaluation_reserve(None) <= self.deadline
