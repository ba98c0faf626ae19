"""A small registry of models, so that notebooks, tests and the CLI can loop
over every model by name.

Each entry holds the class (or function) that builds the model, its arguments,
the key of its paper's training recipe, and the paper's own figures for it
(``PaperFigures``: parameters and errors), written here once, so that a test
can check our count against the paper's and a chapter can print both side by
side.

Names follow one rule, the paper's table row read left to right:

    family + depth, then the variant, then the hyperparameters,

all lower case and joined by ``_``; a hyperparameter is its letter and value
(``a`` for PyramidNet's alpha, ``k`` for DenseNet's growth rate and WRN's
widening factor). For example ``preact_resnet110``, ``preact_resnet110_se``,
``resnet110_stochastic_depth``, ``densenet40_k12``, ``densenet100_bc_k12``,
``pyramidnet110_a48``, ``pyramidnet272_bottleneck_a200``, ``wrn28_k10``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn


@dataclass(frozen=True)
class PaperFigures:
    """A model's figures as its paper's table prints them.

    ``label`` is the table's row (e.g. "PyramidNet-110 (α=48)"); ``params`` the
    parameter count (e.g. 1.7e6); the errors are top-1 test errors in %, with
    standard augmentation (C10+ and C100+); ``None`` where the paper gives no
    figure. ``source`` says which table.
    """

    label: str
    params: float | None
    cifar10_error: float | None
    cifar100_error: float | None
    source: str


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: what builds it, its arguments, its recipe and the paper's
    figures."""

    name: str
    factory: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""  # its paper's training recipe: a key of config.PAPER_RECIPES
    paper: PaperFigures | None = None

    def build(self, **overrides: Any) -> nn.Module:
        return self.factory(**{**self.kwargs, **overrides})


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    recipe: str,
    paper: PaperFigures | None = None,
    **kwargs: Any,
) -> ModelSpec:
    """Register ``factory(**kwargs)`` under ``name``, trained under ``--profile paper``
    with the recipe ``PAPER_RECIPES[recipe]``."""
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is registered twice")
    spec = ModelSpec(name, factory, kwargs, recipe, paper)
    _REGISTRY[name] = spec
    return spec


def list_models() -> list[str]:
    """Every registered name, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name lists the closest valid ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.4)
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
    """FLOPs of one forward pass (a multiply-add counts as 2), by
    ``torch.utils.flop_counter``."""
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
