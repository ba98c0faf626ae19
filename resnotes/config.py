"""Every knob of a training run in one place: ``TrainConfig``, the run profiles,
the papers' recipes, and ``make_config``, the one way from a model name, a
profile and overrides to a ``TrainConfig``.

=========  ==============================================================
``smoke``  what CI runs: seconds per chapter on a tiny subset
``demo``   the CPU default: minutes per chapter on 2 cores, smaller depths
           and a subset, still real learning
``fast``   the GPU default: the paper's model on full CIFAR with a short
           schedule, minutes per chapter
``paper``  the paper's model and its own published recipe
=========  ==============================================================

``RESNOTES_PROFILE`` picks one; without it, ``fast`` when a GPU is present and
``demo`` otherwise. A chapter chooses its own model size per profile with
``profile.pick(smoke=..., demo=..., fast=..., paper=...)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

SCHEDULES = ("step", "cosine", "onecycle")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"  # "step" (/lr_decay at each milestone), "cosine" or "onecycle"
    milestones: tuple[float, ...] = (0.5, 0.75)  # "step": fractions of training where the lr drops
    lr_decay: float = 0.1  # "step": the factor at each milestone (WRN uses 0.2)
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 (onecycle: from lr/25)
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    precision: str = "auto"  # "auto": bf16 on CUDA >= 8.0, fp16 (with a gradient scaler) below, fp32 elsewhere
    channels_last: bool = True  # on CUDA only
    compile: bool | None = None  # torch.compile; None: on for CUDA under the fast and paper profiles
    deterministic: bool = False  # deterministic GPU kernels where they exist (slower)
    eval_batch_size: int = 500
    checkpoint_dir: str | None = None  # write last.pt here after every epoch (rank 0 only)
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    profile: str = "custom"  # recorded in the history only
    progress: bool = True  # tqdm bars (the per-epoch lines print regardless)

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        check(_is_int(self.epochs) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs!r}")
        check(_is_int(self.batch_size) and self.batch_size >= 1, f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        check(_is_int(self.eval_batch_size) and self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size!r}")
        check(self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; valid schedules: {', '.join(SCHEDULES)}")
        check(self.precision in PRECISIONS, f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        check(_finite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(
            _finite(self.warmup_epochs) and 0 <= self.warmup_epochs < self.epochs,
            f"warmup_epochs must be in [0, epochs) = [0, {self.epochs}), got {self.warmup_epochs}",
        )
        check(_finite(self.label_smoothing) and 0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        self.milestones = tuple(self.milestones)
        check(
            all(0 < f < 1 for f in self.milestones) and list(self.milestones) == sorted(self.milestones),
            f"milestones must be increasing fractions of training in (0, 1), got {self.milestones}",
        )
        check(_finite(self.lr_decay) and 0 < self.lr_decay < 1, f"lr_decay must be in (0, 1), got {self.lr_decay}")
        check(_finite(self.weight_decay) and self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(_finite(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")

    def to_dict(self) -> dict[str, Any]:
        """The config as it reads back from JSON (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# Settings that may change when a run resumes: they change how fast it runs or
# what it prints, not what it computes (resnotes.checkpoint.check_same_run).
RESUMABLE_CHANGES = ("device", "compile", "deterministic", "eval_batch_size", "checkpoint_dir", "resume", "progress")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


@dataclass(frozen=True)
class Profile:
    """How much data, how many epochs, and the recipe of one run profile."""

    name: str
    train_per_class: int | None  # images per class drawn from train (None: all 5,000)
    test_per_class: int | None  # images per class drawn from test (None: all 1,000)
    epochs: int
    batch_size: int
    lr: float
    schedule: str  # "step", "cosine" or "onecycle"
    warmup_fraction: float = 0.0  # of the whole run, whatever the number of epochs
    weight_decay: float = 1e-4
    nesterov: bool = False
    label_smoothing: float = 0.0

    def pick(self, **choices: Any) -> Any:
        """The value given for this profile, e.g. ``profile.pick(smoke=8, demo=20, fast=110, paper=110)``."""
        if self.name not in choices:
            raise ValueError(f"no choice given for profile {self.name!r}; got {sorted(choices)}")
        return choices[self.name]

    def train_config(self, **overrides: Any) -> TrainConfig:
        """A ``TrainConfig`` with this profile's recipe; keyword arguments override it.

        The warm-up is a fraction of the run, so it scales with an ``epochs``
        override; an explicit ``warmup_epochs`` wins.
        """
        base = {f.name: getattr(self, f.name) for f in fields(self) if f.name in TrainConfig.__dataclass_fields__}
        merged = {**base, "profile": self.name, **overrides}
        merged.setdefault("warmup_epochs", self.warmup_fraction * merged["epochs"])
        return TrainConfig(**merged)

    def data_kwargs(self) -> dict:
        """Arguments for ``load_cifar`` that give this profile's subset."""
        return {"train_per_class": self.train_per_class, "test_per_class": self.test_per_class}

    def __str__(self) -> str:
        subset = "full CIFAR" if self.train_per_class is None else f"{self.train_per_class} train / {self.test_per_class} test images per class"
        return f"profile {self.name!r}: {subset}, {self.epochs} epochs, {self.schedule} schedule, batch {self.batch_size}"


PROFILES = {
    p.name: p
    for p in [
        Profile("smoke", 20, 10, epochs=2, batch_size=32, lr=0.05, schedule="cosine"),
        # demo: 8 epochs (so that every chapter runs in at most 20 minutes on 2 CPU
        # cores), one-cycle with a 25% warm-up, Nesterov momentum, weight decay 5e-4,
        # label smoothing 0.1 and batch 32, chosen by measuring on the CPU over
        # several seeds (the README's "The demo and fast recipe"). fast takes the
        # same recipe at the GPU's usual batch of 128 (not yet measured on a GPU).
        Profile("demo", 500, 100, epochs=8, batch_size=32, lr=0.1, schedule="onecycle", warmup_fraction=0.25,
                weight_decay=5e-4, nesterov=True, label_smoothing=0.1),  # fmt: skip
        Profile("fast", None, None, epochs=15, batch_size=128, lr=0.1, schedule="onecycle", warmup_fraction=0.25,
                weight_decay=5e-4, nesterov=True, label_smoothing=0.1),  # fmt: skip
        # He et al. (2015, 2016): batch 128, lr 0.1 divided by 10 at 32k and 48k of
        # 64k iterations (about 164 epochs of 50,000 images), weight decay 1e-4.
        # Differs from paper: we train on 45,000 images (5,000 are held out for
        # validation), and warm up linearly from 0.01 over the first epoch
        # instead of holding 0.01 for 400 iterations.
        Profile("paper", None, None, epochs=164, batch_size=128, lr=0.1, schedule="step", warmup_fraction=1 / 164),
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
# profile. A registry entry names its recipe (``ModelSpec.recipe``). All use SGD
# with momentum 0.9 and a step schedule.
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
    """The TrainConfig overrides of the paper that ``model_name`` comes from (its registry entry's ``recipe``)."""
    from .models import get_spec

    recipe = dict(PAPER_RECIPES.get(get_spec(model_name).recipe, {}))
    lr_cifar100 = recipe.pop("lr_cifar100", None)
    if dataset == "cifar100" and lr_cifar100 is not None:
        recipe["lr"] = lr_cifar100
    return recipe


def make_config(model_name: str, profile: Profile | str | None = None, dataset: str = "cifar10", **overrides: Any) -> TrainConfig:
    """The one way from (model, profile, overrides) to a ``TrainConfig``.

    The profile's recipe first; under ``paper``, the model's published recipe on
    top; then the overrides (``None`` values are ignored, so command-line
    defaults pass through).
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    recipe = paper_recipe(model_name, dataset) if profile.name == "paper" else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    return profile.train_config(**{**recipe, **given})


__all__ = [
    "PAPER_RECIPES", "PRECISIONS", "PROFILES", "Profile", "SCHEDULES", "TrainConfig",
    "default_profile_name", "get_profile", "make_config", "paper_recipe",
]
