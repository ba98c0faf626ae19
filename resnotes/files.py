"""Writing files so that a crash, a full disk or a planted link loses nothing.

``atomic_write`` writes into a new temporary file created in the target's own
folder (``O_CREAT | O_EXCL`` through ``tempfile.mkstemp``, so it never opens a
file or link that was already there), flushes it to disk and only then renames
it over the target. A crash at any point leaves either the old file or the new
one, never a part of either; a failed write removes its temporary file and says
why, naming the file and what was kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


class WriteError(OSError):
    """A file could not be written; the message says which, why, and what was kept."""


def _disk_full(exc: BaseException, folder: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # torch.save reports a failed write as a RuntimeError ("file write failed",
    # "unexpected pos ..."), so look at the free space too.
    text = str(exc).lower()
    if "no space left" in text:
        return True
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], *, before_replace: Callable[[], None] | None = None) -> Path:
    """Write ``path`` by calling ``write(file)`` on a fresh temporary file, then renaming it.

    ``before_replace`` runs after the new file is complete and before the
    rename (the checkpoint uses it to keep the old file as ``previous.pt``).
    Raises ``WriteError`` when the write fails, with the reason (a full disk is
    named as such); the target is then untouched.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, WriteError):
            kept = f"{path.name} was left as it was" if path.exists() else f"no {path.name} was written"
            reason = "the disk is full" if _disk_full(exc, path.parent) else f"{type(exc).__name__}: {exc}"
            raise WriteError(f"could not write {path}: {reason}; {kept}") from exc
        raise
    return path


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete the temporary files that a killed ``atomic_write`` of ``path`` left
    behind. Call it only where no other process can be writing ``path``."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write`` for a text file (UTF-8)."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
