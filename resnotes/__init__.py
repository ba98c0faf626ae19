"""resnotes: the package behind the book's chapters on deep residual networks.

The readable core:

- ``resnotes.models``: one module per family of networks, and their registry;
- ``resnotes.datasets``: CIFAR as uint8 tensors, its subsets and validation
  split; ``resnotes.batches``: batches augmented on the device;
- ``resnotes.config``: ``TrainConfig``, the run profiles, the papers' recipes;
- ``resnotes.train``: ``fit`` and ``evaluate``, the training loop;
- ``resnotes.analysis``, ``plot``, ``report``: what the chapters measure and show;
  ``resnotes.evidence``: what the runs allow us to say (McNemar's test of two
  runs on the same test images, the paired differences over seeds);
  ``resnotes.replicates``: each chapter's seed replicates in the ledger;
- ``resnotes.ledger``: the results ledger; ``resnotes.exercises``: ``check``.

The machinery beside it: ``engine`` (device, precision, compilation, several
GPUs), ``runs`` and ``checkpoint`` (the run folder), ``datafiles`` and ``cache``
(reading files safely, and fast), ``files`` (safe writes), ``runtime``,
``cli`` (``python -m resnotes.train``) and ``bench``.

The names a chapter uses most are also here, so that a chapter opens with
``import resnotes as rn`` (they are imported on first use, so that
``import resnotes`` itself stays cheap).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# On a machine shared with other work, OpenMP's idle worker threads spin (its
# default wait policy) and take the CPU from the work: a conv benchmark beside one
# training process on 2 cores ran 236 iterations in 12 s by default and 320 with a
# passive wait; two benchmarks beside it, 106 against 204 each. OpenMP reads the
# policy when torch loads it, so it is set here, before torch, unless it is set
# already (the command line, and a chapter that imports resnotes before torch).
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.3.0"

# public name -> the module that defines it
_PUBLIC = {
    "create_model": "models",
    "get_spec": "models",
    "list_models": "models",
    "count_parameters": "models",
    "count_flops": "models",
    "load_cifar": "datasets",
    "DeviceBatches": "batches",
    "model_device": "runtime",
    "get_profile": "config",
    "make_config": "config",
    "paper_recipe": "config",
    "fit": "train",
    "evaluate": "train",
    "History": "history",
    "Table": "report",
    "banner": "report",
    "results_table": "report",
    "paper_table": "report",
    "wilson_interval": "report",
    "compare": "evidence",
    "mcnemar": "evidence",
    "over_seeds": "evidence",
    "verdict": "evidence",
    "chapter_evidence": "replicates",
    "seed_evidence": "plot",
    "across_seeds": "evidence",
    "network_name": "evidence",
    "load_ledger": "ledger",
    "learning_curves": "plot",
    "check": "exercises",
    "run_solutions": "exercises",
    "record_runs": "ledger",
    "train_and_record": "ledger",
}

__all__ = ["start_chapter", "chapter_time", *_PUBLIC]

_stopwatch = None


def start_chapter(data=None):
    """Start the chapter's clock, print the provenance banner and return the profile.

    Every chapter calls it once at the top; ``chapter_time()`` at its end prints
    how long the whole chapter took."""
    global _stopwatch
    from .config import get_profile
    from .plot import use_book_style
    from .report import Stopwatch, banner

    use_book_style()
    _stopwatch = Stopwatch()
    profile = get_profile()
    print(banner(profile, data))
    return profile


def chapter_time() -> str:
    """'This chapter ran in 12 min 03 s (profile demo, on ...)', since
    ``start_chapter``."""
    from .config import get_profile
    from .runtime import hardware_description, pick_device

    if _stopwatch is None:
        raise RuntimeError(
            "chapter_time() needs start_chapter() to have run first, at the top of the "
            "chapter"
        )
    where = hardware_description(pick_device())
    from .report import wrap

    return wrap(
        f"This chapter ran in {_stopwatch} (profile {get_profile().name!r}, {where})."
    )


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'resnotes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
