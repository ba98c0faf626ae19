"""Run profiles: how much data, how many epochs and how big a model a chapter uses.

=========  ==============================================================
``smoke``  what CI runs: seconds per chapter on a tiny subset
``demo``   the CPU default: minutes per chapter on 2 cores, smaller depths
           and a subset, still real learning
``fast``   the GPU default: the paper's model on full CIFAR with a short
           schedule, minutes per chapter
``paper``  the paper's model and full schedule
=========  ==============================================================

``RESNOTES_PROFILE`` picks one; without it, ``fast`` when a GPU is present and
``demo`` otherwise. A chapter chooses its own model size per profile with
``profile.pick(smoke=..., demo=..., fast=..., paper=...)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import torch


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    train_per_class: int | None  # images per class drawn from train (None: all 5,000)
    test_per_class: int | None  # images per class drawn from test (None: all 1,000)
    epochs: int
    batch_size: int
    lr: float
    schedule: str  # "step", "cosine" or "onecycle"
    warmup_epochs: float = 0.0
    weight_decay: float = 1e-4

    def pick(self, **choices: Any) -> Any:
        """The value given for this profile, e.g. ``profile.pick(smoke=8, demo=20, fast=110, paper=110)``."""
        if self.name not in choices:
            raise ValueError(f"no choice given for profile {self.name!r}; got {sorted(choices)}")
        return choices[self.name]

    def train_config(self, **overrides: Any):
        """A ``TrainConfig`` with this profile's schedule; keyword arguments override it."""
        from .train import TrainConfig

        base = {f.name: getattr(self, f.name) for f in fields(self) if f.name in TrainConfig.__dataclass_fields__}
        return TrainConfig(**{**base, "profile": self.name, **overrides})

    def data_kwargs(self) -> dict:
        """Arguments for ``load_cifar`` that give this profile's subset."""
        return {"train_per_class": self.train_per_class, "test_per_class": self.test_per_class}

    def __str__(self) -> str:
        subset = "full CIFAR" if self.train_per_class is None else f"{self.train_per_class} train / {self.test_per_class} test images per class"
        return f"profile {self.name!r}: {subset}, {self.epochs} epochs, {self.schedule} schedule, batch {self.batch_size}"


PROFILES = {
    p.name: p
    for p in [
        Profile("smoke", "CI: seconds per chapter, tiny subset", 20, 10, epochs=2, batch_size=32, lr=0.05, schedule="cosine"),
        Profile("demo", "CPU default: minutes per chapter, smaller depths, a subset", 500, 100, epochs=10, batch_size=64, lr=0.1, schedule="onecycle", warmup_epochs=2),
        Profile("fast", "GPU default: the paper's models, full CIFAR, a short schedule", None, None, epochs=15, batch_size=128, lr=0.1, schedule="onecycle", warmup_epochs=3),
        # He et al. (2015, 2016): batch 128, lr 0.1 divided by 10 at 32k and 48k of
        # 64k iterations (about 164 epochs of 50,000 images), weight decay 1e-4.
        # Differs from paper: we train on 45,000 images (5,000 are held out for
        # validation), and warm up linearly from 0.01 over the first epoch
        # instead of holding 0.01 for 400 iterations.
        Profile("paper", "the paper's full schedule (164 epochs, /10 at 50% and 75%)", None, None, epochs=164, batch_size=128, lr=0.1, schedule="step", warmup_epochs=1),
    ]
}


def default_profile_name() -> str:
    return "fast" if torch.cuda.is_available() else "demo"


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else ``$RESNOTES_PROFILE``, else the default for this machine."""
    name = name or os.environ.get("RESNOTES_PROFILE") or default_profile_name()
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None


# Each family's published CIFAR training recipe, applied on top of the `paper`
# profile by `paper_recipe` (and by `python -m resnotes.train --profile paper`).
# All use SGD with momentum 0.9 and a step schedule.
PAPER_RECIPES: dict[str, dict[str, Any]] = {
    # He et al. 2016: batch 128, /10 at 50% and 75% of 64k iterations (about 164 epochs).
    "preact_resnet": {"epochs": 164, "batch_size": 128, "lr": 0.1, "milestones": (0.5, 0.75)},
    "se_cbam": {"epochs": 164, "batch_size": 128, "lr": 0.1, "milestones": (0.5, 0.75)},
    # Han et al. 2017: 300 epochs, batch 128, lr 0.1 (CIFAR-10) or 0.5 (CIFAR-100), /10 at 150 and 225, Nesterov.
    "pyramidnet": {"epochs": 300, "batch_size": 128, "lr": 0.1, "lr_cifar100": 0.5, "nesterov": True, "milestones": (0.5, 0.75)},
    # Huang et al. 2017: 300 epochs, batch 64, lr 0.1, /10 at 50% and 75%, Nesterov.
    "densenet": {"epochs": 300, "batch_size": 64, "lr": 0.1, "nesterov": True, "milestones": (0.5, 0.75)},
    # Wang et al. 2017: batch 64, lr 0.1, /10 at 64k and 96k of 160k iterations (about 205 epochs), Nesterov.
    "attention": {"epochs": 205, "batch_size": 64, "lr": 0.1, "nesterov": True, "milestones": (0.4, 0.6)},
    # Huang et al. 2016: 500 epochs, batch 128, lr 0.1, /10 at 250 and 375, Nesterov.
    "stochastic_depth": {"epochs": 500, "batch_size": 128, "lr": 0.1, "nesterov": True, "milestones": (0.5, 0.75)},
    # Zagoruyko and Komodakis 2016: 200 epochs, batch 128, lr 0.1 x0.2 at 60, 120, 160, weight decay 5e-4, Nesterov.
    "wide_resnet": {"epochs": 200, "batch_size": 128, "lr": 0.1, "nesterov": True, "weight_decay": 5e-4, "milestones": (0.3, 0.6, 0.8), "lr_decay": 0.2},
}


def paper_recipe(model_name: str, dataset: str = "cifar10") -> dict[str, Any]:
    """The TrainConfig overrides of the paper that ``model_name``'s family comes from."""
    from .models import get_spec

    family = get_spec(model_name).factory.__module__.rsplit(".", 1)[-1]
    recipe = dict(PAPER_RECIPES.get(family, {}))
    lr_cifar100 = recipe.pop("lr_cifar100", None)
    if dataset == "cifar100" and lr_cifar100 is not None:
        recipe["lr"] = lr_cifar100
    return recipe
