"""``python -m resnotes.bench loader``: our data path against torchvision's.

For the same model and batch size, side by side in one run:

1. our data path: uint8 CIFAR kept on the device, crop, flip and normalise
   applied to whole batches there (``resnotes.batches.DeviceBatches``);
2. the standard torchvision pipeline: a ``DataLoader`` over a dataset that turns
   each image into a PIL image and applies ``RandomCrop(32, padding=4)``,
   ``RandomHorizontalFlip``, ``ToTensor`` and ``Normalize``, as
   ``torchvision.datasets.CIFAR10`` does.

For each it reports the loader alone (images/s) and loader plus training step
(images/s), then the share of the step time that our loader costs and the ratio
of the two pipelines' training throughput.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..batches import DeviceBatches
from ..datasets import load_cifar
from ..models import create_model
from ..report import Table
from ..runtime import autocast, hardware_description, pick_device, pick_precision


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked; the message says what to change."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class PILCifar(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: a PIL image, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        try:
            import torchvision.transforms as T
        except Exception as exc:  # noqa: BLE001 (a build that does not match torch)
            raise BenchError(
                "the loader benchmark compares with torchvision's pipeline, but "
                f"torchvision cannot be imported ({type(exc).__name__}: "
                f"{str(exc)[:160]}); install a torchvision that matches your torch"
            ) from None

        self.images = images.permute(
            0, 2, 3, 1
        ).numpy()  # (N, H, W, C), as CIFAR10.data
        self.labels = labels.tolist()
        self.transform = T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(mean, std),
            ]
        )

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


def _time_training(
    model,
    batches,
    steps: int,
    device: torch.device,
    precision: str,
    channels_last: bool,
) -> float:
    """Images per second for ``steps`` training steps fed by ``batches`` (after 3
    warm-up steps)."""
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


def loader_benchmark(
    model_name: str, batch_size: int, steps: int, workers: int, device: str = "auto"
) -> dict:
    device = pick_device(device)
    on_cuda = device.type == "cuda"
    precision = pick_precision(device)
    per_class = min(
        5000, -(-batch_size * (steps + 3) // 9)
    )  # enough images for the run (10% go to validation)
    try:
        data = load_cifar("cifar10", train_per_class=per_class)
    except ValueError as err:
        if type(err) is not ValueError:  # a DataFormatError
            raise
        raise BenchError(
            f"bench loader needs {per_class} training images per class (--batch-size "
            f"{batch_size} x "
            f"(--steps {steps} + 3 warm-up steps)), more than the data holds ({err}); "
            "lower --batch-size or --steps"
        ) from None
    torch.manual_seed(0)
    model = create_model(model_name).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    ours = DeviceBatches(
        data.train_images,
        data.train_labels,
        batch_size,
        device,
        data.mean,
        data.std,
        train=True,
        channels_last=on_cuda,
    )
    pil = torch.utils.data.DataLoader(
        PILCifar(data.train_images, data.train_labels, data.mean, data.std),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=on_cuda,
        drop_last=True,
        persistent_workers=workers > 0,
    )
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
    result["ours_train_img_s"] = _time_training(
        model, ours, steps, device, precision, on_cuda
    )
    result["pil_train_img_s"] = _time_training(
        model, pil, steps, device, precision, on_cuda
    )
    # Share of a training step that our loader costs: loader time / (loader + step) time
    # per image.
    result["ours_loader_share"] = (
        result["ours_train_img_s"] / result["ours_loader_img_s"]
    )
    result["train_speedup"] = result["ours_train_img_s"] / result["pil_train_img_s"]
    return result


def report(r: dict, json_path: str | None) -> None:
    """Print the loader benchmark's table (and write its figures to ``json_path``)."""
    print(
        f"{r['model']}, batch {r['batch_size']}, {r['steps']} timed steps, on "
        f"{r['hardware']}, {r['precision']}, torch {r['torch']}"
    )
    print(f"data: {r['data']}")
    pil = f"torchvision DataLoader + PIL ({r['pil_workers']} workers)"
    rows = [
        [
            "ours: uint8 on device, whole-batch augmentation",
            f"{r['ours_loader_img_s']:,.0f}",
            f"{r['ours_train_img_s']:,.1f}",
        ],
        [pil, f"{r['pil_loader_img_s']:,.0f}", f"{r['pil_train_img_s']:,.1f}"],
    ]
    headers = ["pipeline", "loader alone (img/s)", "loader + training step (img/s)"]
    print(Table(headers, rows))
    print(f"our loader costs {r['ours_loader_share']:.2%} of the training step time")
    print(f"training throughput, ours / PIL pipeline: {r['train_speedup']:.2f}x")
    if json_path:
        Path(json_path).write_text(json.dumps(r, indent=2))
