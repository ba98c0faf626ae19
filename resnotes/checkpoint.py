"""A run's checkpoint: written so that a crash loses nothing, read so that nothing
in the file is trusted.

The run folder holds ``last.pt``, written after every epoch, and
``previous.pt``, the one before it. Each write goes to a fresh temporary file
that is renamed into place once complete (``resnotes.files.atomic_write``), so a
crash at any moment leaves at least one whole checkpoint.

Checkpoints load with ``torch.load(weights_only=True)``: they hold tensors and
plain values only. A file that names any Python object is refused as unsafe,
never unpickled, and the advice to load it with ``weights_only=False`` is never
given. Every field is then checked for its type and range, so that a file of the
right shape with the wrong content is named, not a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .files import atomic_write, remove_stale_temporaries, signals_deferred

CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"
FIELDS = (
    "model",
    "optimizer",
    "scaler",
    "epoch",
    "history",
    "best_state",
    "rng",
    "run",
)
AFRESH = (
    "or start afresh with --no-resume (resume=False), which keeps the old files aside"
)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, unsafe, or from another run."""


def save_checkpoint(folder: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``folder/last.pt``; the one it replaces becomes
    ``previous.pt``."""
    missing = [name for name in FIELDS if name not in state]
    if missing:
        raise ValueError(f"a checkpoint needs the fields {', '.join(missing)}")
    path = Path(folder) / CHECKPOINT_NAME
    remove_stale_temporaries(
        path
    )  # a killed run's; the run lock excludes other writers

    def keep_previous() -> None:
        if path.is_file():
            os.replace(path, path.with_name(PREVIOUS_NAME))

    # A signal during the write waits for it: the finished epoch is kept.
    with signals_deferred():
        return atomic_write(
            path, lambda file: torch.save(state, file), before_replace=keep_previous
        )


def find_checkpoint(folder: str | os.PathLike) -> Path | None:
    """``last.pt``, else ``previous.pt`` (a crash between two renames leaves only
    it)."""
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        path = Path(folder) / name
        if path.exists():
            return path
    return None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint safely; any problem raises ``CheckpointError`` naming the
    file and what to do. ``history`` and ``run`` come back parsed from JSON."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder, not a checkpoint: move it away, {AFRESH}."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (a damaged file fails in many ways)
        # Whatever torch's message says, the file's own opcodes tell a planted
        # pickle from a damaged one.
        unsafe = foreign_globals(path)
        if unsafe:
            raise CheckpointError(
                f"refusing to load {path}: it is unsafe. It names the Python object "
                f"{', '.join(dict.fromkeys(unsafe[:3]))}, which loading would call, "
                "and so could run code; a "
                "resnotes checkpoint holds only tensors and plain values. Delete it "
                f"if you did not write it, {AFRESH}."
            ) from None
        raise _corrupt(path, exc) from None
    problem = _field_problem(state)
    if problem:
        raise CheckpointError(
            f"{path} is not a resnotes checkpoint of this version ({problem}); "
            f"move it away, {AFRESH}."
        )
    return {
        **state,
        "history": json.loads(state["history"]),
        "run": json.loads(state["run"]),
    }


# What a torch.save of tensors and plain values imports while loading.
SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "builtins.set")
STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def foreign_globals(path: Path, limit: int = 64 * 2**20) -> list[str]:
    """The Python objects outside torch that the pickles in ``path`` would import,
    read from their opcodes (``pickletools``) without loading anything: every
    protocol (GLOBAL, STACK_GLOBAL and INST), torch's zip format and its legacy
    one of several pickles in a row."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                streams = [
                    archive.read(name)[:limit]
                    for name in archive.namelist()
                    if name.endswith(".pkl")
                ]
        else:
            streams = [path.read_bytes()[:limit]]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return []
    found = []
    for data in streams:
        stream = io.BytesIO(data)
        while stream.tell() < len(data):
            strings: list[str] = []
            try:
                for opcode, arg, _ in pickletools.genops(stream):
                    if opcode.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif opcode.name in STRING_OPCODES:
                        strings.append(str(arg))
            except Exception:  # noqa: BLE001 (the rest is not a pickle)
                break
    return [name for name in found if not name.startswith(SAFE_GLOBAL_PREFIXES)]


def _corrupt(path: Path, exc: Exception) -> CheckpointError:
    previous = path.with_name(PREVIOUS_NAME)
    kept = (
        f" The previous checkpoint, {previous}, was kept: rename it to "
        f"{CHECKPOINT_NAME} to resume from it,"
        if previous.is_file() and previous != path
        else " Delete it,"
    )
    # torch's own message may advise weights_only=False: only its kind is shown.
    return CheckpointError(
        f"cannot read the checkpoint {path} ({type(exc).__name__}); it is truncated or "
        f"corrupt.{kept} {AFRESH}."
    )


