"""What a results record holds, and its checks.

A record says what was trained (model and arguments, parameters, FLOPs), on
what (dataset, named exactly), how (profile, epochs, schedule, seed, numeric
precision), where (hardware, torch version, git commit) and with what outcome
(wall-clock time, images/s, best validation accuracy and the test accuracy of
that checkpoint). ``SCHEMA`` names every field, says what it holds, and checks
it: numbers finite and in range, every string of a fixed form or plain text
without markup characters, since the book renders records as tables.
``make_record`` builds one from a finished run's ``History``; ``validate`` lists
everything wrong with one. The files themselves are ``resnotes.ledger``'s.
"""

from __future__ import annotations

import datetime
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 4
# Fields a version-4 record has and an older (version-3) record lacks.
SINCE_VERSION_4 = ("test_set", "test_correct")
MAX_TEXT = 200  # characters of a free-text string (the hardware's name, say)
KINDS = ("train", "bench")
PROFILES = ("smoke", "demo", "fast", "paper", "custom")
PRECISIONS = ("bf16", "fp16", "fp32")
SCHEDULES = ("step", "cosine", "onecycle")
SCHEDULE_KEYS = (
    "schedule",
    "lr",
    "batch_size",
    "warmup_epochs",
    "milestones",
    "nesterov",
    "weight_decay",
)
_MARKUP = set("<>|`")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class LedgerError(ValueError):
    """A record refused (invalid, a second record of a run, an unsafe name or file)
    or a ledger that cannot be read; the message says why and what was written."""


# ----------------------------------------------------------------- the record


def plain_text_problem(value: Any, max_length: int = MAX_TEXT) -> str | None:
    """Why ``value`` is not plain text a table can show as it is, or None: a
    non-empty string of printable characters, on one line, without ``< > |`` or
    backticks and without surrounding spaces."""
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(
    low: float, high: float = math.inf, *, above: bool = False, integer: bool = False
):
    def check(v):
        ok = _is_int(v) if integer else (_is_int(v) or isinstance(v, float))
        finite = ok and (_is_int(v) or math.isfinite(v))  # an int of 400 digits too
        if finite and (v > low if above else v >= low) and v <= high:
            return None
        kind = "an integer" if integer else "a finite number"
        bound = f"> {low:g}" if above else f">= {low:g}"
        return (
            f"must be {kind} {bound}"
            + (f" and <= {high:g}" if high < math.inf else "")
            + f", got {v!r:.80}"
        )

    return check


def _one_of(choices: tuple[str, ...]):
    return lambda v: (
        None if v in choices else f"must be one of {', '.join(choices)}, got {v!r:.80}"
    )


def _pattern(regex: str, rule: str):
    compiled = re.compile(regex)
    ok = lambda v: isinstance(v, str) and compiled.fullmatch(v)  # noqa: E731
    return lambda v: None if ok(v) else f"must be {rule}, got {v!r:.80}"


def _or_null(check):
    return lambda v: None if v is None else check(v)


def _json_problem(where: str, value: Any, depth: int = 0) -> str | None:
    """Finite numbers, plain-text strings and keys, nesting of at most 4 levels."""
    if depth > 4:
        return f"{where} is nested too deeply"
    if value is None or isinstance(value, bool) or _is_int(value):
        return None
    if isinstance(value, float):
        return (
            None
            if math.isfinite(value)
            else f"{where} must be a finite number, got {value}"
        )
    if isinstance(value, str):
        problem = plain_text_problem(value)
        return f"{where} {problem}: {value[:80]!r}" if problem else None
    items = enumerate(value) if isinstance(value, list) else None
    if isinstance(value, dict):
        bad = [k for k in value if not (isinstance(k, str) and _KEY.fullmatch(k))]
        if bad:
            return f"{where} has a key that is not a plain name: {str(bad[0])[:80]!r}"
        items = value.items()
    if items is None:
        return f"{where} must be a JSON value, got {type(value).__name__}"
    for key, item in items:
        problem = _json_problem(f"{where}.{key}", item, depth + 1)
        if problem:
            return problem
    return None


def _schedule(s: Any) -> str | None:
    if not isinstance(s, dict) or set(s) != set(SCHEDULE_KEYS):
        return f"must give exactly {', '.join(SCHEDULE_KEYS)}"
    milestones = s["milestones"]
    problems = [
        _one_of(SCHEDULES)(s["schedule"]),
        _number(0, above=True)(s["lr"]),
        _number(1, integer=True)(s["batch_size"]),
        _number(0)(s["warmup_epochs"]),
        None if isinstance(s["nesterov"], bool) else "nesterov must be true or false",
        _number(0)(s["weight_decay"]),
        None
        if isinstance(milestones, list)
        and not any(_number(0, 1)(m) for m in milestones)
        else "milestones must be a list of fractions in [0, 1]",
    ]
    return next((p for p in problems if p), None)


