"""A small registry of model factories, so that notebooks, tests and the CLI can
loop over every model by name.

Each entry records the paper's parameter count where the paper gives one, so a
test can check our count against it and a chapter can print both side by side.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: a factory, its arguments and the paper's figures."""

    name: str
    factory: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    paper_params: float | None = None  # as printed in the paper, e.g. 1.7e6
    source: str = ""  # where paper_params comes from, e.g. "He et al. 2016b, Table 2"
    recipe: str = ""  # the key of its paper's training recipe in resnotes.config.PAPER_RECIPES

    def build(self, **overrides: Any) -> nn.Module:
        return self.factory(**{**self.kwargs, **overrides})


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    recipe: str,
    paper_params: float | None = None,
    source: str = "",
    **kwargs: Any,
) -> ModelSpec:
    """Register ``factory(**kwargs)`` under ``name``, trained under ``--profile paper``
    with the recipe ``PAPER_RECIPES[recipe]``."""
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is registered twice")
    spec = ModelSpec(name, factory, kwargs, paper_params, source, recipe)
    _REGISTRY[name] = spec
    return spec


def list_models() -> list[str]:
    """Every registered name, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name lists the closest valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} (resnotes.models.list_models() or "
            "python -m resnotes.train --help lists them all)"
        ) from None


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; keyword arguments override its defaults."""
    return get_spec(name).build(**overrides)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """FLOPs of one forward pass (a multiply-add counts as 2), by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_size, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops()
