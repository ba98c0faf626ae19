"""Measurements on models that the chapters plot."""

from __future__ import annotations

import contextlib
import weakref
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .runtime import autocast, model_device, pick_precision


@contextlib.contextmanager
def left_as_found(model: nn.Module):
    """Run a measurement in train mode and leave the model as it was: its mode, its
    buffers (BatchNorm's running statistics) and no gradients."""
    was_training = model.training
    buffers = [b.detach().clone() for b in model.buffers()]
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        yield model
    finally:
        with torch.no_grad():
            for buffer, saved in zip(model.buffers(), buffers):
                buffer.copy_(saved)
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def gradient_norms_per_unit(
    model: nn.Module, units: list[nn.Module], images: torch.Tensor, labels: torch.Tensor
) -> list[float]:
    """The norm of the loss gradient with respect to each unit's output.

    One forward and backward pass of cross-entropy on ``images`` (float,
    normalised) in train mode, as in the first step of training, with the loss
    averaged over the batch, on the model's device. Entry ``l`` is ||dL/dx_{l+1}||,
    where x_{l+1} is the output of ``units[l]``. The model is left as it was.
    """
    device = model_device(model)
    images, labels = images.to(device), labels.to(device)
    outputs: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        outputs.append(output)

    handles = [unit.register_forward_hook(keep) for unit in units]
    try:
        with left_as_found(model):
            F.cross_entropy(model(images), labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack([out.grad.norm() for out in outputs]).tolist()


@contextlib.contextmanager
def lesioned(unit: nn.Module):
    """Delete a residual unit's branch at test time: inside the block, the unit
    computes only its shortcut (``unit.skip``), as in Veit et al. (2016)."""
    if not hasattr(unit, "skip"):
        raise TypeError(
            f"{type(unit).__name__} has no skip(); only residual units can be lesioned"
        )
    unit.forward = unit.skip
    try:
        yield unit
    finally:
        del unit.forward  # back to the class's forward


@torch.no_grad()
def lesion_study(model: nn.Module, units: list[nn.Module], batches) -> list[float]:
    """Accuracy of ``model`` on ``batches`` with each unit deleted in turn, on the
    model's device (``DeviceBatches`` are moved there once, not once per unit)."""
    from .batches import DeviceBatches
    from .train import evaluate

    if isinstance(batches, DeviceBatches):
        batches = batches.to(model_device(model))
    accuracies = []
    for unit in units:
        with lesioned(unit):
            accuracies.append(evaluate(model, batches))
    return accuracies


@torch.no_grad()
def unit_output_shapes(
    model: nn.Module, units: list[nn.Module], input_size=(1, 3, 32, 32)
) -> list[tuple[int, ...]]:
    """The output shape (B, C, H, W) of every unit, read with forward hooks on one
    pass."""
    device = model_device(model)
    shapes: list[tuple[int, ...]] = []
    handles = [
        unit.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
        for unit in units
    ]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(input_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


class TensorMemoryTracker(TorchDispatchMode):
    """Counts the bytes of every tensor storage created inside the ``with`` block,
    until it is freed, and keeps the peak.

    It sees every operator call, forward and backward, so it works on any
    device, including the CPU, which has no allocator statistics of its own.
    Storages that existed before the block (weights, the input batch) are not
    counted: ``peak`` is what the work inside the block added at its worst.
    """

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key in self.live or storage.nbytes() == 0:
                continue  # a view of a storage already counted
            self.live[key] = storage.nbytes()
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)
        return out


def peak_memory(step: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak bytes that ``step()`` allocates on ``device`` beyond what was already there.

    On a CUDA device this reads the allocator (``torch.cuda.max_memory_allocated``);
    elsewhere it counts tensor storages with :class:`TensorMemoryTracker`.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with TensorMemoryTracker() as tracker:
        step()
    return tracker.peak


def training_step_memory(
    model: nn.Module,
    batch_size: int,
    num_classes: int = 10,
    precision: str | None = None,
) -> int:
    """Peak memory of one forward and backward pass of cross-entropy on a random batch
    of 32x32 images, on the model's device, in the precision training would use there
    (``precision``, by default ``fit``'s choice: fp16 or bf16 on a GPU). On a GPU a
    first step runs before the measured one, so that cuDNN's autotuning workspace is
    not counted. The model is left as it was."""
    device = model_device(model)
    precision = pick_precision(device) if precision is None else precision
    images = torch.randn(batch_size, 3, 32, 32, device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)

    def step():
        with autocast(device, precision):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()

    with left_as_found(model):
        if device.type == "cuda":
            step()  # warm-up: autotuning allocates its workspace once
            model.zero_grad(set_to_none=True)
        return peak_memory(step, device)


@torch.no_grad()
def dense_feature_reuse(
    block: nn.Module, next_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """The DenseNet paper's Figure 5 for one dense block.

    Entry ``[s, l - 1]`` is the average absolute weight that the first
    convolution of layer ``l`` gives to the input channels that came from
    source ``s``: ``s = 0`` is the block's input, ``s >= 1`` the k channels
    made by layer ``s``. ``next_weight`` adds a last column for whatever reads
    the whole block output: the transition's convolution, or the classifier's
    weight after the last block. Entries with ``s >= l`` do not exist (a layer
    cannot see later layers) and are NaN.
    """
    layers = list(block.layers)
    k = layers[0].growth_rate
    k0 = layers[0].in_channels
    targets = [layer.conv1.weight for layer in layers] + (
        [next_weight] if next_weight is not None else []
    )
    reuse = torch.full((len(layers) + 1, len(targets)), float("nan"))
    for l, weight in enumerate(targets, start=1):
        per_channel = (
            weight.abs().transpose(0, 1).flatten(1).mean(1)
        )  # mean |w| per input channel
        reuse[0, l - 1] = per_channel[:k0].mean()
        for s in range(1, l):
            reuse[s, l - 1] = per_channel[k0 + (s - 1) * k : k0 + s * k].mean()
    return reuse
