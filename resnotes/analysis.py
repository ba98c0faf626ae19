"""Measurements on models that the chapters plot."""

from __future__ import annotations

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
