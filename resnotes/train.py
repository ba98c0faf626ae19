"""The training engine: ``fit(model, data, TrainConfig(...))`` returns a ``History``.

- SGD with momentum (optionally Nesterov) and weight decay.
- Learning-rate schedules, set every step: the papers' step schedule (/10 at
  50% and 75% of training), cosine, and one-cycle; each with optional linear
  warm-up.
- Data stays on the device as uint8 (``resnotes.data.DeviceBatches``); bf16
  autocast and channels_last on CUDA; ``torch.compile`` as an option.
- A checkpoint after every epoch, written atomically, loaded with
  ``weights_only=True``; ``resume=True`` continues from it.
- The model kept at the end is the one with the best *validation* accuracy; the
  test set is evaluated once, on that model.
- Started by ``torchrun --nproc_per_node=K``, ``fit`` trains with
  DistributedDataParallel: each rank trains on its own shard of every epoch,
  ``batch_size`` stays the global batch (each rank takes ``batch_size / K``),
  and only rank 0 prints and writes checkpoints. One process is the plain run.

Run ``python -m resnotes.train --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pickle
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import CifarData, DeviceBatches, load_cifar
from .models import count_parameters, create_model, list_models
from .progress import progress
from .runtime import environment_summary, hardware_description, pick_device, rng_state, seed_everything, set_rng_state

SCHEDULES = ("step", "cosine", "onecycle")
CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, unsafe, or from another run."""


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"  # "step" (/10 at each milestone), "cosine" or "onecycle"
    milestones: tuple[float, ...] = (0.5, 0.75)  # "step": fractions of training where the lr drops
    lr_decay: float = 0.1  # "step": the factor at each milestone (WRN uses 0.2)
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 (onecycle: from lr/25)
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    amp: bool = True  # bf16 autocast, on CUDA only
    channels_last: bool = True  # on CUDA only
    compile: bool = False  # torch.compile the model
    deterministic: bool = False  # deterministic GPU kernels (slower); CPU runs are deterministic anyway
    eval_batch_size: int = 500
    checkpoint_dir: str | None = None  # write last.pt here after every epoch (rank 0 only)
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    profile: str = "custom"  # recorded in the history only
    progress: bool = True  # tqdm bars (the per-epoch lines print regardless)
    trace_dir: str | None = None  # debugging: each rank writes the training indices of every epoch here

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {self.eval_batch_size!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        self.milestones = tuple(self.milestones)
        if any(not 0 < f < 1 for f in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing fractions of training in (0, 1), got {self.milestones}")
        if not 0 < self.lr_decay < 1:
            raise ValueError(f"lr_decay must be in (0, 1), got {self.lr_decay}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("weight_decay must be >= 0 and momentum in [0, 1)")


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

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
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
            f"{len(self.epochs)} epochs, seed {self.config['seed']}, {m['hardware']}: "
            f"best val {self.best_val_acc:.2%} (epoch {self.best_epoch}), test {self.test_acc:.2%}, "
            f"{self.seconds:.0f} s"
        )


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, batches: DeviceBatches, amp: bool = True) -> float:
    """Top-1 accuracy of ``model`` over ``batches`` (eval mode)."""
    model.eval()
    correct = total = 0
    for images, labels in batches:
        with _autocast(batches.device, amp):
            logits = model(images)
        correct += (logits.argmax(1) == labels).sum().item()
        total += len(labels)
    return correct / max(1, total)


def _atomic_save(obj: Any, path: Path) -> None:
    """Write ``path`` so that a crash at any point leaves a readable checkpoint.

    The new checkpoint goes to a temporary file first; only once it is complete
    does the current one become ``previous.pt`` and the new one ``last.pt``
    (each an atomic rename).
    """
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    if path.exists():
        os.replace(path, path.with_name(PREVIOUS_NAME))
    os.replace(tmp, path)


def make_deterministic() -> None:
    """Ask PyTorch for deterministic kernels (see the README's note on determinism)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


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


def fit(model: nn.Module, data: CifarData, config: TrainConfig, name: str | None = None) -> History:
    """Train ``model`` on ``data`` and return its ``History``.

    On return the model holds the weights of the epoch with the best validation
    accuracy, and ``history.test_acc`` is that model's test accuracy.
    """
    rank, local_rank, world_size = distributed_context()
    if world_size > 1 and config.batch_size % world_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world_size} processes")
    device = pick_device(config.device)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    log = print if rank == 0 else (lambda *args, **kwargs: None)
    if config.deterministic:
        make_deterministic()
    seed_everything(config.seed)
    on_cuda = device.type == "cuda"
    channels_last = config.channels_last and on_cuda
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    step_model = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
    step_model = torch.compile(step_model) if config.compile else step_model

    def batches(images, labels, train):
        shard = {"rank": rank, "world_size": world_size} if train else {}
        return DeviceBatches(
            images, labels, config.batch_size // world_size if train else config.eval_batch_size, device,
            data.mean, data.std, train=train, seed=config.seed, channels_last=channels_last, **shard,
        )  # fmt: skip

    train_batches = batches(data.train_images, data.train_labels, True)
    val_batches = batches(data.val_images, data.val_labels, False)
    steps_per_epoch = len(train_batches)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        nesterov=config.nesterov, weight_decay=config.weight_decay,
    )  # fmt: skip
    history = History(
        meta={
            "model": name or type(model).__name__,
            "params": count_parameters(model),
            "dataset": data.name,
            "data_source": data.source,
            "train_images": len(data.train_labels),
            "val_images": len(data.val_labels),
            "test_images": len(data.test_labels),
            "device": device.type,
            "hardware": hardware_description(device),
            "world_size": world_size,
            **environment_summary(),
        },
        config=json.loads(json.dumps(asdict(config))),  # as it reads back from JSON (tuples become lists)
    )
    best_state = None
    start_epoch = 0
    ckpt_path = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None
    if ckpt_path is not None and config.resume:
        # A crash between the two renames of _atomic_save leaves only previous.pt.
        found = ckpt_path if ckpt_path.is_file() else ckpt_path.with_name(PREVIOUS_NAME)
        if found.is_file():
            start_epoch, best_state = _resume(found, model, optimizer, history, config)
            log(f"Resumed from {found.name} after epoch {start_epoch}")

    processes = f" x {world_size} processes" if world_size > 1 else ""
    log(f"Training {history.meta['model']} ({history.meta['params']:,} params) on {history.meta['hardware']}{processes}")
    log(f"  data: {data.describe()}")
    run_start = time.perf_counter() - history.seconds
    for epoch in range(start_epoch, config.epochs):
        model.train()
        train_batches.set_epoch(epoch)
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = progress(train_batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress or rank != 0)
        for step, (images, labels) in enumerate(bar):
            lr = learning_rate(config, epoch * steps_per_epoch + step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with _autocast(device, config.amp):
                logits = step_model(images)
                loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                    "lower the learning rate or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            correct += (logits.argmax(1) == labels).sum()
            seen += len(labels)
        if config.trace_dir is not None:
            used = train_batches.last_order[: steps_per_epoch * train_batches.batch_size]
            trace = Path(config.trace_dir) / f"rank{rank}-epoch{epoch + 1}.json"
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text(json.dumps(used.tolist()))
        if world_size > 1:  # add up every rank's share of the epoch's statistics
            import torch.distributed as dist

            totals = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)])
            dist.all_reduce(totals)
            loss_sum, correct, seen = totals[0], totals[1], int(totals[2].item())
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds = time.perf_counter() - epoch_start
        val_acc = evaluate(model, val_batches, config.amp)
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_acc": correct.item() / seen,
            "val_acc": val_acc,
            "lr": lr,
            "seconds": train_seconds,
            "images_per_s": seen / train_seconds,
        }
        history.epochs.append(record)
        if history.best_val_acc is None or val_acc > history.best_val_acc:
            history.best_val_acc, history.best_epoch = val_acc, epoch + 1
            best_state = _cpu_state(model)
        history.seconds = time.perf_counter() - run_start
        log(
            f"epoch {epoch + 1:3d}/{config.epochs}  loss {record['train_loss']:.3f}  "
            f"train {record['train_acc']:.2%}  val {val_acc:.2%}  lr {lr:.4f}  "
            f"{train_seconds:.1f} s  {record['images_per_s']:.0f} img/s"
        )
        if ckpt_path is not None and rank == 0:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "history": json.dumps(history.to_dict()),
                    "best_state": best_state,
                    "rng": rng_state(),
                    # The learning rate is a function of the step, and the data
                    # order and augmentation of (seed, epoch): these restore both.
                    "schedule": {"step": (epoch + 1) * steps_per_epoch, "steps_per_epoch": steps_per_epoch},
                    "data_order": {"seed": config.seed, "next_epoch": epoch + 1},
                },
                ckpt_path,
            )

        if world_size > 1 and ckpt_path is not None:
            import torch.distributed as dist

            dist.barrier()  # no rank runs ahead of the checkpoint it may have to resume from

    model.load_state_dict(best_state)
    test_batches = batches(data.test_images, data.test_labels, False)
    history.test_acc = evaluate(model, test_batches, config.amp)
    log(f"Test accuracy {history.test_acc:.2%} (model from epoch {history.best_epoch}, chosen on validation)")
    return history


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, history: History, config: TrainConfig):
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain values, "
            f"which torch.load(weights_only=True) will not unpickle ({exc})"
        ) from exc
    except Exception as exc:
        previous = path.with_name(PREVIOUS_NAME)
        kept = (
            f" The previous checkpoint, {previous}, was kept: rename it to {CHECKPOINT_NAME} to resume from it,"
            if previous.is_file() and previous != path
            else ""
        )
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(exc).__name__}: {exc}); it may be truncated or corrupt."
            f"{kept} or start afresh with resume=False (--no-resume)."
        ) from exc
    saved_seed = ckpt["data_order"]["seed"]
    if saved_seed != config.seed:
        raise CheckpointError(
            f"{path} was written with seed {saved_seed}; resuming with seed {config.seed} would change the "
            "data order. Use the same seed, or start afresh with resume=False (--no-resume)."
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    saved = json.loads(ckpt["history"])
    history.epochs = saved["epochs"]
    history.best_epoch, history.best_val_acc = saved["best_epoch"], saved["best_val_acc"]
    history.seconds = saved["seconds"]
    set_rng_state(ckpt["rng"])
    return ckpt["epoch"], ckpt["best_state"]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .profiles import PROFILES

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
    parser.add_argument("--epochs", type=_at_least(1), default=None, help="override the profile's number of epochs")
    parser.add_argument("--batch-size", type=_at_least(1), default=None, help="override the profile's batch size")
    parser.add_argument("--lr", type=_positive_float, default=None, help="override the profile's peak learning rate")
    parser.add_argument("--train-per-class", type=_at_least(1), default=None, help="override the profile's subset: images per class drawn from train (10%% of them are held out for validation)")
    parser.add_argument("--test-per-class", type=_at_least(1), default=None, help="override the profile's subset: images per class drawn from test")
    parser.add_argument("--seed", type=_at_least(0), default=0, help="seed for weights, data order and augmentation (default: 0)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--deterministic", action="store_true", help="deterministic GPU kernels (slower)")
    parser.add_argument("--out", default="runs", help="folder for the run's checkpoints and history.json (default: runs/)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if the run's checkpoint exists")
    parser.add_argument("--ledger", default=None, metavar="DIR", help="also write the run's results record (JSON) into DIR, e.g. results/")
    parser.add_argument("--trace-indices", default=None, metavar="DIR", help="debugging: each process writes the training indices it used in each epoch into DIR")
    parser.epilog = (
        "Multi-GPU: torchrun --nproc_per_node=K -m resnotes.train ... runs DistributedDataParallel; each process "
        "trains on its own shard of every epoch, --batch-size stays the global batch, and only rank 0 writes "
        "checkpoints, logs and the ledger. Bad arguments, an unknown model (with the closest names) and a "
        "checkpoint from another seed are refused with a message."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from .models import get_spec
    from .profiles import get_profile, paper_recipe

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        get_spec(args.model)
        profile = get_profile(args.profile)
    except ValueError as err:
        parser.error(str(err))
    subset = profile.data_kwargs()
    if args.train_per_class is not None:
        subset["train_per_class"] = args.train_per_class
    if args.test_per_class is not None:
        subset["test_per_class"] = args.test_per_class
    data = load_cifar(args.dataset, **subset, seed=args.seed)
    seed_everything(args.seed)  # the initial weights depend on the seed too
    model = create_model(args.model, num_classes=data.num_classes)
    recipe = paper_recipe(args.model, args.dataset) if profile.name == "paper" else {}
    overrides = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}.items() if v is not None}
    overrides = {**recipe, **overrides}
    out = Path(args.out) / f"{args.model}-{args.dataset}-{profile.name}-seed{args.seed}"
    config = profile.train_config(
        seed=args.seed, compile=args.compile, deterministic=args.deterministic,
        checkpoint_dir=str(out), resume=not args.no_resume, trace_dir=args.trace_indices, **overrides,
    )  # fmt: skip
    rank, _, world_size = distributed_context()
    if rank == 0:
        print(f"{profile}; {data.describe()}")
    history = fit(model, data, config, name=args.model)
    if rank == 0:
        history.to_json(out / "history.json")
        print(history.summary())
        if args.ledger:
            from .ledger import make_record, write_record
            from .models import count_flops

            record = make_record(history, model_kwargs={**get_spec(args.model).kwargs, "num_classes": data.num_classes}, flops_per_image=count_flops(model), world_size=world_size)
            print(f"results record: {write_record(record, args.ledger)}")
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
