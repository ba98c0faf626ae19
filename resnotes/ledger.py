"""The results ledger: one JSON file per finished run, in ``results/``.

A record says what was trained (model and arguments, parameters, FLOPs), on
what (dataset, named exactly), how (profile, epochs, schedule, seed, numeric
precision), where (hardware, torch version, git commit) and with what outcome
(wall-clock time, images/s, best validation accuracy and the test accuracy of
that checkpoint). Each record names the training run it comes from
(``run_id``), and a folder holds at most one record per run.
``python -m resnotes.train --ledger results`` and ``python -m resnotes.bench
gpu`` write records; ``load_ledger`` reads them back as rows for tables and
plots, validating each one.

The book renders these records, so validation is strict: numbers must be
finite and in range, and every string has a fixed form or is plain text
without markup characters (``<``, ``>``, ``|``, backticks, newlines).

Schema versions: version 2 added ``run_id`` and ``precision``; version 3
(current) added ``test_images``, the number of images ``test_acc`` was
measured on, so that a table can show its sampling error. ``validate``
accepts an older record as valid for its own version; ``load_ledger``
upgrades one on read (``upgrade``) without changing its numbers, and
``write_record`` writes only the current version.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 3

# field -> (type or types, description). Every field is required.
SCHEMA: dict[str, tuple[Any, str]] = {
    "schema_version": (int, "version of this schema (3; version-1 and -2 records are upgraded on read)"),
    "run_id": (str, "identifies one training run: a random hex id made when the run starts and kept across resumes; "
                    "a folder holds at most one record per run_id"),  # fmt: skip
    "kind": (str, "'train' (a training run) or 'bench' (a short timed run)"),
    "model": (str, "registered model name, [a-z0-9_]+"),
    "model_kwargs": (dict, "the factory arguments"),
    "params": (int, "trainable parameters, >= 1"),
    "flops_per_image": (int, "forward FLOPs for one 32x32 image (multiply-add = 2), >= 1"),
    "dataset": (str, "exactly which data: 'CIFAR-10' or 'CIFAR-100', optionally followed by a plain description "
                     "in parentheses, e.g. 'CIFAR-10 (JPEG q75 copy)'"),  # fmt: skip
    "train_images": (int, "training images (after the validation split), >= 1"),
    "profile": (str, "run profile: smoke, demo, fast, paper or custom"),
    "epochs": (int, "epochs trained, >= 1"),
    "schedule": (dict, "learning-rate schedule: schedule (step, cosine or onecycle), lr, batch_size, warmup_epochs, "
                       "milestones (fractions of training), nesterov, weight_decay"),  # fmt: skip
    "seed": (int, "seed for weights, data order and augmentation"),
    "precision": (str, "numeric precision the run trained in: 'bf16', 'fp16' (autocast) or 'fp32'"),
    "hardware": (dict, "device: its name (plain text); count: how many processes/devices, >= 1"),
    "torch": (str, "torch version, e.g. '2.14.1+cu130'"),
    "git_commit": (str, "commit of the code (hex), '-dirty' if it had uncommitted changes, or 'unknown'"),
    "wall_clock_s": (float, "seconds for the whole run, including evaluation (finite, > 0)"),
    "images_per_s": (float, "training images per second: the median, over the epochs after the first (which pays "
                            "for compilation and autotuning), of each epoch's images over its training seconds "
                            "(History.steady; finite, > 0)"),  # fmt: skip
    "seconds_per_epoch": (float, "seconds of training in one epoch: the median over the epochs after the first "
                                 "(History.steady; finite, > 0)"),  # fmt: skip
    "best_val_acc": (float, "best validation accuracy, a fraction in [0, 1]"),
    "test_acc": (float, "test accuracy of the checkpoint with the best validation accuracy, a fraction in [0, 1]"),
    "test_images": ((int, type(None)), "test images test_acc was measured on (>= 1); null in a record upgraded "
                                       "from version 1 or 2, which did not say"),  # fmt: skip
    "peak_memory_bytes": ((int, type(None)), "peak device memory of training where measured (>= 0), else null"),
    "created": (str, "UTC time the record was written, ISO 8601 with its offset, e.g. '2026-11-28T06:11:49+00:00'"),
}
# Fields that earlier versions did not have.
ADDED_IN_V2 = ("run_id", "precision")
ADDED_IN_V3 = ("test_images",)
VERSIONS = (1, 2, 3)


def _fields_of(version: int) -> dict[str, tuple[Any, str]]:
    later = (ADDED_IN_V2 if version < 2 else ()) + (ADDED_IN_V3 if version < 3 else ())
    return {name: spec for name, spec in SCHEMA.items() if name not in later}
KINDS = ("train", "bench")
PROFILES = ("smoke", "demo", "fast", "paper", "custom")
PRECISIONS = ("bf16", "fp16", "fp32")
SCHEDULES = ("step", "cosine", "onecycle")
SCHEDULE_KEYS = ("schedule", "lr", "batch_size", "warmup_epochs", "milestones", "nesterov", "weight_decay")

MAX_TEXT = 200  # characters of a free-text string (hardware name, a string argument of the model)
_MODEL = re.compile(r"[a-z0-9_]{1,64}")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{7,127}")
_DATASET = re.compile(r"CIFAR-100?(?: \([A-Za-z0-9][A-Za-z0-9 .,-]{0,79}\))?")
_COMMIT = re.compile(r"[0-9a-f]{7,64}(?:-dirty)?|unknown")
_TORCH = re.compile(r"[0-9]+\.[0-9]+[0-9A-Za-z.+_-]{0,40}")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.json")
_MARKUP = set("<>|`")


class LedgerError(ValueError):
    """A ledger record was refused (invalid, a second record of a run, an unsafe name) or a ledger cannot be read.

    The message says why and what was, or was not, written."""


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit, with '-dirty' if tracked files changed, or 'unknown' outside a git checkout."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = commit + ("-dirty" if dirty else "")
    return commit if _COMMIT.fullmatch(commit) else "unknown"


def make_record(history, *, model_kwargs: dict, flops_per_image: int, kind: str = "train", world_size: int = 1, peak_memory_bytes: int | None = None) -> dict:
    """A ledger record from a finished run's ``History``.

    Reads ``history.meta``: model, params, dataset, train_images, hardware,
    torch, and ``run_id`` (the run's id, made once when it starts and kept
    across resumes) and ``precision`` ('bf16', 'fp16' or 'fp32'), which the
    trainer must set. Images/s and seconds per epoch are ``History.steady``:
    medians over the epochs after the first.
    Raises ``LedgerError`` when something is missing or the record is invalid.
    """
    config, meta = history.config, history.meta
    needed = ("model", "params", "dataset", "train_images", "hardware", "run_id", "precision")
    missing = [key for key in needed if key not in meta]
    if missing:
        raise LedgerError(f"cannot make a ledger record: the run's history.meta lacks {', '.join(map(repr, missing))}")
    if not history.epochs:
        raise LedgerError("cannot make a ledger record: the run has no finished epoch")
    if history.best_val_acc is None or history.test_acc is None:
        raise LedgerError("cannot make a ledger record: the run has no best validation accuracy or test accuracy")
    torch_version = meta.get("torch")
    if not torch_version:
        import torch

        torch_version = torch.__version__
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": meta["run_id"],
        "kind": kind,
        "model": meta["model"],
        "model_kwargs": dict(model_kwargs),
        "params": int(meta["params"]),
        "flops_per_image": int(flops_per_image),
        "dataset": meta["dataset"],
        "train_images": int(meta["train_images"]),
        "profile": config["profile"],
        "epochs": len(history.epochs),
        "schedule": {key: config[key] for key in SCHEDULE_KEYS},
        "seed": int(config["seed"]),
        "precision": meta["precision"],
        "hardware": {"device": meta["hardware"], "count": int(world_size)},
        "torch": torch_version,
        "git_commit": git_commit(),
        "wall_clock_s": float(history.seconds),
        "images_per_s": history.steady("images_per_s"),
        "seconds_per_epoch": history.steady("seconds"),
        "best_val_acc": float(history.best_val_acc),
        "test_acc": float(history.test_acc),
        "test_images": int(meta["test_images"]) if "test_images" in meta else None,
        "peak_memory_bytes": None if peak_memory_bytes is None else int(peak_memory_bytes),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    errors = validate(record)
    if errors:
        raise LedgerError("invalid ledger record: " + "; ".join(errors))
    return record


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def plain_text_problem(value: Any, max_length: int = MAX_TEXT) -> str | None:
    """Why ``value`` is not plain text that a table can show as it is, or None when it is.

    Plain text is a non-empty string of at most ``max_length`` printable
    characters (so no newline or other control character) without ``<``,
    ``>``, ``|`` or backticks, and without surrounding spaces."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value or len(value) > max_length:
        return f"must be 1 to {max_length} characters, got {len(value)}"
    if not value.isprintable():
        return "must be printable text on one line (no newlines or control characters)"
    bad = sorted(set(value) & _MARKUP)
    if bad:
        return f"must not contain {' '.join(bad)}"
    if value != value.strip():
        return "must not start or end with spaces"
    return None


