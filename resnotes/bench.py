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

``python -m resnotes.bench gpu`` is the prepared GPU check: for each chapter's
paper model it trains a few epochs under the ``fast`` profile on full CIFAR-10
and writes seconds per epoch, images/s, the accuracy reached and the peak GPU
memory into the results ledger (``results/``, records of kind ``bench``). It
stops starting new models once its time budget (8 minutes by default) is
spent, and says which it skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import DeviceBatches, load_cifar
from .models import create_model
from .report import Table
from .runtime import hardware_description, pick_device


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


def _time_training(model, batches, steps: int, device: torch.device, amp: bool, channels_last: bool) -> float:
    """Images per second for ``steps`` training steps fed by ``batches`` (after 3 warm-up steps)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
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
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 3:
            seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - start)


def loader_benchmark(model_name: str, batch_size: int, steps: int, workers: int, device: str = "auto") -> dict:
    device = pick_device(device)
    on_cuda = device.type == "cuda"
    data = load_cifar("cifar10", train_per_class=min(5000, -(-batch_size * (steps + 3) // 9)))  # enough images for the run
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
        "torch": torch.__version__,
        "data": f"{data.name}, {data.source}",
    }
    result["ours_loader_img_s"] = _time_loader(ours, steps, device)
    result["pil_loader_img_s"] = _time_loader(pil, steps, device)
    result["ours_train_img_s"] = _time_training(model, ours, steps, device, on_cuda, on_cuda)
    result["pil_train_img_s"] = _time_training(model, pil, steps, device, on_cuda, on_cuda)
    # Share of a training step that our loader costs: loader time / (loader + step) time per image.
    result["ours_loader_share"] = result["ours_train_img_s"] / result["ours_loader_img_s"]
    result["train_speedup"] = result["ours_train_img_s"] / result["pil_train_img_s"]
    return result


# One paper model per chapter, in the book's order.
CHAPTER_MODELS = ("preact_resnet110", "pyramidnet110_a48", "densenet_bc100_k12", "attention92", "resnet110_stochastic_depth")


def gpu_benchmark(models=CHAPTER_MODELS, epochs: int = 2, profile_name: str = "fast", out: str = "results",
                  budget_minutes: float = 8.0, allow_cpu: bool = False, data_kwargs: dict | None = None) -> list[dict]:  # fmt: skip
    """Train each model for ``epochs`` under ``profile_name`` and write one ledger record each."""
    from .ledger import make_record, write_record
    from .models import count_flops, get_spec
    from .profiles import get_profile
    from .train import fit

    device = pick_device()
    if device.type != "cuda" and not allow_cpu:
        raise SystemExit("bench gpu needs a CUDA GPU (pass --allow-cpu to try the command on a CPU with a small profile)")
    start = time.perf_counter()
    profile = get_profile(profile_name)
    data = load_cifar("cifar10", **(data_kwargs if data_kwargs is not None else profile.data_kwargs()))
    print(f"{profile}, {epochs} epochs per model; {data.describe()}; {hardware_description(device)}, torch {torch.__version__}")
    records, skipped = [], []
    for name in models:
        spent = (time.perf_counter() - start) / 60
        if records and spent * (len(records) + 1) / len(records) > budget_minutes:
            skipped.append(name)  # the next model would probably not finish within the budget
            continue
        spec = get_spec(name)
        torch.manual_seed(0)
        model = spec.build(num_classes=data.num_classes)
        config = profile.train_config(epochs=epochs, warmup_epochs=0, progress=False)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        history = fit(model, data, config, name=name)
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
        record = make_record(history, model_kwargs={**spec.kwargs, "num_classes": data.num_classes},
                             flops_per_image=count_flops(model), kind="bench", peak_memory_bytes=peak)  # fmt: skip
        path = write_record(record, out)
        records.append(record)
        memory = f"{peak / 2**30:.2f} GiB" if peak is not None else "not measured on CPU"
        print(f"{name}: {record['seconds_per_epoch']:.1f} s/epoch, {record['images_per_s']:,.0f} img/s, "
              f"test {record['test_acc']:.2%} after {epochs} epochs, peak memory {memory} -> {path}")  # fmt: skip
    if skipped:
        print(f"skipped to stay within {budget_minutes} minutes: {', '.join(skipped)}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnotes.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    loader = sub.add_parser("loader", help="our on-device data path against torchvision's DataLoader with PIL transforms")
    loader.add_argument("--model", default="preact_resnet110")
    loader.add_argument("--batch-size", type=int, default=128)
    loader.add_argument("--steps", type=int, default=20, help="training steps timed per pipeline (after 3 warm-up steps)")
    loader.add_argument("--workers", type=int, default=0, help="DataLoader workers for the PIL pipeline")
    loader.add_argument("--device", default="auto")
    loader.add_argument("--json", default=None, help="also write the figures to this JSON file")
    gpu = sub.add_parser("gpu", help="the prepared GPU check: a few epochs of each chapter's paper model, written to the ledger")
    gpu.add_argument("--models", nargs="+", default=list(CHAPTER_MODELS), help=f"default: {' '.join(CHAPTER_MODELS)}")
    gpu.add_argument("--epochs", type=int, default=2, help="epochs per model (default: 2)")
    gpu.add_argument("--profile", default="fast", help="run profile for data and schedule (default: fast, full CIFAR-10)")
    gpu.add_argument("--out", default="results", help="ledger folder (default: results/)")
    gpu.add_argument("--budget-minutes", type=float, default=8.0, help="start no model that would end past this (default: 8)")
    gpu.add_argument("--allow-cpu", action="store_true", help="run without a GPU (for testing the command)")
    args = parser.parse_args(argv)

    if args.command == "gpu":
        gpu_benchmark(args.models, args.epochs, args.profile, args.out, args.budget_minutes, args.allow_cpu)
        return 0
    r = loader_benchmark(args.model, args.batch_size, args.steps, args.workers, args.device)
    print(f"{r['model']}, batch {r['batch_size']}, {r['steps']} timed steps, on {r['hardware']}, torch {r['torch']}")
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
