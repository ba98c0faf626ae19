"""Benchmarks (scripts, not timed tests).

``python -m resnotes.bench loader`` measures, side by side in one run, for the
same model and batch size:

1. our data path: uint8 CIFAR kept on the device, crop, flip and normalise
   applied to whole batches there (``resnotes.data.DeviceBatches``);
2. the standard torchvision pipeline: a ``DataLoader`` over a dataset that turns
   each image into a PIL image and applies ``RandomCrop(32, padding=4)``,
   ``RandomHorizontalFlip``, ``ToTensor`` and ``Normalize``, as
   ``torchvision.datasets.CIFAR10`` does.

For each it reports the loader alone (images/s), and loader plus training step
(images/s), then the share of the step time that our loader costs and the ratio
of the two pipelines' training throughput.

``python -m resnotes.bench gpu --out DIR --archive cifar10-jpeg.tar.gz`` is the
prepared GPU check: for each chapter's paper model it trains two epochs under
the ``fast`` profile on full CIFAR-10 (compiled, in the precision the GPU
gets) and writes, into DIR, a ledger record per model (``records/``, kind
``bench``), ``summary.json`` with the last epoch's speed, the accuracy and the
peak GPU memory, and ``log.txt``. The whole check, data included, ends within
its budget (6 minutes by default): no epoch starts that would end past it, and
one model's failure is logged without ending the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from .cli import at_least, positive_number
from .data import DeviceBatches, load_cifar
from .models import create_model
from .report import Table
from .runtime import autocast, hardware_description, pick_device, pick_precision


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked; the message says what to change."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class PILCifar(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: a PIL image, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        import torchvision.transforms as T

        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), as CIFAR10.data
        self.labels = labels.tolist()
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def _time_loader(batches, steps: int, device: torch.device) -> float:
    """Images per second drawing ``steps`` batches and moving them to ``device``."""
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if i == steps:
            break
        x = x.to(device, non_blocking=True)
        seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - start)


def _time_training(model, batches, steps: int, device: torch.device, precision: str, channels_last: bool) -> float:
    """Images per second for ``steps`` training steps fed by ``batches`` (after 3 warm-up steps)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.train()
    seen, start = 0, None
    iterator = iter(batches)
    for i in range(steps + 3):
        if i == 3:
            _sync(device)
            start = time.perf_counter()
        try:
            x, y = next(iterator)
        except StopIteration:
            iterator = iter(batches)
            x, y = next(iterator)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if i >= 3:
            seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - start)


