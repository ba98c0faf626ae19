"""Writing files so that a crash, a full disk or a planted link loses nothing.

``atomic_write`` writes into a new temporary file created in the target's own
folder (``O_CREAT | O_EXCL`` through ``tempfile.mkstemp``, so it never opens a
file or link that was already there), flushes it to disk and only then renames
it over the target. A crash at any point leaves either the old file or the new
one, never a part of either; a failed write removes its temporary file and says
why, naming the file and what was kept. A temporary file's name carries the
writing process's id, so that the temporary file of a killed write can be told
from one being written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


class WriteError(OSError):
    """A file could not be written; the message says which, why, and what was kept."""


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` (or what caused it) means the disk is full. Call it before the
    partial file is removed: afterwards the space it took looks free again."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left" in str(cause).lower():
            return True
        cause = cause.__cause__ or cause.__context__
    # torch.save reports a failed write as a RuntimeError ("file write failed",
    # "unexpected pos ..."), so look at the free space too.
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on them as they would
    have acted: a Ctrl-C in the middle of a checkpoint write lets the write finish
    (seconds for a paper-sized model) instead of losing the epoch that had just
    ended. Only the main thread can set handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}
    for sig in handled:
        if previous[sig] not in (signal.SIG_IGN, None):
            signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(received):  # each signal once, as it came
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    *,
    before_replace: Callable[[], None] | None = None,
) -> Path:
    """Write ``path`` by calling ``write(file)`` on a fresh temporary file, then
    renaming it.

    ``before_replace`` runs after the new file is complete and before the
    rename (the checkpoint uses it to keep the old file as ``previous.pt``).
    Raises ``WriteError`` when the write fails, with the reason (a full disk is
    named as such); the target is then untouched.
    """
    path = Path(path)
    tmp = None
    try:
        prefix = f".{path.name}.{os.getpid()}."
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        _sync_folder(path.parent)  # the rename itself survives a power cut
    except BaseException as exc:
        wrapped = isinstance(exc, (OSError, RuntimeError)) and not isinstance(
            exc, WriteError
        )
        full = wrapped and _disk_full(exc, path.parent)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if wrapped:
            kept = (
                f"{path.name} was left as it was"
                if path.exists()
                else f"no {path.name} was written"
            )
            reason = "the disk is full" if full else f"{type(exc).__name__}: {exc}"
            raise WriteError(f"could not write {path}: {reason}; {kept}") from exc
        raise
    return path


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk (POSIX; Windows cannot open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data is synced
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writes of ``path`` whose process is gone (a write
    that was killed); return them. A live process's temporary file is left alone."""
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)) and int(pid) != os.getpid():
            continue
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write`` for a text file (UTF-8)."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
