"""A run's folder: locked while the run trains, a checkpoint after every epoch,
and a resume that is refused unless it is the same run.

``fit`` uses ``RunFolder`` when its config names a ``checkpoint_dir`` (the
command line always does). A fresh start (``resume=False``) moves an earlier
run's files into ``replaced-<time>/``; nothing is deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Any, Iterator

from .checkpoint import (
    CheckpointError,
    check_same_run,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .engine import OtherProcessFailed, everyone
from .runtime import rng_state, set_rng_state

LOCK_NAME = "lock"


class RunLockedError(RuntimeError):
    """Another process is training into the same run folder."""


class RunLock:
    """An exclusive ``fcntl.flock`` on ``folder/lock`` for as long as a run trains.

    The file holds the owner's process id. The operating system releases the
    lock when the process ends, however it ends, so a killed run never leaves a
    stale lock. On systems without ``fcntl`` (Windows) no lock is taken.
    """

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self.file = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():  # a FIFO, a folder, a device
            raise RunLockedError(
                f"{self.path} is not a plain file (a pipe, a folder or a device?); "
                "remove it, or use another --out folder"
            )
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        self.file = os.fdopen(os.open(self.path, flags, 0o644), "r+")
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


def set_aside(folder: str | os.PathLike) -> Path | None:
    """Move an old run's files into ``folder/replaced-<time>/``; None if there were
    none."""
    folder = Path(folder)
    names = ("last.pt", "previous.pt", "history.json")
    old = [folder / name for name in names if (folder / name).exists()]
    if not old:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"replaced-{stamp}"
    target.mkdir()
    for path in old:
        os.replace(path, target / path.name)
    return target


def run_identity(history, data) -> dict[str, Any]:
    """What makes two runs the same run (``checkpoint.check_same_run``): the model and
    its size, the data (sizes and a fingerprint of every image and label), the
    process count, the precision that runs, and the config."""
    meta = history.meta
    n_train, n_val, n_test = (
        meta["train_images"],
        meta["val_images"],
        meta["test_images"],
    )
    drawn = (n_train + n_val) // data.num_classes
    return {
        "model": meta["model"],
        "params": int(meta["params"]),
        "data": f"{data.name}: {drawn} per class from train ({n_train} train / "
        f"{n_val} val), {n_test} test",
        "data_fingerprint": data.fingerprint(),
        "world_size": int(meta["world_size"]),
        "precision": meta["precision"],
        "config": json.loads(json.dumps(history.config)),
    }


class RunFolder:
    """The run folder of ``config.checkpoint_dir`` (nothing at all when it is None).

    Only the writing process (rank 0) locks the folder and writes; every process
    resumes from the same checkpoint, and every process stops when rank 0 cannot
    lock or write (``OtherProcessFailed`` in the others).
    """

    def __init__(self, config, identity: dict[str, Any], rank: int, world_size: int):
        self.folder = (
            None if config.checkpoint_dir is None else Path(config.checkpoint_dir)
        )
        self.resuming, self.identity = config.resume, identity
        self.writes, self.world_size = rank == 0, world_size
        self.lock = (
            RunLock(self.folder) if self.folder is not None and self.writes else None
        )

    def __enter__(self) -> RunFolder:
        with self.on_rank_0():
            if self.lock is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.lock.__enter__()
                if not self.resuming:
                    kept = set_aside(self.folder)
                    if kept is not None:
                        print(
                            "Starting afresh: the earlier run's files were moved to "
                            f"{kept}"
                        )
        return self

    def __exit__(self, *exc_info) -> None:
        if self.lock is not None:
            self.lock.__exit__(*exc_info)

    @contextlib.contextmanager
    def on_rank_0(self) -> Iterator[None]:
        """Rank 0's work on the folder; every process learns whether it failed."""
        try:
            yield
        except Exception:
            everyone(False, self.world_size)
            raise
        if not everyone(True, self.world_size):
            raise OtherProcessFailed("rank 0 could not use the run folder")

    def resume(self, model, optimizer, scaler, history) -> tuple[int, dict | None]:
        """Load the checkpoint, if any, into the model, optimiser, scaler and history;
        return the epochs already done and the best weights so far."""
        path = find_checkpoint(self.folder) if self.folder and self.resuming else None
        if path is None:
            return 0, None
        state = load_checkpoint(path)
        check_same_run(path, state["run"], self.identity)
        settings = _optimizer_settings(optimizer)
        try:
            model.load_state_dict(state["best_state"])  # it must fit the model too
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise CheckpointError(
                f"{path} does not fit this model ({reason}); use another --out folder "
                "or start afresh with --no-resume"
            ) from None
        _check_optimizer(path, optimizer, settings)
        try:
            set_rng_state(state["rng"])
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise CheckpointError(
                f"{path}'s random-generator states do not fit this machine ({reason}); "
                "start afresh with --no-resume, or resume where it was saved"
            ) from None
        saved = state["history"]
        history.meta["run_id"] = saved["meta"].get("run_id", history.meta["run_id"])
        history.epochs = saved["epochs"]
        history.best_epoch, history.best_val_acc = (
            saved["best_epoch"],
            saved["best_val_acc"],
        )
        history.seconds = saved["seconds"]
        if self.writes:
            print(f"Resumed from {path.name} after epoch {state['epoch']}")
        return state["epoch"], state["best_state"]

    def save(self, model, optimizer, scaler, history, best_state) -> None:
        """Rank 0 writes the checkpoint of the epochs in ``history``."""
        if self.folder is None:
            return
        with self.on_rank_0():
            if self.writes:
                self.write(model, optimizer, scaler, history, best_state)

    def write(self, model, optimizer, scaler, history, best_state) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": len(history.epochs),
            "history": json.dumps(history.to_dict()),
            "best_state": best_state,
            "rng": rng_state(),
            "run": json.dumps(self.identity),
        }
        save_checkpoint(self.folder, state)


# The optimiser's settings that the run's config decides (the learning rate is set
# at every step): a checkpoint must not bring its own.
OPTIMIZER_SETTINGS = ("momentum", "nesterov", "weight_decay", "dampening")


def _optimizer_settings(optimizer) -> list[dict]:
    return [
        {k: group.get(k) for k in OPTIMIZER_SETTINGS}
        for group in optimizer.param_groups
    ]


def _check_optimizer(path, optimizer, settings: list[dict]) -> None:
    """After ``optimizer.load_state_dict``: the run's settings, not the file's, and
    momentum buffers of the parameters' shapes; ``CheckpointError`` otherwise."""
    loaded = _optimizer_settings(optimizer)
    differs = [
        f"{key}: {got[key]!r} in the checkpoint, {want[key]!r} in this run"
        for want, got in zip(settings, loaded)
        for key in OPTIMIZER_SETTINGS
        if got[key] != want[key]
    ]
    if len(loaded) != len(settings):
        differs.append(
            f"{len(loaded)} parameter groups in the checkpoint, {len(settings)} here"
        )
    if differs:
        raise CheckpointError(
            f"{path}'s optimiser settings are not this run's ({'; '.join(differs)}): "
            "the file may be damaged or from another run; start afresh with "
            "--no-resume or use another --out folder"
        )
    for group in optimizer.param_groups:
        for param in group["params"]:
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None and buffer.shape != param.shape:
                raise CheckpointError(
                    f"{path} holds a momentum buffer of shape {tuple(buffer.shape)} "
                    f"for a parameter of shape {tuple(param.shape)}: it does not fit "
                    "this model; start afresh with --no-resume"
                )