def _hardware(h: Any) -> str | None:
    if not isinstance(h, dict) or set(h) != {"device", "count"}:
        return "must give 'device' and 'count'"
    problem = plain_text_problem(h["device"])
    return f"device {problem}" if problem else _number(1, integer=True)(h["count"])


def _created(v: Any) -> str | None:
    rule = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})"
    problem = _pattern(rule, "an ISO 8601 time with its UTC offset")(v)
    if problem is None:
        try:
            when = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return f"is not a valid time: {v!r}"
        now = datetime.datetime.now(datetime.timezone.utc)
        if when > now + datetime.timedelta(days=1):
            return f"is in the future: {v!r}"
        if when.year < 2015:
            return f"is before any of this book's networks existed: {v!r}"
    return problem


def _fraction(v: Any) -> str | None:
    if _number(0, 1)(v) is None:
        return None
    return f"must be a fraction in [0, 1], got {v!r:.80}"


# Every field a record has: (what it holds, its check). Every field is required.
SCHEMA: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    "schema_version": (
        "4, this schema's version (3: a record written before test_set and "
        "test_correct)",
        lambda v: None if v in (3, 4) and _is_int(v) else "must be 3 or 4",
    ),
    "run_id": (
        "the training run: a hex id made when it starts, kept across resumes",
        _pattern(
            r"[A-Za-z0-9][A-Za-z0-9_.-]{7,127}",
            "8 to 128 letters, digits, '_', '.' or '-'",
        ),
    ),
    "kind": ("'train' (a training run) or 'bench' (a short timed run)", _one_of(KINDS)),
    "model": (
        "the registered model name",
        _pattern(r"[a-z0-9_]{1,64}", "a registered model name ([a-z0-9_]+)"),
    ),
    "model_kwargs": (
        "the factory arguments",
        lambda v: (
            None
            if isinstance(v, dict) and not _json_problem("model_kwargs", v)
            else _json_problem("model_kwargs", v) or "must be an object"
        ),
    ),
    "params": ("trainable parameters", _number(1, integer=True)),
    "flops_per_image": (
        "forward FLOPs for one 32x32 image (a multiply-add is 2)",
        _number(1, integer=True),
    ),
    "dataset": (
        "'CIFAR-10' or 'CIFAR-100', then optionally a plain description in parentheses",
        _pattern(
            r"CIFAR-100?(?: \([A-Za-z0-9][A-Za-z0-9 .,-]{0,79}\))?",
            "'CIFAR-10' or 'CIFAR-100' with an optional ' (description)' (dataset must "
            "name a CIFAR dataset exactly)",
        ),
    ),
    "train_images": (
        "training images (after the validation split)",
        _number(1, integer=True),
    ),
    "profile": ("the run profile", _one_of(PROFILES)),
    "epochs": ("epochs trained", _number(1, integer=True)),
    "schedule": ("the learning-rate schedule: " + ", ".join(SCHEDULE_KEYS), _schedule),
    "seed": (
        "seed for weights, data order and augmentation, below 2**63",
        _number(0, 2**63 - 1, integer=True),
    ),
    "precision": ("the precision it trained in", _one_of(PRECISIONS)),
    "hardware": (
        "device: its name (plain text); count: processes or devices",
        _hardware,
    ),
    "torch": (
        "torch version",
        _pattern(
            r"[0-9]+\.[0-9]+[0-9A-Za-z.+_-]{0,40}",
            "a torch version such as 2.14.1+cu130",
        ),
    ),
    "git_commit": (
        "commit of the code (hex), '-dirty' if changed, or 'unknown'",
        _pattern(
            r"[0-9a-f]{7,64}(?:-dirty)?|unknown",
            "a hex commit, optionally with -dirty, or 'unknown'",
        ),
    ),
    "wall_clock_s": (
        "seconds of training and validation (the final test evaluation excluded)",
        _number(0, above=True),
    ),
    "images_per_s": (
        "training images per second: the median over the epochs after the first "
        "(History.steady)",
        _number(0, above=True),
    ),
    "seconds_per_epoch": (
        "seconds of training per epoch: the median over the epochs after the "
        "first (History.steady)",
        _number(0, above=True),
    ),
    "best_val_acc": ("best validation accuracy, a fraction", _fraction),
    "test_acc": (
        "test accuracy of the checkpoint with the best validation accuracy",
        _fraction,
    ),
    "test_images": (
        "test images test_acc was measured on; null in the one record written "
        "before the field existed",
        _or_null(_number(1, integer=True)),
    ),
    "test_set": (
        "a fingerprint of the test images and labels, in order "
        "(CifarData.test_fingerprint): records pair only on the same test set",
        _pattern(r"[0-9a-f]{32}", "32 hex digits"),
    ),
    "test_correct": (
        "which test images the model got right, in test-set order: the bits "
        "packed big-endian (numpy.packbits) as hex (evidence.pack_correct)",
        _pattern(r"(?:[0-9a-f]{2}){1,1250000}", "hex digits, two per byte"),
    ),
    "peak_memory_bytes": (
        "peak device memory of training where measured, else null",
        _or_null(_number(0, integer=True)),
    ),
    "created": ("UTC time the record was written, ISO 8601", _created),
}


