"""Measurements on models that the chapters plot."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def gradient_norms_per_unit(model: nn.Module, units: list[nn.Module], images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The norm of the loss gradient with respect to each unit's output.

    One forward and backward pass of cross-entropy on ``images`` (float,
    normalised) in train mode, as in the first step of training, with the loss
    averaged over the batch. Entry ``l`` is ||dL/dx_{l+1}||, where x_{l+1} is the
    output of ``units[l]``.
    """
    outputs: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        outputs.append(output)

    handles = [unit.register_forward_hook(keep) for unit in units]
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    return [out.grad.norm().item() for out in outputs]


@contextlib.contextmanager
def lesioned(unit: nn.Module):
    """Delete a residual unit's branch at test time: inside the block, the unit
    computes only its shortcut (``unit.skip``), as in Veit et al. (2016)."""
    if not hasattr(unit, "skip"):
        raise TypeError(f"{type(unit).__name__} has no skip(); only residual units can be lesioned")
    unit.forward = unit.skip
    try:
        yield unit
    finally:
        del unit.forward  # back to the class's forward


@torch.no_grad()
def lesion_study(model: nn.Module, units: list[nn.Module], batches) -> list[float]:
    """Accuracy of ``model`` on ``batches`` with each unit deleted in turn."""
    from .train import evaluate

    accuracies = []
    for unit in units:
        with lesioned(unit):
            accuracies.append(evaluate(model, batches))
    return accuracies


@torch.no_grad()
def unit_output_shapes(model: nn.Module, units: list[nn.Module], input_size=(1, 3, 32, 32)) -> list[tuple[int, ...]]:
    """The output shape (B, C, H, W) of every unit, read with forward hooks on one pass."""
    shapes: list[tuple[int, ...]] = []
    handles = [unit.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape))) for unit in units]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(input_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes
