"""Every knob of a training run in one place: ``TrainConfig``, the run profiles,
the papers' recipes, and ``make_config``, the one way from a model name, a
profile and overrides to a ``TrainConfig``.

=========  ==============================================================
``smoke``  what CI runs: seconds per chapter on a tiny subset
``demo``   the CPU default: minutes per chapter on 2 cores, smaller depths
           and a subset, still real learning
``fast``   the GPU default: the paper's model on full CIFAR with a short
           schedule, minutes per chapter
``paper``  the paper's model and its own published recipe, with two
           departures in every family: a warm-up over the first 1/164 of
           the run, and 5,000 training images held out for validation
=========  ==============================================================

``RESNOTES_PROFILE`` picks one; without it, ``fast`` when a GPU is present and
``demo`` otherwise. A chapter chooses its own model size per profile with
``profile.pick(smoke=..., demo=..., fast=..., paper=...)``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

SCHEDULES = ("step", "cosine", "onecycle")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
MAX_SEED = 2**63  # exclusive: torch.manual_seed takes a 64-bit integer


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = (
        "step"  # "step" (x lr_decay at each milestone), "cosine", "onecycle"
    )
    milestones: tuple[float, ...] = (0.5, 0.75)  # "step": fractions of training
    lr_decay: float = 0.1  # "step": the factor at each milestone (WRN uses 0.2)
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 (onecycle: from lr/25)
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    precision: str = "auto"  # bf16 on CUDA >= 8.0, fp16 (scaled) below, fp32 elsewhere
    channels_last: bool = True  # on CUDA only
    compile: bool | None = None  # torch.compile; None: on for CUDA under paper
    deterministic: bool = False  # deterministic GPU kernels where they exist (slower)
    eval_batch_size: int = 500
    checkpoint_dir: str | None = None  # write last.pt here after every epoch
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    profile: str = "custom"  # recorded in the history only
    progress: bool = True  # tqdm bars (the per-epoch lines print regardless)

    def __post_init__(self) -> None:
        if _is_sequence(self.milestones):
            self.milestones = tuple(self.milestones)
        for problem in _problems(self):
            raise ValueError(problem)
        if self.checkpoint_dir is not None:  # a Path would not serialise to JSON
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)

    def to_dict(self) -> dict[str, Any]:
        """The config as it reads back from JSON (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
        }

    def describe(self) -> str:
        """The recipe in force, in one line."""
        parts = [f"{self.epochs} epochs", f"batch {self.batch_size}"]
        parts.append(f"{self.schedule} lr {self.lr:g}")
        if self.warmup_epochs:
            parts.append(f"warm-up {self.warmup_epochs:g} epochs")
        if self.schedule == "step":
            at = ", ".join(f"{m:.0%}" for m in self.milestones)
            parts.append(f"x{self.lr_decay:g} at {at}")
        nesterov = "Nesterov " if self.nesterov else ""
        parts.append(f"{nesterov}momentum {self.momentum:g}")
        parts.append(f"weight decay {self.weight_decay:g}")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        return ", ".join(parts) + f"; seed {self.seed}"


# Settings that may change when a run resumes: they change how fast it runs or
# what it prints, not what it computes (resnotes.checkpoint.check_same_run).
# ``precision`` is compared as the precision that runs ("auto" and "fp32" are the
# same on a CPU), which the run's identity holds.
RESUMABLE_CHANGES = (
    "device",
    "compile",
    "deterministic",
    "eval_batch_size",
    "checkpoint_dir",
    "resume",
    "progress",
    "precision",
)


