"""The results ledger: one JSON file per finished run (``resnotes.records`` says what
a record holds).

Each record names its training run (``run_id``), and a folder holds at most one
record per run. The book renders these files and nothing in one is trusted: a
record is read only if it is a plain file (not a link) of at most ``MAX_BYTES``,
parses as JSON, and passes ``validate``. Every problem is a ``LedgerError``
naming the file.

Where the ledger is: a checkout's ``results/``; in an installed package, the
copy the wheel carries (``resnotes/results``). A reader's own runs go to the
checkout's ``results/``, or, outside a checkout, to ``$RESNOTES_RESULTS`` or
``./results``; ``load_ledger()`` reads both.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from typing import Any

from .records import SCHEMA, SCHEMA_VERSION, LedgerError, make_record, validate

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "LedgerError",
    "load_ledger",
    "make_record",
    "read_record",
    "record_name",
    "record_runs",
    "validate",
    "write_record",
]

MAX_BYTES = 64 * 1024  # a record is about 1.3 KB
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.json")


# ----------------------------------------------------------------- files


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are all different (json keeps the last of two)."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {str(key)[:60]!r} appears twice")
        seen[key] = value
    return seen


def read_record(path: Path) -> dict:
    """The validated record in ``path``; ``LedgerError`` naming the file for anything
    else."""
    path = Path(path)
    if path.is_symlink():
        raise LedgerError(f"{path} is a link; a ledger record must be a plain file")
    if not path.is_file():
        raise LedgerError(f"{path} is not a file; a ledger record must be a plain file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise LedgerError(
            f"{path} holds {size:,} bytes; a ledger record is at most {MAX_BYTES:,}"
        )
    try:
        record = json.loads(
            path.read_bytes().decode("utf-8"), object_pairs_hook=_no_duplicate_keys
        )
    except (
        ValueError,
        RecursionError,
        OSError,
    ) as exc:  # bad JSON, huge integers, nesting
        raise LedgerError(
            f"{path} is not a readable JSON record ({type(exc).__name__}: "
            f"{str(exc)[:120]})"
        ) from None
    errors = validate(record)
    if errors:
        raise LedgerError(f"{path} is not a valid ledger record: " + "; ".join(errors))
    return record


def record_name(record: dict) -> str:
    """The record's file name: model, data, profile, kind, seed, time and the start of
    its run id; always a plain file name, else ``LedgerError``."""
    stamp = re.sub(r"[^0-9T]", "", str(record["created"]))[:15]
    data = "cifar100" if str(record["dataset"]).startswith("CIFAR-100") else "cifar10"
    run = re.sub(r"[^A-Za-z0-9]", "", str(record.get("run_id", "")))[:8]
    r = record
    name = f"{r['model']}-{data}-{r['profile']}-{r['kind']}-seed{r['seed']}-{stamp}"
    name += (f"-{run}" if run else "") + ".json"
    if not _FILE_NAME.fullmatch(name) or ".." in name:
        raise LedgerError(
            f"refusing the ledger file name {name[:120]!r}: it is not a plain file name"
        )
    return name


def load_ledger(folder: str | Path | None = None) -> list[dict]:
    """Every record in ``folder`` (default: ``ledger_folders()``), oldest first, each
    with ``file`` (its file name) and ``origin`` ('book' or 'yours'). Any file that
    is not a valid record, or two records of one run, raise ``LedgerError``."""
    folders = ledger_folders() if folder is None else [(Path(folder), "book")]
    rows, seen = [], {}
    for place, origin in folders:
        for path in sorted(Path(place).glob("*.json")):
            record = read_record(path)
            if record["run_id"] in seen:
                raise LedgerError(
                    f"{path} and {seen[record['run_id']]} both record run "
                    f"{record['run_id']}; keep one"
                )
            seen[record["run_id"]] = path.name
            rows.append({**record, "file": path.name, "origin": origin})
    return sorted(
        rows,
        key=lambda r: datetime.datetime.fromisoformat(
            r["created"].replace("Z", "+00:00")
        ),
    )


def write_record(record: dict, folder: str | Path = "results") -> Path:
    """Write ``record`` as a new file in ``folder``; return its path.

    Refuses (``LedgerError``, nothing written) an invalid record or one whose run
    already has a record there. The file is written through a fresh temporary
    file and a rename (``resnotes.files.atomic_write``), never over an existing
    file or through a link: a taken name gets a ``-1``, ``-2`` ... suffix."""
    from . import files

    errors = validate(record)
    if errors:
        raise LedgerError("invalid ledger record: " + "; ".join(errors))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    for path in sorted(folder.glob("*.json")):  # links and folders too: see read_record
        if read_record(path)["run_id"] == record["run_id"]:
            raise LedgerError(
                f"run {record['run_id']} already has a ledger record, {path}; nothing "
                f"was written "
                "(a re-run of a finished run adds no new result)"
            )
    name, data = (
        record_name(record),
        (json.dumps(record, indent=2, allow_nan=False) + "\n").encode(),
    )
    for counter in range(1000):
        candidate = name if counter == 0 else f"{name[:-5]}-{counter}.json"
        path = base / candidate
        if os.path.lexists(path):
            continue  # never replace a file, nor write through a link planted here
        if path.parent != base or path.resolve().parent != base:
            raise LedgerError(
                f"refusing to write {candidate!r}: it would land outside {base}; "
                f"nothing was written"
            )
        files.atomic_write(path, lambda file: file.write(data))
        return folder / candidate
    raise LedgerError(f"no free file name for {name} in {folder}; nothing was written")


# ----------------------------------------------------------------- where the ledger is


def checkout_folder() -> Path | None:
    """``results/`` of the checkout the package runs from, or None (an installed
    wheel)."""
    root = Path(__file__).resolve().parent.parent
    return (
        root / "results"
        if (root / "pyproject.toml").is_file() and (root / "results").is_dir()
        else None
    )


def packaged_folder() -> Path | None:
    """The copy of the committed ledger that the wheel carries, if any."""
    from importlib.resources import files

    folder = Path(str(files("resnotes").joinpath("results")))
    return folder if folder.is_dir() else None


def yours_folder() -> Path:
    """Where a reader's own runs are recorded: the checkout's ``results/``, else
    ``$RESNOTES_RESULTS``, else ``./results``."""
    return checkout_folder() or Path(os.environ.get("RESNOTES_RESULTS") or "results")


def ledger_folders() -> list[tuple[Path, str]]:
    """(folder, origin) to read: the book's committed runs, then the reader's own."""
    book = checkout_folder() or packaged_folder()
    folders = [(book, "book")] if book is not None else []
    yours = yours_folder()
    if yours.is_dir() and (book is None or yours.resolve() != book.resolve()):
        folders.append((yours, "yours"))
    return folders


def record_runs(
    runs: dict, built_from: dict[str, tuple[str, dict]], folder=None
) -> list[Path]:
    """Add a chapter's finished runs to the ledger (``yours_folder()`` by default);
    ``smoke`` runs are not recorded.

    ``runs`` maps a run's name to its ``History``, and ``built_from`` to the
    registry name and keyword arguments that rebuild its model
    (``("pyramidnet110_a48", {"depth": 32})``), so that a record names a model
    anyone can build again. Returns the files written."""
    from .history import History
    from .models import count_flops, create_model

    profile = next(iter(runs.values())).config["profile"]
    if profile == "smoke":
        print("smoke runs are not added to the results ledger")
        return []
    folder = yours_folder() if folder is None else Path(folder)
    written = []
    for name, history in runs.items():
        model_name, model_kwargs = built_from[name]
        classes = history.meta.get("num_classes", 10)  # histories before 0.3: 10
        model_kwargs = {**model_kwargs, "num_classes": classes}
        history = History(
            **{**history.to_dict(), "meta": {**history.meta, "model": model_name}}
        )
        flops = count_flops(create_model(model_name, **model_kwargs))
        record = make_record(history, model_kwargs=model_kwargs, flops_per_image=flops)
        written.append(write_record(record, folder))
    where = folder.name if folder == checkout_folder() else folder
    print(
        f"added {len(written)} run{'s' if len(written) != 1 else ''} to the results "
        f"ledger ({where}/)"
    )
    return written


def train_and_record(arms: dict, data, config, record=True, seed: int = 0):
    """Train each arm of a comparison the same way, and record the runs.

    ``arms`` maps a run's name to (registry name, keyword arguments). Every arm
    starts from ``torch.manual_seed(seed)``, so the arms differ only in their
    network; ``fit`` then fixes the data order and augmentation by
    ``config.seed``. With a ``config.checkpoint_dir``, each arm gets its own run
    folder inside it, named after the arm. ``record`` says which runs join the
    results ledger: all of them (True), none (False) or the names listed. Returns
    the histories and the trained models, by name."""
    import dataclasses

    import torch

    from .models import create_model
    from .train import fit

    runs, trained = {}, {}
    for name, (registry_name, kwargs) in arms.items():
        torch.manual_seed(seed)
        trained[name] = create_model(registry_name, **kwargs)
        arm_config = config
        if config.checkpoint_dir is not None:
            folder = Path(config.checkpoint_dir) / name
            arm_config = dataclasses.replace(config, checkpoint_dir=str(folder))
        runs[name] = fit(trained[name], data, arm_config, name=name)
    keep = list(arms) if record is True else [] if record is False else list(record)
    if keep:
        record_runs({name: runs[name] for name in keep}, arms)
    return runs, trained
