"""The tensor cache: a copy of CIFAR is decoded once and kept as uint8 tensors
under ``data/cache/`` (or ``$RESNOTES_CACHE_DIR``).

A cache file records a digest of the path, size and modification time of every
file of the copy it was made from, and is rebuilt when any file is added,
removed or rewritten. It is written through ``resnotes.files.atomic_write``: a
crash or a full disk leaves the previous cache (or none), never a part of one,
and the temporary file of a write that was killed is removed by the next one.
Any problem with a cache is a warning, never an error: the data is decoded again.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .datafiles import DataFormatError, check_classes
from .files import WriteError, atomic_write, remove_stale_temporaries

CACHE_VERSION = 3


def cache_path(folder: Path, key: str, data_dir: Path) -> Path:
    """``data_dir/cache/`` (or ``$RESNOTES_CACHE_DIR``), one file per source folder."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    cache_dir = Path(os.environ.get("RESNOTES_CACHE_DIR") or data_dir / "cache")
    return cache_dir / f"{key}-{digest}.pt"


def fingerprint(folder: Path, parts: tuple[str, ...]) -> str:
    """A digest of the relative path, size and modification time of every file under
    ``folder/part`` for each part: it changes when a file is added, removed, renamed
    or rewritten. Only metadata is read: 0.3 to 0.6 s for CIFAR's 60,000 files."""
    digest = hashlib.sha256()
    for part in parts:
        for dirpath, dirnames, filenames in os.walk(folder / part, followlinks=True):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, folder)
            for name in sorted(filenames):
                try:
                    stat = os.stat(os.path.join(dirpath, name))
                except OSError as exc:  # a broken link, a file without read permission
                    raise DataFormatError(
                        f"{rel_dir}/{name} cannot be read ({exc.strerror})"
                    ) from exc
                line = f"{rel_dir}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                digest.update(line.encode())
    return digest.hexdigest()


def _problem(raw, expected: str) -> str | None:
    """Why a loaded cache cannot be used, or None when it can."""
    if not isinstance(raw, dict):
        return "not a dictionary"
    if raw.get("version") != CACHE_VERSION:
        return f"format {raw.get('version')}, expected {CACHE_VERSION}"
    if raw.get("fingerprint") != expected:
        return "the dataset's files changed since it was written"
    for split in ("train", "test"):
        images, labels = raw.get(f"{split}_images"), raw.get(f"{split}_labels")
        if not (
            isinstance(images, torch.Tensor)
            and images.dtype == torch.uint8
            and images.shape[1:] == (3, 32, 32)
        ):
            return f"its {split} images are not a uint8 (N, 3, 32, 32) tensor"
        if not (
            isinstance(labels, torch.Tensor)
            and labels.dtype == torch.int64
            and labels.shape == (len(images),)
        ):
            return f"its {split} labels do not match its {split} images"
    if not (
        isinstance(raw.get("dataset"), str)
        and isinstance(raw.get("source"), str)
        and isinstance(raw.get("classes"), list)
    ):
        return "it lacks the dataset's name, source or classes"
    return None


def read_cache(path: Path, expected: str) -> dict | None:
    """The cached dataset, or None (with a warning saying why, for an unusable file)."""
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        problem = _problem(raw, expected)
    except Exception as exc:  # noqa: BLE001 (a corrupt or truncated file fails in any way)
        problem = f"unreadable: {type(exc).__name__}"
    if problem is None:
        return {k: v for k, v in raw.items() if k not in ("version", "fingerprint")}
    warnings.warn(
        f"ignoring the cache {path.name} ({problem}); rebuilding it", stacklevel=3
    )
    return None


def write_cache(path: Path, raw: dict, expected: str) -> None:
    """Write the cache; on failure warn and go on (the data is decoded again next
    time)."""
    entry = {**raw, "version": CACHE_VERSION, "fingerprint": expected}
    again = "the data will be decoded again next time"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)  # those of killed writes, never a live one
        atomic_write(path, lambda file: torch.save(entry, file))
    except WriteError as exc:
        warnings.warn(f"{exc}; {again}", stacklevel=3)
    except OSError as exc:  # the cache folder or the temporary file could not be made
        warnings.warn(f"could not write the cache {path}: {exc}; {again}", stacklevel=3)


def load_through_cache(
    folder: Path,
    key: str,
    reader: Callable[[Path, str], dict],
    parts: tuple[str, ...],
    data_dir: Path,
) -> dict:
    """Read ``folder`` (its data in the subfolders ``parts``) through the cache."""
    expected = fingerprint(folder, parts)
    path = cache_path(folder, key, data_dir)
    raw = read_cache(path, expected)
    if raw is None:
        raw = reader(folder, key)
        write_cache(path, raw, expected)
    check_classes(raw, key, folder)
    return raw
