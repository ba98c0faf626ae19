"""A run's folder: its checkpoint (saved and loaded side by side), its lock, and
the check that a resumed run is the same run.

The folder holds ``last.pt``, written after every epoch, and ``previous.pt``,
the one before it. Each write goes to a fresh temporary file that is renamed
into place once complete (``resnotes.files.atomic_write``), so a crash at any
moment leaves at least one whole checkpoint. Checkpoints load with
``torch.load(weights_only=True)``: they hold tensors and plain values only, and
a file that holds anything else is refused, never unpickled.
"""

from __future__ import annotations

import datetime
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .files import atomic_write, remove_stale_temporaries

CHECKPOINT_NAME = "last.pt"
PREVIOUS_NAME = "previous.pt"
LOCK_NAME = "lock"
FIELDS = ("model", "optimizer", "scaler", "epoch", "history", "best_state", "rng", "run")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, unsafe, or from another run."""


class RunLockedError(RuntimeError):
    """Another process is training into the same run folder."""


def save_checkpoint(folder: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``folder/last.pt``; the checkpoint it replaces becomes ``previous.pt``."""
    missing = [name for name in FIELDS if name not in state]
    if missing:
        raise ValueError(f"a checkpoint needs the fields {', '.join(missing)}")
    path = Path(folder) / CHECKPOINT_NAME
    remove_stale_temporaries(path)  # from a run that was killed while writing (the run lock excludes others)

    def keep_previous() -> None:
        if path.is_file():
            os.replace(path, path.with_name(PREVIOUS_NAME))

    return atomic_write(path, lambda file: torch.save(state, file), before_replace=keep_previous)


def find_checkpoint(folder: str | os.PathLike) -> Path | None:
    """``last.pt``, else ``previous.pt`` (a crash between the two renames leaves only it), else None."""
    for name in (CHECKPOINT_NAME, PREVIOUS_NAME):
        path = Path(folder) / name
        if path.exists():
            return path
    return None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint safely; any problem raises ``CheckpointError`` naming the file and what to do."""
    path = Path(path)
    afresh = "or start afresh with --no-resume (resume=False), which keeps the old files aside"
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint: move it away, {afresh}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise CheckpointError(
                f"refusing to load {path}: it holds objects other than tensors and plain values, which "
                f"torch.load(weights_only=True) will not unpickle. Delete it if you did not write it, {afresh}."
            ) from exc
        raise _corrupt(path, exc, afresh) from exc
    except Exception as exc:
        raise _corrupt(path, exc, afresh) from exc
    if not isinstance(state, dict) or any(name not in state for name in FIELDS):
        missing = [n for n in FIELDS if not isinstance(state, dict) or n not in state]
        raise CheckpointError(
            f"{path} is not a resnotes checkpoint of this version (missing {', '.join(missing)}); "
            f"move it away, {afresh}."
        )
    return state


def _corrupt(path: Path, exc: Exception, afresh: str) -> CheckpointError:
    previous = path.with_name(PREVIOUS_NAME)
    kept = (
        f" The previous checkpoint, {previous}, was kept: rename it to {CHECKPOINT_NAME} to resume from it,"
        if previous.is_file() and previous != path
        else " Delete it,"
    )
    reason = str(exc).splitlines()[0][:200] if str(exc) else ""
    return CheckpointError(
        f"cannot read the checkpoint {path} ({type(exc).__name__}: {reason}); it is truncated or corrupt."
        f"{kept} {afresh}."
    )


def check_same_run(path: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse to resume when what the run computes would change.

    ``saved`` and ``now`` are run descriptions (``run_identity``): the model,
    its parameter count, the data, the process count, the precision and every
    setting of the config that changes the result.
    """
    from .config import RESUMABLE_CHANGES

    differences = []
    for key in sorted(set(saved) | set(now)):
        if key == "config":
            continue
        if saved.get(key) != now.get(key):
            differences.append(f"{key}: {saved.get(key)!r} in the checkpoint, {now.get(key)!r} now")
    old_config, new_config = saved.get("config", {}), now.get("config", {})
    for key in new_config:
        if key not in RESUMABLE_CHANGES and old_config.get(key) != new_config[key]:
            differences.append(f"{key}: {old_config.get(key)!r} in the checkpoint, {new_config[key]!r} now")
    if differences:
        listed = "\n  ".join(differences)
        raise CheckpointError(
            f"{path} belongs to a different run; resuming would mix two runs. What differs:\n  {listed}\n"
            "Run the original command to resume it, use another --out folder, "
            "or start afresh with --no-resume (the old files are kept aside)."
        )


def run_identity(model_name: str, params: int, data_description: str, world_size: int, precision: str, config: dict) -> dict[str, Any]:
    """What makes two runs the same run (see ``check_same_run``)."""
    return {
        "model": model_name,
        "params": int(params),
        "data": data_description,
        "world_size": int(world_size),
        "precision": precision,
        "config": json.loads(json.dumps(config)),
    }


def set_aside(folder: str | os.PathLike) -> Path | None:
    """Move an old run's files into ``folder/replaced-<time>/`` so that a fresh start loses nothing."""
    folder = Path(folder)
    old = [folder / n for n in (CHECKPOINT_NAME, PREVIOUS_NAME, "history.json") if (folder / n).exists()]
    if not old:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"replaced-{stamp}"
    target.mkdir()
    for path in old:
        os.replace(path, target / path.name)
    return target


class RunLock:
    """An exclusive lock on a run folder for as long as a run trains into it.

    The lock is an ``fcntl.flock`` on ``folder/lock``, which holds the owner's
    process id. The operating system releases it when the process ends, however
    it ends, so a killed run never leaves a stale lock. On systems without
    ``fcntl`` (Windows) no lock is taken.
    """

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self.file = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self.file = os.fdopen(fd, "r+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self.file.read().strip() or "unknown"
            self.file.close()
            self.file = None
            raise RunLockedError(
                f"another run (process {owner}) is training into {self.path.parent}; "
                "wait for it to finish, or use another --out folder"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the flock
            self.file = None
