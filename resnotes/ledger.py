"""The results ledger: one JSON file per finished run, in ``results/``.

A record says what was trained (model and arguments, parameters, FLOPs), on
what (dataset, named exactly), how (profile, epochs, schedule, seed), where
(hardware, torch version, git commit) and with what outcome (wall-clock time,
images/s, best validation accuracy and the test accuracy of that checkpoint).
``python -m resnotes.train --ledger results`` and ``python -m resnotes.bench
gpu`` write records; ``load_ledger`` reads them back as rows for tables and
plots, validating each one.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# field -> (type or types, description). Every field is required.
SCHEMA: dict[str, tuple[Any, str]] = {
    "schema_version": (int, "version of this schema"),
    "kind": (str, "'train' (a training run) or 'bench' (a short timed run)"),
    "model": (str, "registered model name"),
    "model_kwargs": (dict, "the factory arguments"),
    "params": (int, "trainable parameters"),
    "flops_per_image": (int, "forward FLOPs for one 32x32 image (multiply-add = 2)"),
    "dataset": (str, "exactly which data, e.g. 'CIFAR-10' or 'CIFAR-10 (JPEG q75 copy)'"),
    "train_images": (int, "training images (after the validation split)"),
    "profile": (str, "run profile"),
    "epochs": (int, "epochs trained"),
    "schedule": (dict, "learning-rate schedule: name, lr, batch size, warm-up, milestones, nesterov, weight decay"),
    "seed": (int, "seed for weights, data order and augmentation"),
    "hardware": (dict, "device: its name; count: how many processes/devices"),
    "torch": (str, "torch version"),
    "git_commit": (str, "commit of the code, '-dirty' if it had uncommitted changes, or 'unknown'"),
    "wall_clock_s": (float, "seconds for the whole run"),
    "images_per_s": (float, "training images per second (median over epochs)"),
    "seconds_per_epoch": (float, "median seconds of training per epoch"),
    "best_val_acc": (float, "best validation accuracy"),
    "test_acc": (float, "test accuracy of the checkpoint with the best validation accuracy"),
    "peak_memory_bytes": ((int, type(None)), "peak device memory of training, where measured"),
    "created": (str, "UTC time the record was written, ISO 8601"),
}
KINDS = ("train", "bench")


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit, with '-dirty' if tracked files changed, or 'unknown' outside a git checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def make_record(history, *, model_kwargs: dict, flops_per_image: int, kind: str = "train", world_size: int = 1, peak_memory_bytes: int | None = None) -> dict:
    """A ledger record from a finished run's ``History``."""
    import statistics

    config, meta = history.config, history.meta
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "model": meta["model"],
        "model_kwargs": dict(model_kwargs),
        "params": int(meta["params"]),
        "flops_per_image": int(flops_per_image),
        "dataset": meta["dataset"],
        "train_images": int(meta["train_images"]),
        "profile": config["profile"],
        "epochs": len(history.epochs),
        "schedule": {key: config[key] for key in ("schedule", "lr", "batch_size", "warmup_epochs", "milestones", "nesterov", "weight_decay")},
        "seed": int(config["seed"]),
        "hardware": {"device": meta["hardware"], "count": int(world_size)},
        "torch": meta.get("torch", ""),
        "git_commit": git_commit(),
        "wall_clock_s": float(history.seconds),
        "images_per_s": float(statistics.median(history.column("images_per_s"))),
        "seconds_per_epoch": float(statistics.median(history.column("seconds"))),
        "best_val_acc": float(history.best_val_acc),
        "test_acc": float(history.test_acc),
        "peak_memory_bytes": None if peak_memory_bytes is None else int(peak_memory_bytes),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    errors = validate(record)
    if errors:
        raise ValueError("invalid ledger record: " + "; ".join(errors))
    return record


def validate(record: Any) -> list[str]:
    """Everything wrong with ``record``, as messages; an empty list means it is valid."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    errors = [f"missing field {name!r} ({description})" for name, (_, description) in SCHEMA.items() if name not in record]
    errors += [f"unknown field {name!r}" for name in record if name not in SCHEMA]
    for name, (types, _) in SCHEMA.items():
        if name not in record:
            continue
        value = record[name]
        ok_types = types if isinstance(types, tuple) else (types,)
        if float in ok_types and isinstance(value, int) and not isinstance(value, bool):
            continue  # JSON does not tell 3.0 from 3
        if isinstance(value, bool) or not isinstance(value, ok_types):
            errors.append(f"field {name!r} must be {' or '.join(t.__name__ for t in ok_types)}, got {value!r}")
    if errors:
        return errors
    if record["schema_version"] != SCHEMA_VERSION:
        errors.append(f"schema_version must be {SCHEMA_VERSION}, got {record['schema_version']}")
    if record["kind"] not in KINDS:
        errors.append(f"kind must be one of {', '.join(KINDS)}, got {record['kind']!r}")
    for name in ("best_val_acc", "test_acc"):
        if not 0 <= record[name] <= 1:
            errors.append(f"{name} must be a fraction in [0, 1], got {record[name]}")
    for name in ("params", "flops_per_image", "epochs", "train_images"):
        if record[name] < 1:
            errors.append(f"{name} must be >= 1, got {record[name]}")
    if not {"device", "count"} <= set(record["hardware"]):
        errors.append("hardware must give 'device' and 'count'")
    if not record["dataset"].startswith(("CIFAR-10", "CIFAR-100")):
        errors.append(f"dataset must name a CIFAR dataset exactly, got {record['dataset']!r}")
    return errors


def record_name(record: dict) -> str:
    """A file name that identifies the run and never collides with an earlier one."""
    stamp = re.sub(r"[^0-9T]", "", record["created"])[:15]
    data = "cifar100" if record["dataset"].startswith("CIFAR-100") else "cifar10"
    return f"{record['model']}-{data}-{record['profile']}-{record['kind']}-seed{record['seed']}-{stamp}.json"


def write_record(record: dict, folder: str | Path = "results") -> Path:
    """Write ``record`` as ``folder/<name>.json`` and return the path."""
    errors = validate(record)
    if errors:
        raise ValueError("invalid ledger record: " + "; ".join(errors))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / record_name(record)
    counter = 1
    while path.exists():
        path = folder / record_name(record).replace(".json", f"-{counter}.json")
        counter += 1
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_ledger(folder: str | Path = "results") -> list[dict]:
    """Every record in ``folder``, validated, oldest first; an invalid file raises, naming it."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        errors = validate(record)
        if errors:
            raise ValueError(f"{path} is not a valid ledger record: " + "; ".join(errors))
        rows.append({**record, "file": path.name})
    return sorted(rows, key=lambda r: r["created"])