# A device a run can name; "auto" picks one (runtime.pick_device).
DEVICE = re.compile(r"auto|cpu|mps|cuda(?::[0-9]{1,3})?")
# A larger learning rate overflows the optimiser's float32 arithmetic (1e300 ended
# in "value cannot be converted to type float without overflow"); up to it, a
# diverging run is stopped by the NaN check with a message.
MAX_LR = 1e30


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _problems(c: TrainConfig):
    """Each rule that ``c`` breaks, as a message naming the setting."""
    for name in ("epochs", "batch_size", "eval_batch_size"):
        value = getattr(c, name)
        if not (_is_int(value) and value >= 1):
            yield f"{name} must be an integer >= 1, got {value!r}"
    if not (_is_int(c.seed) and 0 <= c.seed < MAX_SEED):
        yield f"seed must be an integer in [0, 2**63), got {c.seed!r}"
    for name in ("nesterov", "channels_last", "deterministic", "resume", "progress"):
        if not isinstance(getattr(c, name), bool):
            yield f"{name} must be True or False, got {getattr(c, name)!r}"
    if c.compile is not None and not isinstance(c.compile, bool):
        yield f"compile must be True, False or None, got {c.compile!r}"
    if c.schedule not in SCHEDULES:
        valid = ", ".join(SCHEDULES)
        yield f"unknown schedule {c.schedule!r}; valid schedules: {valid}"
    if c.precision not in PRECISIONS:
        yield f"unknown precision {c.precision!r}; valid: {', '.join(PRECISIONS)}"
    for name in ("device", "profile"):
        if not isinstance(getattr(c, name), str):
            yield f"{name} must be a string, got {getattr(c, name)!r}"
    if isinstance(c.device, str) and not DEVICE.fullmatch(c.device):
        yield (
            "device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got "
            f"{c.device[:40]!r}"
        )
    if c.checkpoint_dir is not None and not isinstance(
        c.checkpoint_dir, (str, os.PathLike)
    ):
        yield f"checkpoint_dir must be a path or None, got {c.checkpoint_dir!r}"
    if not (_finite(c.lr) and 0 < c.lr <= MAX_LR):
        yield f"lr must be in (0, {MAX_LR:g}], got {c.lr!r}"
    if not (_finite(c.warmup_epochs) and _is_int(c.epochs)) or not (
        0 <= c.warmup_epochs < c.epochs
    ):
        yield (
            f"warmup_epochs must be in [0, epochs) = [0, {c.epochs}), "
            f"got {c.warmup_epochs!r}"
        )
    if not (_finite(c.label_smoothing) and 0 <= c.label_smoothing < 1):
        yield f"label_smoothing must be in [0, 1), got {c.label_smoothing!r}"
    steps = c.milestones
    if not (
        _is_sequence(steps)
        and all(_finite(f) and 0 < f < 1 for f in steps)
        and list(steps) == sorted(steps)
    ):
        rule = "increasing fractions of training in (0, 1)"
        yield f"milestones must be {rule}, got {steps}"
    if not (_finite(c.lr_decay) and 0 < c.lr_decay < 1):
        yield f"lr_decay must be in (0, 1), got {c.lr_decay!r}"
    if not (_finite(c.weight_decay) and c.weight_decay >= 0):
        yield f"weight_decay must be >= 0, got {c.weight_decay!r}"
    if not (_finite(c.momentum) and 0 <= c.momentum < 1):
        yield f"momentum must be in [0, 1), got {c.momentum!r}"


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
        """The value for this profile, e.g. ``profile.pick(smoke=8, demo=20, fast=110,
        paper=110)``."""
        if self.name not in choices:
            raise ValueError(
                f"no choice given for profile {self.name!r}; got {sorted(choices)}"
            )
        return choices[self.name]

    def train_config(self, **overrides: Any) -> TrainConfig:
        """A ``TrainConfig`` with this profile's recipe; keyword arguments override it.

        The warm-up is a fraction of the run, so it scales with an ``epochs``
        override; an explicit ``warmup_epochs`` wins.
        """
        names = TrainConfig.__dataclass_fields__
        base = {f.name: getattr(self, f.name) for f in fields(self) if f.name in names}
        merged = {**base, "profile": self.name, **overrides}
        if _is_int(merged["epochs"]):
            merged.setdefault("warmup_epochs", self.warmup_fraction * merged["epochs"])
        return TrainConfig(**merged)

    def data_kwargs(self) -> dict:
        """Arguments for ``load_cifar`` that give this profile's subset."""
        return {
            "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class,
        }

    def __str__(self) -> str:
        train = (
            "full CIFAR"
            if self.train_per_class is None
            else f"{self.train_per_class} train images per class"
        )
        test = (
            "the full test set"
            if self.test_per_class is None
            else f"{self.test_per_class} test images per class"
        )
        whole = self.train_per_class is None and self.test_per_class is None
        subset = train if whole else f"{train}, {test}"
        return (
            f"profile {self.name!r}: {subset}, {self.epochs} epochs, "
            f"{self.schedule} schedule, batch {self.batch_size}"
        )