def _is_tensor_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _json_object(text: Any) -> dict | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _field_problem(state: Any) -> str | None:
    """Why ``state`` is not a checkpoint this version wrote, or None."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dictionary"
    missing = [name for name in FIELDS if name not in state]
    if missing:
        return f"missing {', '.join(missing)}"
    epoch = state["epoch"]
    if type(epoch) is not int or epoch < 1:
        return f"'epoch' must be an integer >= 1, got {epoch!r:.40}"
    for name in ("model", "best_state"):
        if not _is_tensor_dict(state[name]):
            return f"'{name}' must map names to tensors"
    for name in ("optimizer", "scaler", "rng"):
        if not isinstance(state[name], dict):
            return f"'{name}' must be a dictionary, got {type(state[name]).__name__}"
    history, run = _json_object(state["history"]), _json_object(state["run"])
    if history is None or run is None:
        return f"'{'history' if history is None else 'run'}' must be a JSON object"
    return _history_problem(history, epoch) or _rng_problem(state["rng"])


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


# What every epoch's record holds (resnotes.train): the loop reads them back.
EPOCH_NUMBERS = (
    "epoch",
    "train_loss",
    "train_acc",
    "lr",
    "seconds",
    "images_per_s",
    "val_acc",
    "eval_seconds",
)


def _history_problem(history: dict, epoch: int) -> str | None:
    keys = ("meta", "epochs", "best_epoch", "best_val_acc", "seconds")
    if any(key not in history for key in keys) or not isinstance(
        history["epochs"], list
    ):
        return "'history' lacks a run's meta, epochs or best epoch"
    if len(history["epochs"]) != epoch:
        return f"'history' has {len(history['epochs'])} epochs, 'epoch' says {epoch}"
    if not isinstance(history["meta"], dict):
        return "'history' meta must be a JSON object"
    for number, record in enumerate(history["epochs"], start=1):
        if not isinstance(record, dict) or not all(
            _is_number(record.get(key)) for key in EPOCH_NUMBERS
        ):
            return f"'history' epoch {number} lacks one of {', '.join(EPOCH_NUMBERS)}"
    best = history["best_epoch"]
    if type(best) is not int or not 1 <= best <= epoch:
        return f"'history' best_epoch must be an epoch from 1 to {epoch}"
    if not _is_number(history["best_val_acc"]) or not _is_number(history["seconds"]):
        return "'history' best_val_acc and seconds must be numbers"
    if not 0 <= history["best_val_acc"] <= 1:  # NaN fails this too
        return (
            "'history' best_val_acc must be a fraction in [0, 1], got "
            f"{history['best_val_acc']!r}"
        )
    return None


def _rng_problem(rng: dict) -> str | None:
    """The random generators' states, shaped as ``runtime.rng_state`` writes them."""
    python, numpy = rng.get("python"), rng.get("numpy")
    fits = (
        isinstance(rng.get("torch"), torch.Tensor)
        and isinstance(python, dict)
        and type(python.get("version")) is int
        and isinstance(python.get("internal"), torch.Tensor)
        and (python.get("gauss") is None or _is_number(python.get("gauss")))
        and isinstance(numpy, dict)
        and isinstance(numpy.get("key"), torch.Tensor)
        and all(type(numpy.get(k)) is int for k in ("pos", "has_gauss"))
        and _is_number(numpy.get("gauss"))
        and isinstance(rng.get("cuda", []), list)
        and all(isinstance(t, torch.Tensor) for t in rng.get("cuda", []))
    )
    return None if fits else "'rng' is not the random generators' state"


def check_same_run(path: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse to resume when what the run computes would change.

    ``saved`` and ``now`` are run identities (``resnotes.runs.run_identity``):
    the model, its parameter count, the data and its fingerprint, the process
    count, the precision that runs, and every setting that changes the result.
    """
    from .config import RESUMABLE_CHANGES

    differences = []
    for key in sorted(set(saved) | set(now)):
        if key != "config" and saved.get(key) != now.get(key):
            differences.append(
                f"{key}: {saved.get(key)!r} in the checkpoint, {now.get(key)!r} now"
            )
    old_config, new_config = saved.get("config") or {}, now.get("config") or {}
    for key in new_config:
        if key not in RESUMABLE_CHANGES and old_config.get(key) != new_config[key]:
            differences.append(
                f"{key}: {old_config.get(key)!r} in the checkpoint, "
                f"{new_config[key]!r} now"
            )
    if differences:
        listed = "\n  ".join(differences)
        raise CheckpointError(
            f"{path} belongs to a different run; resuming would mix two runs. "
            f"What differs:\n  {listed}\n"
            "Run the original command to resume it, use another --out folder, "
            "or start afresh with --no-resume (the old files are kept aside)."
        )