def validate(record: Any) -> list[str]:
    """Everything wrong with ``record``, one message each; an empty list means valid."""
    if not isinstance(record, dict):
        return [f"a record must be a JSON object, got {type(record).__name__}"]
    fields = dict(SCHEMA)
    if record.get("schema_version") == 3:
        for name in SINCE_VERSION_4:
            fields.pop(name)
    errors = [
        f"missing field {name!r} ({about})"
        for name, (about, _) in fields.items()
        if name not in record
    ]
    errors += [
        f"unknown field {str(name)[:80]!r}" for name in record if name not in fields
    ]
    for name, (_, check) in fields.items():
        if name in record:
            problem = check(record[name])
            if problem:
                errors.append(f"{name} {problem}")
    if not errors:
        errors += _consistency_problems(record)
    if not errors and "test_correct" in record:
        errors += _correct_bits_problems(record)
    return errors


def _consistency_problems(record: dict) -> list[str]:
    """What no run can produce: an unregistered model, an accuracy that is not a
    whole number of test images, or no test-image count after schema 3."""
    from .models import list_models

    errors = []
    if record["model"] not in list_models():
        errors.append(f"model {record['model']!r} is not a registered model")
    n = record["test_images"]
    if n is None and record["schema_version"] >= 4:
        errors.append("test_images must be a count (null only in schema 3)")
    if (
        n is not None
        and abs(record["test_acc"] * n - round(record["test_acc"] * n)) > 1e-6 * n
    ):
        errors.append(
            f"test_acc {record['test_acc']!r} is not a whole number of the "
            f"{n:,} test images"
        )
    return errors


def _correct_bits_problems(record: dict) -> list[str]:
    """The per-image bits must fit the test images and give the test accuracy."""
    from .evidence import unpack_correct

    n = record["test_images"]
    if n is None:
        return ["test_images must be a count when test_correct is present"]
    try:
        bits = unpack_correct(record["test_correct"], n)
    except ValueError as exc:
        return [f"test_correct {exc}"]
    right = int(bits.sum())
    if abs(right - record["test_acc"] * n) > 0.5:
        return [
            f"test_correct marks {right:,} of {n:,} images right, but test_acc "
            f"{record['test_acc']!r} says {record['test_acc'] * n:,.1f}"
        ]
    return []


def git_commit(cwd: str | Path | None = None) -> str:
    """The current commit, with '-dirty' if tracked files changed, or 'unknown'."""
    cwd = cwd or Path(__file__).resolve().parent
    run = lambda *a: subprocess.run(
        a, cwd=cwd, capture_output=True, text=True, timeout=10
    )  # noqa: E731
    try:
        commit = run("git", "rev-parse", "HEAD").stdout.strip()
        dirty = run(
            "git", "status", "--porcelain", "--untracked-files=no"
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit += "-dirty" if dirty else ""
    return commit if re.fullmatch(r"[0-9a-f]{7,64}(?:-dirty)?", commit) else "unknown"


def make_record(
    history,
    *,
    model_kwargs: dict,
    flops_per_image: int,
    kind: str = "train",
    world_size: int = 1,
    peak_memory_bytes: int | None = None,
) -> dict:
    """A ledger record from a finished run's ``History``; ``LedgerError`` when something
    is missing or the record would be invalid. Speeds are ``History.steady``."""
    config, meta = history.config, history.meta
    needed = (
        "model",
        "params",
        "dataset",
        "train_images",
        "hardware",
        "run_id",
        "precision",
    )
    missing = [key for key in needed if key not in meta]
    if missing:
        raise LedgerError(
            f"cannot make a ledger record: the run's history.meta lacks "
            f"{', '.join(map(repr, missing))}"
        )
    if not history.epochs or history.best_val_acc is None or history.test_acc is None:
        raise LedgerError(
            "cannot make a ledger record: the run has no finished epoch or no test "
            "accuracy"
        )
    if history.test_correct is None or "test_set" not in meta:
        raise LedgerError(
            "cannot make a ledger record: the run kept no per-image test correctness "
            "(history.test_correct) or no test-set fingerprint (meta['test_set'])"
        )
    import torch

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
        "torch": meta.get("torch") or torch.__version__,
        "git_commit": git_commit(),
        "wall_clock_s": float(history.seconds),
        "images_per_s": history.steady("images_per_s"),
        "seconds_per_epoch": history.steady("seconds"),
        "best_val_acc": float(history.best_val_acc),
        "test_acc": float(history.test_acc),
        "test_images": int(meta["test_images"]) if "test_images" in meta else None,
        "test_set": meta["test_set"],
        "test_correct": history.test_correct,
        "peak_memory_bytes": None
        if peak_memory_bytes is None
        else int(peak_memory_bytes),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    errors = validate(record)
    if errors:
        raise LedgerError("invalid ledger record: " + "; ".join(errors))
    return record