# demo: 8 epochs (so that every chapter runs in at most 20 minutes on 2 CPU
# cores), one-cycle with a 25% warm-up, Nesterov momentum, weight decay 5e-4,
# label smoothing 0.1 and batch 32, chosen by measuring on the CPU over several
# seeds (CONTRIBUTING.md's "The demo and fast recipe"). fast takes the same recipe at
# the GPU's usual batch of 128 (not yet measured on a GPU).
_ONE_CYCLE = {
    "schedule": "onecycle",
    "lr": 0.1,
    "warmup_fraction": 0.25,
    "weight_decay": 5e-4,
    "nesterov": True,
    "label_smoothing": 0.1,
}
PROFILES = {
    p.name: p
    for p in [
        Profile("smoke", 20, 10, epochs=2, batch_size=32, lr=0.05, schedule="cosine"),
        # demo scores on the whole test set (10,000 images on CIFAR-10): one more
        # evaluation pass, and differences of about 1 point become decidable.
        Profile("demo", 500, None, epochs=8, batch_size=32, **_ONE_CYCLE),
        Profile("fast", None, None, epochs=15, batch_size=128, **_ONE_CYCLE),
        # He et al. (2015, 2016): batch 128, lr 0.1 divided by 10 at 32k and 48k of
        # 64k iterations (about 164 epochs of 50,000 images), weight decay 1e-4.
        # Differs from paper: we train on 45,000 images (5,000 are held out for
        # validation), and warm up linearly from 0.01 over 1/164 of the run
        # instead of holding 0.01 for 400 iterations.
        Profile(
            "paper",
            None,
            None,
            epochs=164,
            batch_size=128,
            lr=0.1,
            schedule="step",
            warmup_fraction=1 / 164,
        ),
    ]
}


def default_profile_name() -> str:
    return "fast" if torch.cuda.is_available() else "demo"


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else ``$RESNOTES_PROFILE``, else the default for this
    machine."""
    name = name or os.environ.get("RESNOTES_PROFILE") or default_profile_name()
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        valid = ", ".join(PROFILES)
        raise ValueError(f"unknown profile {name!r}; valid profiles: {valid}") from None


# Each family's published CIFAR training recipe, applied on top of the `paper`
# profile. A registry entry names its recipe (``ModelSpec.recipe``). All use SGD
# with momentum 0.9 and a step schedule.
PAPER_RECIPES: dict[str, dict[str, Any]] = {
    # He et al. 2016: batch 128, /10 at 50% and 75% of 64k iterations (about 164
    # epochs).
    "preact_resnet": {
        "epochs": 164,
        "batch_size": 128,
        "lr": 0.1,
        "milestones": (0.5, 0.75),
    },
    "se_cbam": {"epochs": 164, "batch_size": 128, "lr": 0.1, "milestones": (0.5, 0.75)},
    # Han et al. 2017: 300 epochs, batch 128, lr 0.1 (CIFAR-10) or 0.5 (CIFAR-100),
    # /10 at 150 and 225, Nesterov.
    "pyramidnet": {
        "epochs": 300,
        "batch_size": 128,
        "lr": 0.1,
        "lr_cifar100": 0.5,
        "nesterov": True,
        "milestones": (0.5, 0.75),
    },
    # Huang et al. 2017: 300 epochs, batch 64, lr 0.1, /10 at 50% and 75%, Nesterov.
    "densenet": {
        "epochs": 300,
        "batch_size": 64,
        "lr": 0.1,
        "nesterov": True,
        "milestones": (0.5, 0.75),
    },
    # Wang et al. 2017: batch 64, lr 0.1, /10 at 64k and 96k of 160k iterations
    # (about 205 epochs), Nesterov.
    "attention": {
        "epochs": 205,
        "batch_size": 64,
        "lr": 0.1,
        "nesterov": True,
        "milestones": (0.4, 0.6),
    },
    # Huang et al. 2016: 500 epochs, batch 128, lr 0.1, /10 at 250 and 375, Nesterov.
    "stochastic_depth": {
        "epochs": 500,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": True,
        "milestones": (0.5, 0.75),
    },
    # Zagoruyko and Komodakis 2016: 200 epochs, batch 128, lr 0.1 x0.2 at 60, 120
    # and 160, weight decay 5e-4, Nesterov.
    "wide_resnet": {
        "epochs": 200,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": True,
        "weight_decay": 5e-4,
        "milestones": (0.3, 0.6, 0.8),
        "lr_decay": 0.2,
    },
}


def paper_recipe(model_name: str, dataset: str = "cifar10") -> dict[str, Any]:
    """The TrainConfig overrides of the paper ``model_name`` comes from (its registry
    entry's ``recipe``)."""
    from .models import get_spec

    recipe = dict(PAPER_RECIPES.get(get_spec(model_name).recipe, {}))
    lr_cifar100 = recipe.pop("lr_cifar100", None)
    if dataset == "cifar100" and lr_cifar100 is not None:
        recipe["lr"] = lr_cifar100
    return recipe


def make_config(
    model_name: str,
    profile: Profile | str | None = None,
    dataset: str = "cifar10",
    **overrides: Any,
) -> TrainConfig:
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
    "PAPER_RECIPES",
    "PRECISIONS",
    "PROFILES",
    "Profile",
    "SCHEDULES",
    "TrainConfig",
    "default_profile_name",
    "get_profile",
    "make_config",
    "paper_recipe",
]