def _check_json_value(where: str, value: Any, errors: list[str], depth: int = 0) -> None:
    """Finite numbers, plain-text strings and keys, bounded nesting."""
    if depth > 4:
        errors.append(f"{where} is nested too deeply")
    elif value is None or isinstance(value, bool) or _is_int(value):
        pass
    elif isinstance(value, float):
        if not math.isfinite(value):
            errors.append(f"{where} must be a finite number, got {value}")
    elif isinstance(value, str):
        problem = plain_text_problem(value)
        if problem:
            errors.append(f"{where} {problem}: {value[:80]!r}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json_value(f"{where}[{i}]", item, errors, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                errors.append(f"{where} has a key that is not a plain name: {str(key)[:80]!r}")
            else:
                _check_json_value(f"{where}.{key}", item, errors, depth + 1)
    else:
        errors.append(f"{where} must be a JSON value, got {type(value).__name__}")


def validate(record: Any) -> list[str]:
    """Everything wrong with ``record``, as messages; an empty list means it is valid.

    A record of the current version needs every field of ``SCHEMA``; an
    older record needs every field its version had (and may not have the
    later ones). The same rules apply to the fields the versions share."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    version = record.get("schema_version")
    if not _is_int(version) or version not in VERSIONS:
        return [f"schema_version must be {SCHEMA_VERSION} (or 1 or 2, read by upgrading them), got {version!r}"]
    fields = _fields_of(version)
    errors = [f"missing field {name!r} ({about})" for name, (_, about) in fields.items() if name not in record]
    errors += [f"unknown field {name!r}" for name in record if name not in fields]
    for name, (types, _) in fields.items():
        if name not in record:
            continue
        value = record[name]
        ok_types = types if isinstance(types, tuple) else (types,)
        if float in ok_types and _is_int(value):
            continue  # JSON does not tell 3.0 from 3
        if isinstance(value, bool) or not isinstance(value, ok_types):
            errors.append(f"field {name!r} must be {' or '.join(t.__name__ for t in ok_types)}, got {value!r:.80}")
    if errors:
        return errors

    def text_field(name: str, pattern: re.Pattern, rule: str) -> None:
        if not pattern.fullmatch(record[name]):
            errors.append(f"{name} must be {rule}, got {record[name][:80]!r}")

    # Strings: a fixed form each, so that nothing in a record can carry markup or a path.
    if version >= 2:
        text_field("run_id", _RUN_ID, "8 to 128 letters, digits, '_', '.' or '-' (the trainer's hex run id)")
        if record["precision"] not in PRECISIONS:
            errors.append(f"precision must be one of {', '.join(PRECISIONS)}, got {record['precision'][:80]!r}")
    if record["kind"] not in KINDS:
        errors.append(f"kind must be one of {', '.join(KINDS)}, got {record['kind'][:80]!r}")
    text_field("model", _MODEL, "a registered model name ([a-z0-9_]+, at most 64 characters)")
    if record["profile"] not in PROFILES:
        errors.append(f"profile must be one of {', '.join(PROFILES)}, got {record['profile'][:80]!r}")
    text_field("dataset", _DATASET, "'CIFAR-10' or 'CIFAR-100', optionally followed by ' (description)' made of letters, "
                                    "digits, spaces and . , - (dataset must name a CIFAR dataset exactly)")  # fmt: skip
    text_field("torch", _TORCH, "a torch version such as 2.14.1+cu130")
    text_field("git_commit", _COMMIT, "a hex commit, optionally with -dirty, or 'unknown'")
    if not _CREATED.fullmatch(record["created"]):
        errors.append(f"created must be an ISO 8601 time with its UTC offset, got {record['created'][:80]!r}")
    else:
        try:
            datetime.datetime.fromisoformat(record["created"].replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"created is not a valid time: {record['created']!r}")

    # Numbers: finite and in range.
    for name in ("best_val_acc", "test_acc"):
        if not (math.isfinite(record[name]) and 0 <= record[name] <= 1):
            errors.append(f"{name} must be a fraction in [0, 1], got {record[name]}")
    for name in ("wall_clock_s", "images_per_s", "seconds_per_epoch"):
        if not (math.isfinite(record[name]) and record[name] > 0):
            errors.append(f"{name} must be a finite number > 0, got {record[name]}")
    for name in ("params", "flops_per_image", "epochs", "train_images"):
        if record[name] < 1:
            errors.append(f"{name} must be >= 1, got {record[name]}")
    if version >= 3 and record["test_images"] is not None and record["test_images"] < 1:
        errors.append(f"test_images must be >= 1 or null, got {record['test_images']}")
    if record["peak_memory_bytes"] is not None and record["peak_memory_bytes"] < 0:
        errors.append(f"peak_memory_bytes must be >= 0 or null, got {record['peak_memory_bytes']}")

    hardware = record["hardware"]
    if not {"device", "count"} <= set(hardware):
        errors.append("hardware must give 'device' and 'count'")
    else:
        errors += [f"hardware has an unknown key {str(k)[:80]!r}" for k in hardware if k not in ("device", "count")]
        problem = plain_text_problem(hardware["device"])
        if problem:
            errors.append(f"hardware device {problem}: {str(hardware['device'])[:80]!r}")
        if not _is_int(hardware["count"]) or hardware["count"] < 1:
            errors.append(f"hardware count must be an integer >= 1, got {hardware['count']!r:.80}")

    schedule = record["schedule"]
    missing = [key for key in SCHEDULE_KEYS if key not in schedule]
    if missing:
        errors.append(f"schedule must give {', '.join(SCHEDULE_KEYS)}; missing {', '.join(missing)}")
    else:
        errors += [f"schedule has an unknown key {str(key)[:80]!r}" for key in schedule if key not in SCHEDULE_KEYS]
        s = schedule
        if s["schedule"] not in SCHEDULES:
            errors.append(f"schedule.schedule must be one of {', '.join(SCHEDULES)}, got {str(s['schedule'])[:80]!r}")
        if not (_is_number(s["lr"]) and s["lr"] > 0):
            errors.append(f"schedule.lr must be a finite number > 0, got {s['lr']!r:.80}")
        if not (_is_int(s["batch_size"]) and s["batch_size"] >= 1):
            errors.append(f"schedule.batch_size must be an integer >= 1, got {s['batch_size']!r:.80}")
        if not (_is_number(s["warmup_epochs"]) and s["warmup_epochs"] >= 0):
            errors.append(f"schedule.warmup_epochs must be a finite number >= 0, got {s['warmup_epochs']!r:.80}")
        if not (isinstance(s["milestones"], list) and all(_is_number(m) and 0 <= m <= 1 for m in s["milestones"])):
            errors.append(f"schedule.milestones must be a list of fractions in [0, 1], got {s['milestones']!r:.80}")
        if not isinstance(s["nesterov"], bool):
            errors.append(f"schedule.nesterov must be true or false, got {s['nesterov']!r:.80}")
        if not (_is_number(s["weight_decay"]) and s["weight_decay"] >= 0):
            errors.append(f"schedule.weight_decay must be a finite number >= 0, got {s['weight_decay']!r:.80}")
    _check_json_value("model_kwargs", record["model_kwargs"], errors)
    return errors


# --------------------------------------------------------------------------
# Version 1
# --------------------------------------------------------------------------


def upgrade_v1(record: dict, file_name: str) -> dict:
    """A version-1 record (from the file ``file_name``) as a current one; its numbers are kept as they are.

    Version 1 had no ``run_id`` and no ``precision``. The run id becomes the
    file's name without ``.json`` (each v1 file was one run). Mixed precision
    was CUDA-only when version-1 records were written, so a record whose
    hardware device is a CPU trained in fp32; for any other device the
    precision is unknown and the record is refused."""
    device = str(record.get("hardware", {}).get("device", ""))
    if not device.startswith("CPU"):
        raise LedgerError(
            f"{file_name} is a version-1 ledger record from {device!r}, which does not say its numeric precision "
            "(bf16 autocast was on by default on CUDA); only CPU records (fp32) are upgraded on read. "
            "Re-run it to write a version-2 record, or move the file out of the ledger folder."
        )
    upgraded = {**record, "schema_version": 2, "run_id": Path(file_name).stem, "precision": "fp32"}
    return {name: upgraded[name] for name in _fields_of(2) if name in upgraded}


def upgrade(record: dict, file_name: str) -> dict:
    """An older record (from the file ``file_name``) as a current one; its numbers are kept as they are.

    Version 1 goes through ``upgrade_v1``; versions 1 and 2 did not record the
    number of test images, so ``test_images`` becomes null (unknown)."""
    if record["schema_version"] == 1:
        record = upgrade_v1(record, file_name)
    if record["schema_version"] == 2:
        record = {**record, "schema_version": SCHEMA_VERSION, "test_images": None}
    return {name: record[name] for name in SCHEMA if name in record}


def _run_id_of(record: Any, file_name: str) -> str | None:
    """The run a stored record belongs to (a version-1 record: its file name), or None when it says nothing."""
    if not isinstance(record, dict):
        return None
    if record.get("schema_version") == 1:
        return Path(file_name).stem
    run_id = record.get("run_id")
    return run_id if isinstance(run_id, str) else None


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def record_name(record: dict) -> str:
    """The record's file name: model, data, profile, kind, seed, time and the start of its run id.

    Always a plain file name (letters, digits, '_', '.', '-'; no folder, no
    leading dot); raises ``LedgerError`` for a record whose fields would make
    anything else (validation refuses such records first)."""
    stamp = re.sub(r"[^0-9T]", "", str(record["created"]))[:15]
    data = "cifar100" if str(record["dataset"]).startswith("CIFAR-100") else "cifar10"
    run = re.sub(r"[^A-Za-z0-9]", "", str(record.get("run_id", "")))[:8]
    name = f"{record['model']}-{data}-{record['profile']}-{record['kind']}-seed{record['seed']}-{stamp}"
    name += (f"-{run}" if run else "") + ".json"
    if not _FILE_NAME.fullmatch(name) or ".." in name:
        raise LedgerError(f"refusing the ledger file name {name[:120]!r}: it is not a plain file name")
    return name


class _NameTaken(Exception):
    """The chosen file name appeared while the record was being written."""


def _existing_record_of(folder: Path, run_id: str) -> Path | None:
    """The file in ``folder`` that already records ``run_id``, if any (links and unreadable files are skipped)."""
    for path in sorted(folder.glob("*.json")):
        try:
            if path.is_symlink() or not path.is_file():
                continue
            stored = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if _run_id_of(stored, path.name) == run_id:
            return path
    return None


def write_record(record: dict, folder: str | Path = "results") -> Path:
    """Write ``record`` as a new file ``folder/<record_name>.json`` and return its path.

    Refuses (``LedgerError``, nothing written) an invalid record or one whose
    run already has a record in ``folder``. The file is written through a
    fresh temporary file in ``folder`` and renamed into place
    (``resnotes.files.atomic_write``), so a planted link is never followed;
    an existing file is never replaced: a taken name gets a ``-1``, ``-2``
    ... suffix."""
    from .files import atomic_write

    errors = validate(record)
    if errors:
        raise LedgerError("invalid ledger record: " + "; ".join(errors))
    if record["schema_version"] != SCHEMA_VERSION:
        raise LedgerError(f"invalid ledger record: write_record writes schema_version {SCHEMA_VERSION} records only")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    existing = _existing_record_of(folder, record["run_id"])
    if existing is not None:
        raise LedgerError(
            f"run {record['run_id']} already has a ledger record, {existing}; nothing was written "
            "(a re-run of a finished run adds no new result)"
        )
    name = record_name(record)
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    data = text.encode("utf-8")

    def refuse_if_taken(path: Path):
        def check() -> None:
            if os.path.lexists(path):
                raise _NameTaken
        return check

    for counter in range(1000):
        candidate = name if counter == 0 else name[: -len(".json")] + f"-{counter}.json"
        path = base / candidate
        if os.path.lexists(path):
            continue  # never replace a file, nor write through a link planted at this name
        if path.parent != base or path.resolve().parent != base:
            raise LedgerError(f"refusing to write {candidate!r}: it would land outside {base}; nothing was written")
        try:
            atomic_write(path, lambda file: file.write(data), before_replace=refuse_if_taken(path))
        except _NameTaken:
            continue
        return folder / candidate
    raise LedgerError(f"no free file name for {name} in {folder}; nothing was written")


def load_ledger(folder: str | Path = "results") -> list[dict]:
    """Every record in ``folder``, validated, oldest first; an invalid file raises ``LedgerError``, naming it.

    Older records are upgraded on read (``upgrade``). Each row also
    has ``file``, the record's file name. Two records of one run are refused."""
    rows = []
    seen: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LedgerError(f"{path} is not valid JSON: {exc}") from exc
        errors = validate(record)
        if errors:
            raise LedgerError(f"{path} is not a valid ledger record: " + "; ".join(errors))
        if record["schema_version"] != SCHEMA_VERSION:
            version = record["schema_version"]
            record = upgrade(record, path.name)
            errors = validate(record)
            if errors:
                raise LedgerError(f"{path} is a version-{version} record that cannot be upgraded: " + "; ".join(errors))
        if record["run_id"] in seen:
            raise LedgerError(f"{path} and {seen[record['run_id']]} both record run {record['run_id']}; keep one")
        seen[record["run_id"]] = path.name
        rows.append({**record, "file": path.name})
    return sorted(rows, key=lambda r: datetime.datetime.fromisoformat(r["created"].replace("Z", "+00:00")))


def default_folder() -> Path:
    """The project's ``results/``: the folder above a chapter's ``book/``, or the current one's."""
    for candidate in (Path("../results"), Path("results")):
        if candidate.is_dir():
            return candidate
    return Path("results")


def record_runs(runs: dict, built_from: dict[str, tuple[str, dict]], folder: str | Path | None = None) -> list[Path]:
    """Add a chapter's finished training runs to the results ledger; ``smoke`` runs are not recorded.

    ``runs`` maps a run's name to its ``History``, and ``built_from`` to the
    registry name and keyword arguments that rebuild its model
    (``("pyramidnet110_a48", {"depth": 32})``), so that a record names a model
    anyone can build again. Returns the files written."""
    from .models import count_flops, create_model

    profile = next(iter(runs.values())).config["profile"]
    if profile == "smoke":
        print("smoke runs are not added to the results ledger")
        return []
    folder = default_folder() if folder is None else Path(folder)
    written = []
    for name, history in runs.items():
        model_name, model_kwargs = built_from[name]
        history = type(history)(**{**history.to_dict(), "meta": {**history.meta, "model": model_name}})
        flops = count_flops(create_model(model_name, **model_kwargs))
        record = make_record(history, model_kwargs=model_kwargs, flops_per_image=flops)
        written.append(write_record(record, folder))
    print(f"added {len(written)} run{'s' if len(written) != 1 else ''} to the results ledger ({folder.name}/)")
    return written