def loader_benchmark(model_name: str, batch_size: int, steps: int, workers: int, device: str = "auto") -> dict:
    device = pick_device(device)
    on_cuda = device.type == "cuda"
    precision = pick_precision(device)
    per_class = min(5000, -(-batch_size * (steps + 3) // 9))  # enough images for the run (10% go to validation)
    try:
        data = load_cifar("cifar10", train_per_class=per_class)
    except ValueError as err:
        if type(err) is not ValueError:  # a DataFormatError
            raise
        raise BenchError(f"bench loader needs {per_class} training images per class (--batch-size {batch_size} x "
                         f"(--steps {steps} + 3 warm-up steps)), more than the data holds ({err}); "
                         "lower --batch-size or --steps") from None
    torch.manual_seed(0)
    model = create_model(model_name).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    ours = DeviceBatches(data.train_images, data.train_labels, batch_size, device, data.mean, data.std, train=True, channels_last=on_cuda)
    pil = torch.utils.data.DataLoader(
        PILCifar(data.train_images, data.train_labels, data.mean, data.std),
        batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=on_cuda, drop_last=True,
        persistent_workers=workers > 0,
    )  # fmt: skip
    result = {
        "model": model_name,
        "batch_size": batch_size,
        "steps": steps,
        "pil_workers": workers,
        "device": device.type,
        "hardware": hardware_description(device),
        "precision": precision,
        "torch": torch.__version__,
        "data": f"{data.name}, {data.source}",
    }
    result["ours_loader_img_s"] = _time_loader(ours, steps, device)
    result["pil_loader_img_s"] = _time_loader(pil, steps, device)
    result["ours_train_img_s"] = _time_training(model, ours, steps, device, precision, on_cuda)
    result["pil_train_img_s"] = _time_training(model, pil, steps, device, precision, on_cuda)
    # Share of a training step that our loader costs: loader time / (loader + step) time per image.
    result["ours_loader_share"] = result["ours_train_img_s"] / result["ours_loader_img_s"]
    result["train_speedup"] = result["ours_train_img_s"] / result["pil_train_img_s"]
    return result


# One paper model per chapter, in the book's order.
CHAPTER_MODELS = ("preact_resnet110", "pyramidnet110_a48", "densenet100_bc_k12", "attention92", "resnet110_stochastic_depth")


class _Tee:
    """Write what is printed to the terminal and to a log file."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def extract_archive(archive: Path, into: Path) -> Path:
    """Extract the offline CIFAR archive (``cifar10-jpeg.tar.gz``) once; return the folder to search."""
    marker = into / ".extracted"
    if not marker.is_file():
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]  # no links, devices or fifos
            for m in members:
                if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts:
                    raise ValueError(f"{archive} holds a path outside its folder: {m.name}")
            tar.extractall(into, members=members)
        marker.write_text(str(archive))
    return into


def gpu_benchmark(models=CHAPTER_MODELS, epochs: int = 2, profile_name: str = "fast", out: str | Path = "runs/gpu-check",
                  budget_minutes: float = 6.0, allow_cpu: bool = False, data_kwargs: dict | None = None,
                  start: float | None = None) -> list[dict]:  # fmt: skip
    """Train each model for ``epochs`` under ``profile_name``; write a ledger record for each into ``out/records/``.

    The time budget covers everything, data included: before each epoch, an
    epoch that would end past it is not started, and a model that cannot fit
    one epoch is skipped. One model's failure is logged and the next one runs.
    ``out/summary.json`` holds, per model, the last epoch's speed (after the
    first epoch's compilation and autotuning), the accuracy and the peak memory.
    ``start`` (a ``time.monotonic()`` value) is when the budget began: by
    default, now.
    """
    from .ledger import make_record, write_record
    from .models import count_flops, get_spec
    from .profiles import get_profile
    from .train import fit

    device = pick_device()
    if device.type != "cuda" and not allow_cpu:
        raise SystemExit("bench gpu needs a CUDA GPU (pass --allow-cpu to try the command on a CPU with a small profile)")
    start = time.monotonic() if start is None else start
    deadline = start + 60 * budget_minutes
    out = Path(out)
    (out / "records").mkdir(parents=True, exist_ok=True)
    profile = get_profile(profile_name)
    data = load_cifar("cifar10", **(data_kwargs if data_kwargs is not None else profile.data_kwargs()))
    print(f"{profile}, {epochs} epochs per model; {data.describe()}; {hardware_description(device)}, "
          f"torch {torch.__version__}; data ready after {time.monotonic() - start:.0f} s")  # fmt: skip
    records, summary = [], []
    for name in models:
        row = {"model": name}
        summary.append(row)
        if time.monotonic() > deadline:
            row["status"] = "skipped: the time budget was spent"
            print(f"{name}: {row['status']}")
            continue
        try:
            spec = get_spec(name)
            torch.manual_seed(0)
            model = spec.build(num_classes=data.num_classes)
            config = profile.train_config(epochs=epochs, warmup_epochs=0, progress=False)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            history = fit(model, data, config, name=name, deadline=deadline)
            peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            record = make_record(history, model_kwargs={**spec.kwargs, "num_classes": data.num_classes},
                                 flops_per_image=count_flops(model), kind="bench", peak_memory_bytes=peak)  # fmt: skip
            path = write_record(record, out / "records")
        except Exception as exc:  # noqa: BLE001 - one model's failure must not end the check
            row["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            print(f"{name}: {row['status']}")
            traceback.print_exc(file=sys.stdout)
            continue
        records.append(record)
        last = history.epochs[-1]
        row.update(status="done", epochs=len(history.epochs), precision=history.meta["precision"],
                   compiled=history.meta["compiled"], last_epoch_seconds=last["seconds"],
                   last_epoch_images_per_s=last["images_per_s"], first_epoch_seconds=history.epochs[0]["seconds"],
                   test_acc=history.test_acc, peak_memory_bytes=peak, record=path.name)  # fmt: skip
        memory = f"{peak / 2**30:.2f} GiB" if peak is not None else "not measured on CPU"
        print(f"{name}: last epoch {last['seconds']:.1f} s, {last['images_per_s']:,.0f} img/s "
              f"(first epoch {history.epochs[0]['seconds']:.1f} s), test {history.test_acc:.2%} after "
              f"{len(history.epochs)} epochs, peak memory {memory} -> {path}")  # fmt: skip
    total = time.monotonic() - start
    (out / "summary.json").write_text(json.dumps({"hardware": hardware_description(device), "torch": torch.__version__,
                                                  "profile": profile.name, "seconds": total, "models": summary}, indent=2))  # fmt: skip
    print(f"total {total:.0f} s; records in {out / 'records'}, summary in {out / 'summary.json'}")
    return records


def _model_name(text: str) -> str:
    from .models import get_spec

    try:
        get_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _device(text: str) -> str:
    try:
        device = torch.device(text) if text != "auto" else None
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or mps") from None
    if device is not None and device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is available here (use cpu or auto)")
    return text


def build_parser() -> argparse.ArgumentParser:
    from .config import PROFILES

    parser = argparse.ArgumentParser(prog="python -m resnotes.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    loader = sub.add_parser("loader", help="our on-device data path against torchvision's DataLoader with PIL transforms")
    loader.add_argument("--model", default="preact_resnet110", type=_model_name, metavar="NAME", help="a registered model (default: preact_resnet110)")
    loader.add_argument("--batch-size", type=at_least(1), default=128)
    loader.add_argument("--steps", type=at_least(1), default=20, help="training steps timed per pipeline (after 3 warm-up steps)")
    loader.add_argument("--workers", type=at_least(0), default=0, help="DataLoader workers for the PIL pipeline")
    loader.add_argument("--device", default="auto", type=_device, help="auto (default), cpu, cuda or mps")
    loader.add_argument("--json", default=None, help="also write the figures to this JSON file")
    gpu = sub.add_parser("gpu", help="the prepared GPU check: a few epochs of each chapter's paper model, written as ledger records")
    gpu.add_argument("--models", nargs="+", default=list(CHAPTER_MODELS), type=_model_name, metavar="NAME", help=f"default: {' '.join(CHAPTER_MODELS)}")
    gpu.add_argument("--epochs", type=at_least(1), default=2, help="epochs per model (default: 2; the last one gives the speed)")
    gpu.add_argument("--profile", default="fast", choices=list(PROFILES), help="run profile for data and schedule (default: fast, full CIFAR-10)")
    gpu.add_argument("--out", required=True, help="folder for the log, summary.json and the ledger records (records/)")
    gpu.add_argument("--archive", default=None, help="the offline cifar10-jpeg.tar.gz: extracted into OUT/data and used")
    gpu.add_argument("--budget-minutes", type=positive_number, default=6.0, help="the whole check, data included, ends within this (default: 6)")
    gpu.add_argument("--allow-cpu", action="store_true", help="run without a GPU (for testing the command)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from .datasets import DataFormatError, DataNotFoundError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "gpu":
            return _gpu_main(args)
        return _loader_main(args)
    except (BenchError, DataNotFoundError, DataFormatError, OSError, tarfile.TarError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


def _gpu_main(args) -> int:
    start = time.monotonic()  # the budget covers extracting and decoding the data too
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.archive:
        os.environ["RESNOTES_DATA"] = str(extract_archive(Path(args.archive), out / "data"))
    with open(out / "log.txt", "a") as log:
        stdout = sys.stdout
        sys.stdout = _Tee(stdout, log)
        try:
            gpu_benchmark(args.models, args.epochs, args.profile, out, args.budget_minutes, args.allow_cpu, start=start)
        finally:
            sys.stdout = stdout
    return 0


def _loader_main(args) -> int:
    r = loader_benchmark(args.model, args.batch_size, args.steps, args.workers, args.device)
    print(f"{r['model']}, batch {r['batch_size']}, {r['steps']} timed steps, on {r['hardware']}, {r['precision']}, torch {r['torch']}")
    print(f"data: {r['data']}")
    print(
        Table(
            ["pipeline", "loader alone (img/s)", "loader + training step (img/s)"],
            [
                ["ours: uint8 on device, whole-batch augmentation", f"{r['ours_loader_img_s']:,.0f}", f"{r['ours_train_img_s']:,.1f}"],
                [f"torchvision DataLoader + PIL ({r['pil_workers']} workers)", f"{r['pil_loader_img_s']:,.0f}", f"{r['pil_train_img_s']:,.1f}"],
            ],
        )
    )
    print(f"our loader costs {r['ours_loader_share']:.2%} of the training step time")
    print(f"training throughput, ours / PIL pipeline: {r['train_speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
