"""The seed replicates behind each chapter's comparisons under ``demo``.

    python -m resnotes.replicates --chapter 1            # chapter 1's arms, seeds 0-2
    python -m resnotes.replicates --chapter 6 --seeds 0 1 2 3 4
    python -m resnotes.replicates --all --dry-run        # the commands, and the time

Each arm is trained by the command line, ``python -m resnotes.train --profile
demo --seed S --ledger DIR``, one run at a time, into the results ledger
(``results/`` of the checkout by default), so that the chapters read the
replicates instead of training them. A run already in the ledger (the same
network and seed under ``demo``, with per-image test correctness) is not run
again, and an interrupted run resumes from its run folder: the same command
carries on where it stopped. ``--dry-run`` prints the commands and the time they
would take, estimated from the ledger's earlier runs of each arm on this kind of
machine.

``DEMO_ARMS`` names each arm by the network it trains; ``COMPARISONS`` says which
arms each chapter compares (first against second), as ``evidence.over_seeds``
takes them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

# label -> (registry name, keyword arguments) of the networks the chapters train
# under demo (the smaller depths of the CPU profile).
DEMO_ARMS: dict[str, tuple[str, dict]] = {
    "plain-32": ("plain20", {"depth": 32}),
    "ResNet-32": ("preact_resnet20", {"depth": 32}),
    "PyramidNet-32 (α=45)": ("pyramidnet110_a48", {"depth": 32, "alpha": 45}),
    "DenseNet-BC-40 (k=12)": ("densenet100_bc_k12", {"depth": 40, "growth_rate": 12}),
    "ResNet-14": ("preact_resnet20", {"depth": 14}),
    "Attention-56 (ARL)": ("attention92", {"depth": 56, "attention": "arl"}),
    "Attention-56 (NAL)": ("attention92", {"depth": 56, "attention": "nal"}),
    "ResNet-32, stochastic depth": ("resnet110_stochastic_depth", {"depth": 32}),
    "ResNet-32, constant depth": ("resnet110", {"depth": 32}),
    "ResNet-14 + SE": ("preact_resnet110_se", {"depth": 14}),
    "ResNet-14 + CBAM": ("preact_resnet110_cbam", {"depth": 14}),
}

# Arms that train on fewer images per class than demo's 500 (chapter 4 halves
# them to stay within its 20 minutes).
TRAIN_PER_CLASS = {"Attention-56 (ARL)": 250, "Attention-56 (NAL)": 250}

# chapter -> the comparisons it makes, (first arm, second arm)
COMPARISONS: dict[int, list[tuple[str, str]]] = {
    1: [("ResNet-32", "plain-32")],
    2: [("PyramidNet-32 (α=45)", "ResNet-32")],
    3: [("DenseNet-BC-40 (k=12)", "ResNet-14")],
    4: [("Attention-56 (ARL)", "Attention-56 (NAL)")],
    5: [("ResNet-32, stochastic depth", "ResNet-32, constant depth")],
    6: [("ResNet-14 + SE", "ResNet-14"), ("ResNet-14 + CBAM", "ResNet-14")],
}
DEFAULT_SEEDS = (0, 1, 2)


def chapter_arms(chapters) -> list[str]:
    """The arms the chapters compare, each once, in the order they first appear."""
    arms: list[str] = []
    for chapter in chapters:
        for pair in COMPARISONS[chapter]:
            arms += [arm for arm in pair if arm not in arms]
    return arms


def command(arm: str, seed: int, ledger: str, out: str) -> list[str]:
    """The command line that trains ``arm`` with ``seed`` into ``ledger``."""
    model, kwargs = DEMO_ARMS[arm]
    args = [sys.executable, "-m", "resnotes.train", "--model", model]
    for key, value in kwargs.items():
        args += ["--model-arg", f"{key}={value!r}"]
    if arm in TRAIN_PER_CLASS:
        args += ["--train-per-class", str(TRAIN_PER_CLASS[arm])]
    return [
        *args,
        *("--profile", "demo", "--seed", str(seed)),
        *("--ledger", ledger, "--out", out),
    ]


def _runs_of(records: list[dict], arm: str) -> list[dict]:
    """The ledger's demo training records of ``arm``'s network and training subset."""
    from .config import get_profile
    from .datasets import VAL_FRACTION, _held_out
    from .evidence import network_kwargs

    model, kwargs = DEMO_ARMS[arm]
    wanted = network_kwargs(model, kwargs)
    per_class = TRAIN_PER_CLASS.get(arm, get_profile("demo").train_per_class)
    train_images = 10 * (per_class - _held_out(per_class, VAL_FRACTION))
    return [
        r
        for r in records
        if r["kind"] == "train"
        and r["profile"] == "demo"
        and r["model"] == model
        and r["dataset"].startswith("CIFAR-10")
        and not r["dataset"].startswith("CIFAR-100")
        and r["train_images"] == train_images
        and network_kwargs(r["model"], r["model_kwargs"]) == wanted
    ]


def recorded(records: list[dict], arm: str) -> dict[int, dict]:
    """The ledger's demo records of ``arm`` that carry per-image correctness, by seed
    (the latest of each seed)."""
    found: dict[int, dict] = {}
    for r in _runs_of(records, arm):
        if r.get("test_correct"):
            if r["seed"] not in found or r["created"] > found[r["seed"]]["created"]:
                found[r["seed"]] = r
    return found


def comparison(records: list[dict], first: str, second: str):
    """``evidence.over_seeds`` of arm ``first`` against arm ``second``, on the seeds
    both have in the ledger with per-image correctness; None when they share no
    seed."""
    from .evidence import over_seeds

    a, b = recorded(records, first), recorded(records, second)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return over_seeds({seed: (a[seed], b[seed]) for seed in seeds})


def chapter_evidence(chapter: int, records: list[dict] | None = None):
    """Each comparison of ``chapter``: (first arm, second arm, ``OverSeeds`` or None,
    the runs of each arm by seed), from the results ledger."""
    if records is None:
        from .ledger import load_ledger

        records = load_ledger()
    return [
        (
            first,
            second,
            comparison(records, first, second),
            recorded(records, first),
            recorded(records, second),
        )
        for first, second in COMPARISONS[chapter]
    ]


def estimate_seconds(records: list[dict], arm: str) -> float | None:
    """The median wall-clock time of the ledger's demo runs of ``arm``, with or
    without per-image bits (the final test evaluation excluded)."""
    times = [r["wall_clock_s"] for r in _runs_of(records, arm)]
    return statistics.median(times) if times else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resnotes.replicates",
        description="Train the chapters' demo arms over seeds into the ledger.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--chapter", type=int, choices=sorted(COMPARISONS), nargs="+")
    which.add_argument("--all", action="store_true", help="every chapter's arms")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--ledger", default="results", metavar="DIR")
    parser.add_argument("--out", default="runs/replicates", metavar="DIR")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if any(s < 0 for s in args.seeds):
        parser.error("--seeds must be integers >= 0")
    from .ledger import load_ledger

    records = load_ledger(args.ledger) if Path(args.ledger).is_dir() else []
    arms = chapter_arms(sorted(COMPARISONS) if args.all else args.chapter)
    todo = [
        (arm, seed)
        for seed in args.seeds
        for arm in arms
        if seed not in recorded(records, arm)
    ]
    estimates = [estimate_seconds(records, arm) for arm, _ in todo]
    known = sum(e for e in estimates if e is not None)
    unknown = sum(e is None for e in estimates)
    print(
        f"{len(todo)} runs to do ({len(arms)} arms x {len(args.seeds)} seeds, less "
        f"{len(arms) * len(args.seeds) - len(todo)} already in {args.ledger}): about "
        f"{known / 60:.0f} min of training on the ledger's earlier timings"
        + (f", and {unknown} runs never timed" if unknown else "")
        + "; one run at a time"
    )
    for number, (arm, seed) in enumerate(todo, start=1):
        line = command(arm, seed, args.ledger, args.out)
        print(f"[{number}/{len(todo)}] {arm}, seed {seed}: {' '.join(line[1:])}")
        if args.dry_run:
            continue
        sys.stdout.flush()
        status = subprocess.run(line).returncode
        if status != 0:
            print(f"stopped: that run exited with status {status}", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
