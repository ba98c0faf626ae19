"""CIFAR-10 and CIFAR-100 as uint8 tensors: finding, reading, caching, downloading,
and the class-balanced subsets with their validation split.

Where the data comes from, in order:

1. the folder named by ``RESNOTES_DATA``, then the project's ``data/`` folder,
   each in either layout:
   - torchvision's (``cifar-10-batches-py/``, ``cifar-100-python/``);
   - ImageFolder (``train/<class>/*``, ``test/<class>/*``), directly in the
     folder or in a subfolder named like ``cifar10-jpeg/``;
2. otherwise torchvision's download into ``data/``.

When one folder holds more than one copy (say ``cifar10-jpeg/`` and
``CIFAR-10/``), the first in that order is used and the ``source`` line names
it and the copies it ignored.

The dataset's name must be true of every file. An ImageFolder copy is plain
"CIFAR-10" only when every image is lossless (PNG or BMP), and "CIFAR-10
(JPEG q75 copy)" only when every image is a JPEG of quality 75 (read from each
file's quantisation table). A tree that mixes kinds (PNG and JPEG, or two JPEG
qualities) is refused with a ``DataFormatError`` naming one file of each kind:
numbers measured on such a mixture are comparable with no published result.

The pickles of torchvision's layout are read with an unpickler that rebuilds
numpy arrays and nothing else: a pickle that names any other object is refused,
since loading it could run code.

The images are decoded once and cached as tensors under ``data/cache/`` (or
``$RESNOTES_CACHE_DIR``). The cache records a digest of the path, size and
modification time of every file of the copy, and is rebuilt when any file is
added, removed or rewritten. It is written through ``resnotes.files.atomic_write``:
a crash or a full disk leaves the previous cache (or none), never a part of one.
Every problem with the data itself is a ``DataFormatError`` that names the file.

Batches, augmentation and normalisation on the training device are in
``resnotes.batches``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import WriteError, atomic_write
from .progress import progress

try:  # where numpy keeps the functions its pickles name: numpy 2, then numpy 1
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

# Per-channel mean and std of the training images (the dataset's own std, not
# the mean of per-image stds that many repositories copy).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
DISPLAY_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
PICKLE_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
LOSSLESS_FORMATS = {"PNG", "BMP"}
CACHE_VERSION = 3
VAL_FRACTION = 0.1  # 5,000 of CIFAR's 50,000 training images


class DataNotFoundError(FileNotFoundError):
    """No copy of the dataset was found and none could be downloaded."""


class DataFormatError(ValueError):
    """A copy of the dataset was found but is not usable as it is."""


# --------------------------------------------------------------------------
# Where the data lives
# --------------------------------------------------------------------------


def project_data_dir() -> Path:
    """The project's ``data/`` folder: beside the package in a checkout, else ``./data``."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.cwd() / "data"


def _normalise_name(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if key not in STATS:
        raise ValueError(f"unknown dataset {name!r}; valid names: CIFAR-10, CIFAR-100")
    return key


def _search_roots() -> list[tuple[Path, str]]:
    """(folder, how it was chosen) in search order."""
    roots = []
    env = os.environ.get("RESNOTES_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"RESNOTES_DATA is set to {env!r}, which is not a folder. Point it at a "
                "folder that holds CIFAR in torchvision's layout (cifar-10-batches-py/) "
                "or the ImageFolder layout (train/<class>/, test/<class>/), or unset it."
            )
        roots.append((path, "$RESNOTES_DATA"))
    roots.append((project_data_dir(), "data/"))
    return roots


def _imagefolder_candidates(root: Path, key: str) -> list[Path]:
    """``root`` itself and its subfolders named after the dataset (cifar10-jpeg, CIFAR-10...)."""
    candidates = [root]
    if root.is_dir():
        for sub in sorted(root.iterdir()):
            norm = re.sub(r"[^a-z0-9]", "", sub.name.lower())
            other = "cifar100" if key == "cifar10" else None
            if sub.is_dir() and norm.startswith(key) and not (other and norm.startswith(other)):
                candidates.append(sub)
    return [c for c in candidates if (c / "train").is_dir() and (c / "test").is_dir()]


def _copies_in(root: Path, key: str) -> list[tuple[Path, Callable[[Path, str], dict], tuple[str, ...]]]:
    """Every copy of the dataset in ``root``, preferred first: (folder, its reader,
    the parts of the folder that hold the data, for the cache's fingerprint)."""
    copies = []
    if (root / PICKLE_FOLDERS[key]).is_dir():
        copies.append((root / PICKLE_FOLDERS[key], read_pickle_layout, (".",)))
    for folder in _imagefolder_candidates(root, key):
        copies.append((folder, read_imagefolder_layout, ("train", "test")))
    return copies


def _shown(label: str, root: Path, folder: Path) -> str:
    """``folder`` as the user named it: ``$RESNOTES_DATA/cifar10-jpeg``, ``data/cifar-10-batches-py``."""
    rel = folder.relative_to(root).as_posix()
    return label if rel == "." else f"{label.rstrip('/')}/{rel}"


# --------------------------------------------------------------------------
# torchvision's layout: the original Python release (pickles of numpy arrays)
# --------------------------------------------------------------------------

# The only objects CIFAR's pickles name: numpy's array, its dtype and the
# functions that rebuild an array (under numpy 1's and numpy 2's module names;
# _frombuffer is what pickle protocol 5 uses).
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, lists, dicts, strings and numbers, and
    refuses everything else: ``pickle.load`` would call any function a pickle names."""

    def __init__(self, file, name: str):
        super().__init__(file, encoding="latin1")  # CIFAR's pickles were written by Python 2
        self.name = name

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise DataFormatError(
                f"{self.name} holds objects other than CIFAR's arrays ({module}.{name}); "
                "it was not loaded, since loading it could run code. Replace it with a fresh copy."
            )
        return _PICKLE_GLOBALS[module, name]


def _unpickle(path: Path) -> dict:
    name = f"{path.parent.name}/{path.name}"
    try:
        with open(path, "rb") as f:
            content = _CifarUnpickler(f, name).load()
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(f"{name} is not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict):
        raise DataFormatError(f"{name} holds a {type(content).__name__}, not CIFAR's dictionary")
    return content


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 3, 32, 32) and labels (N,) of one pickled batch."""
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{path.parent.name}/{path.name} has no 'data' array of N rows of 3,072 bytes")
    if labels is None or len(labels) != len(data):
        raise DataFormatError(f"{path.parent.name}/{path.name} has {len(data)} images but not as many '{label_key}'")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), np.asarray(labels, dtype=np.int64)


def read_pickle_layout(folder: Path, key: str) -> dict:
    """Read torchvision's layout (the original Python release of CIFAR)."""
    if key == "cifar10":
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_files, meta_file = [folder / "test_batch"], folder / "batches.meta"
        label_key, names_key = "labels", "label_names"
    else:
        train_files, test_files, meta_file = [folder / "train"], [folder / "test"], folder / "meta"
        label_key, names_key = "fine_labels", "fine_label_names"
    missing = [p.name for p in [*train_files, *test_files, meta_file] if not p.is_file()]
    if missing:
        raise DataFormatError(f"{folder.name}/ is missing {', '.join(missing)}")

    def read(files):
        batches = [_read_batch(p, label_key) for p in files]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        return torch.from_numpy(images), torch.from_numpy(labels)

    train_images, train_labels = read(train_files)
    test_images, test_labels = read(test_files)
    classes = _unpickle(meta_file).get(names_key)
    if classes is None:
        raise DataFormatError(f"{folder.name}/{meta_file.name} has no '{names_key}'")
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
        "classes": list(classes),
        "dataset": DISPLAY_NAMES[key],
        "source": "original Python release",
    }


# --------------------------------------------------------------------------
# The ImageFolder layout: train/<class>/*, test/<class>/*
# --------------------------------------------------------------------------

# Quantisation table of the IJG reference encoder at quality 50 (luminance).
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
)  # fmt: skip


def _ijg_luma_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


# Sorted luminance table -> IJG quality (the lowest quality, where two share a table).
_QUALITY_OF_TABLE = {tuple(sorted(_ijg_luma_table(q).tolist())): q for q in range(100, 0, -1)}


def _jpeg_quality(img) -> int | None:
    """The IJG quality whose luminance table an open JPEG image uses, or None."""
    tables = getattr(img, "quantization", None)
    return _QUALITY_OF_TABLE.get(tuple(sorted(tables[0]))) if tables else None


def jpeg_quality(path: Path) -> int | None:
    """The IJG quality whose luminance table the JPEG file uses, or None."""
    from PIL import Image

    with Image.open(path) as img:
        return _jpeg_quality(img)


def _image_kind(img, rel: str) -> str:
    """What a copy made of files like ``img`` is: "lossless", "JPEG q75" or "JPEG of unknown quality"."""
    if img.format in LOSSLESS_FORMATS:
        return "lossless"
    if img.format == "JPEG":
        quality = _jpeg_quality(img)
        return f"JPEG q{quality}" if quality else "JPEG of unknown quality"
    raise DataFormatError(f"{rel} is a {img.format} file; CIFAR images must be PNG, BMP or JPEG")


def _read_image(folder: Path, rel: str) -> tuple[np.ndarray, str]:
    """The pixels (32, 32, 3) and kind of ``folder/rel``; every error names ``rel``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(folder / rel) as img:
            kind = _image_kind(img, rel)
            if img.mode != "RGB" or img.size != (32, 32):
                raise DataFormatError(
                    f"{rel} is a {img.size[0]}x{img.size[1]} {img.mode} image; CIFAR images must be 32x32 RGB"
                )
            return np.asarray(img, dtype=np.uint8), kind
    except DataFormatError:
        raise
    except UnidentifiedImageError:
        raise DataFormatError(f"{rel} is not an image file (PIL cannot identify its format)") from None
    except Exception as exc:  # PIL reports a truncated or corrupt file in several ways
        raise DataFormatError(
            f"{rel} could not be decoded, it may be truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc


def _list_split(folder: Path, split: str, key: str) -> tuple[list[str], list[str], list[int]]:
    """The class names of ``folder/split``, its image files (relative to ``folder``) and their labels."""
    classes = sorted(p.name for p in (folder / split).iterdir() if p.is_dir())
    if len(classes) != NUM_CLASSES[key]:
        raise DataFormatError(
            f"{folder.name}/{split}/ has {len(classes)} class folders; {DISPLAY_NAMES[key]} needs {NUM_CLASSES[key]}"
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / split / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataFormatError(f"{folder.name}/{split}/{name}/ holds no images")
        files += [p.relative_to(folder).as_posix() for p in found]
        labels += [label] * len(found)
    return classes, files, labels


def _read_images(folder: Path, files: list[str], desc: str) -> tuple[torch.Tensor, dict[str, str]]:
    """Decode ``files`` in parallel: a uint8 (N, 3, 32, 32) tensor, and each kind of image met with its first file."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        try:
            decoded = list(progress(pool.map(lambda rel: _read_image(folder, rel), files), total=len(files), desc=desc))
        except DataFormatError:
            pool.shutdown(cancel_futures=True)  # stop at the first bad file
            raise
    kinds = {}
    for rel, (_, kind) in zip(files, decoded):
        kinds.setdefault(kind, rel)
    images = torch.from_numpy(np.stack([pixels for pixels, _ in decoded])).permute(0, 3, 1, 2).contiguous()
    return images, kinds


def _dataset_name(key: str, folder: Path, kinds: dict[str, str]) -> str:
    """The exact name of a copy whose images are of ``kinds``; a mixture of kinds is refused."""
    if len(kinds) > 1:
        examples = ", ".join(f"{kind} ({rel})" for kind, rel in kinds.items())
        raise DataFormatError(
            f"{folder.name}/ mixes images of different kinds: {examples}. No one dataset name is true of "
            "all of them, so results on it could not be compared with any other; use a copy made in one format."
        )
    (kind,) = kinds
    # A lossy copy is a different dataset for the purpose of reporting numbers.
    if kind == "lossless":
        return DISPLAY_NAMES[key]
    if kind == "JPEG of unknown quality":
        return f"{DISPLAY_NAMES[key]} (JPEG copy)"
    return f"{DISPLAY_NAMES[key]} ({kind} copy)"


def read_imagefolder_layout(folder: Path, key: str) -> dict:
    """Read ``train/<class>/*`` and ``test/<class>/*``; labels follow sorted class names."""
    splits = {split: _list_split(folder, split, key) for split in ("train", "test")}
    if splits["train"][0] != splits["test"][0]:
        extra = sorted(set(splits["train"][0]) ^ set(splits["test"][0]))
        raise DataFormatError(f"{folder.name}: train/ and test/ disagree on the classes {extra}")
    out, kinds = {"classes": splits["train"][0], "source": "ImageFolder layout"}, {}
    for split, (_, files, labels) in splits.items():
        out[f"{split}_images"], split_kinds = _read_images(folder, files, f"decoding {split}")
        out[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
        for kind, rel in split_kinds.items():
            kinds.setdefault(kind, rel)
    out["dataset"] = _dataset_name(key, folder, kinds)
    return out


# --------------------------------------------------------------------------
# The tensor cache
# --------------------------------------------------------------------------


def _cache_path(folder: Path, key: str) -> Path:
    """``data/cache/`` (or ``$RESNOTES_CACHE_DIR``), one file per source folder."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    cache_dir = Path(os.environ.get("RESNOTES_CACHE_DIR") or project_data_dir() / "cache")
    return cache_dir / f"{key}-{digest}.pt"


def _fingerprint(folder: Path, parts: tuple[str, ...]) -> str:
    """A digest of the relative path, size and modification time of every file under
    ``folder/part`` for each part: it changes when a file is added, removed, renamed or
    rewritten. Only metadata is read: 0.3 to 0.6 s for CIFAR's 60,000 files."""
    digest = hashlib.sha256()
    for part in parts:
        for dirpath, dirnames, filenames in os.walk(folder / part, followlinks=True):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, folder)
            for name in sorted(filenames):
                try:
                    stat = os.stat(os.path.join(dirpath, name))
                except OSError as exc:  # a broken link, a file without read permission...
                    raise DataFormatError(f"{rel_dir}/{name} cannot be read ({exc.strerror})") from exc
                digest.update(f"{rel_dir}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_problem(raw, fingerprint: str) -> str | None:
    """Why a loaded cache cannot be used, or None when it can."""
    if not isinstance(raw, dict):
        return "not a dictionary"
    if raw.get("version") != CACHE_VERSION:
        return f"format {raw.get('version')}, expected {CACHE_VERSION}"
    if raw.get("fingerprint") != fingerprint:
        return "the dataset's files changed since it was written"
    for split in ("train", "test"):
        images, labels = raw.get(f"{split}_images"), raw.get(f"{split}_labels")
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.shape[1:] != (3, 32, 32):
            return f"its {split} images are not a uint8 (N, 3, 32, 32) tensor"
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (len(images),):
            return f"its {split} labels do not match its {split} images"
    if not (
        isinstance(raw.get("dataset"), str)
        and isinstance(raw.get("source"), str)
        and isinstance(raw.get("classes"), list)
    ):
        return "it lacks the dataset's name, source or classes"
    return None


def _read_cache(path: Path, fingerprint: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        problem = _cache_problem(raw, fingerprint)
    except Exception as exc:  # noqa: BLE001 (a corrupt or truncated file can fail in any way)
        problem = f"unreadable: {type(exc).__name__}"
    if problem is None:
        return {name: value for name, value in raw.items() if name not in ("version", "fingerprint")}
    warnings.warn(f"ignoring the cache {path.name} ({problem}); rebuilding it", stacklevel=3)
    return None


def _write_cache(path: Path, raw: dict, fingerprint: str) -> None:
    """Write the cache; on failure warn and go on (the data is decoded again next time)."""
    entry = {**raw, "version": CACHE_VERSION, "fingerprint": fingerprint}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda file: torch.save(entry, file))
    except WriteError as exc:
        warnings.warn(f"{exc}; the data will be decoded again next time", stacklevel=3)
    except OSError as exc:  # the cache folder or the temporary file could not be created
        warnings.warn(
            f"could not write the cache {path}: {exc}; the data will be decoded again next time", stacklevel=3
        )


def _load_folder(folder: Path, key: str, reader, parts: tuple[str, ...]) -> dict:
    """Read ``folder`` through the tensor cache; ``parts`` are the subfolders the data is in."""
    fingerprint = _fingerprint(folder, parts)
    cache = _cache_path(folder, key)
    raw = _read_cache(cache, fingerprint)
    if raw is None:
        raw = reader(folder, key)
        _write_cache(cache, raw, fingerprint)
    return raw


# --------------------------------------------------------------------------
# Finding and downloading
# --------------------------------------------------------------------------


def load_raw(name: str = "cifar10", download: bool = True) -> dict:
    """The whole dataset as uint8 tensors, with class names, the dataset's exact
    name (e.g. "CIFAR-10 (JPEG q75 copy)") and a line saying where it came from."""
    key = _normalise_name(name)
    looked = []
    for root, label in _search_roots():
        looked.append(f"{_shown(label, root, root / PICKLE_FOLDERS[key])}/ (torchvision layout)")
        looked.append(f"{label} and its {key}* subfolders (ImageFolder layout: train/<class>/, test/<class>/)")
        copies = _copies_in(root, key)
        if copies:
            (folder, reader, parts), *others = copies
            raw = _load_folder(folder, key, reader, parts)
            source = f"{raw['source']}, from {_shown(label, root, folder)}"
            if others:
                ignored = ", ".join(_shown(label, root, other) for other, _, _ in others)
                source += f"; ignored {'another copy' if len(others) == 1 else 'other copies'} in {ignored}"
            return {**raw, "source": source}
    if download:
        target = project_data_dir()
        looked.append(f"torchvision's download into {target.name}/")
        try:
            _download(key, target)
        except Exception as exc:
            raise _not_found(key, looked, exc) from exc
        raw = _load_folder(target / PICKLE_FOLDERS[key], key, read_pickle_layout, (".",))
        return {**raw, "source": f"{raw['source']}, downloaded by torchvision into data/"}
    raise _not_found(key, looked, None)


def _download(key: str, target: Path) -> None:
    import torchvision

    dataset = torchvision.datasets.CIFAR10 if key == "cifar10" else torchvision.datasets.CIFAR100
    target.mkdir(parents=True, exist_ok=True)
    dataset(root=str(target), train=True, download=True)


def _not_found(key: str, looked: list[str], exc: Exception | None) -> DataNotFoundError:
    reason = f"\nThe download failed: {type(exc).__name__}: {exc}" if exc else ""
    places = "\n".join(f"  - {p}" for p in looked)
    return DataNotFoundError(
        f"{DISPLAY_NAMES[key]} was not found. Looked in:\n{places}{reason}\n"
        "Supply it in one of three ways:\n"
        "  1. connect to the internet: torchvision then downloads it into data/;\n"
        f"  2. copy torchvision's {PICKLE_FOLDERS[key]}/ folder, or an ImageFolder tree "
        "(train/<class>/*, test/<class>/*), into data/;\n"
        "  3. set RESNOTES_DATA to a folder holding either layout, for example an "
        "extracted cifar10-jpeg.tar.gz."
    )


# --------------------------------------------------------------------------
# Subsets and the validation split
# --------------------------------------------------------------------------


def class_balanced_indices(labels: torch.Tensor, per_class: int | None, seed: int = 0) -> list[torch.Tensor]:
    """For each class, a seeded permutation of its indices, cut to ``per_class``."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for c in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        if per_class is not None:
            if per_class > len(idx):
                raise ValueError(f"asked for {per_class} images per class, but class {c} has {len(idx)}")
            idx = idx[:per_class]
        out.append(idx)
    return out


@dataclass
class CifarData:
    """Train, validation and test splits as uint8 (N, 3, 32, 32) tensors on the CPU."""

    name: str  # exactly which dataset: "CIFAR-10", "CIFAR-100", "CIFAR-10 (JPEG q75 copy)"
    classes: list[str]
    source: str  # one line: which layout, from where, which subset
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        return (
            f"{self.name}, {self.source}: {len(self.train_labels):,} train / {len(self.val_labels):,} validation "
            f"(held out from train) / {len(self.test_labels):,} test images"
        )

    def __str__(self) -> str:
        from .report import wrap

        return wrap(self.describe())

    def __repr__(self) -> str:
        return f"CifarData({self.describe()})"


def _held_out(n: int, val_fraction: float) -> int:
    """How many of a class's ``n`` drawn training images are held out for validation."""
    return max(1, round(n * val_fraction))


def _check_per_class(option: str, value: int | None, least: int, most: int | None = None, why: str = "") -> None:
    """Refuse a subset size outside [least, most] with a message that names the option and its limits."""
    if value is None:
        return
    flag, split = "--" + option.replace("_", "-"), option.split("_")[0]
    if value < least:
        raise ValueError(f"{option} ({flag}) must be at least {least}{why}; got {value}")
    if most is not None and value > most:
        raise ValueError(
            f"{option} ({flag}) can be at most {most:,}: the smallest class of the {split} set has {most:,} images; got {value:,}"
        )


def load_cifar(
    name: str = "cifar10",
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    download: bool = True,
) -> CifarData:
    """CIFAR-10 or CIFAR-100, optionally a class-balanced subset, with a validation split.

    ``train_per_class`` images per class are drawn from the training set (all of
    them when None); ``val_fraction`` of each class among them is held out for
    validation (500 per class, 5,000 in all, on full CIFAR-10). The test set
    (``test_per_class`` per class, all when None) is only ever used for the
    final number, never to choose anything.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    least = next(n for n in itertools.count(2) if n > _held_out(n, val_fraction))
    why = f", so that each class keeps a training image after {val_fraction:.0%} of it (at least one image) is held out for validation"
    _check_per_class("train_per_class", train_per_class, least, why=why)
    _check_per_class("test_per_class", test_per_class, 1)
    key = _normalise_name(name)
    raw = load_raw(key, download=download)
    num_classes = len(raw["classes"])
    most_train = int(torch.bincount(raw["train_labels"], minlength=num_classes).min())
    most_test = int(torch.bincount(raw["test_labels"], minlength=num_classes).min())
    _check_per_class("train_per_class", train_per_class, least, most_train)
    _check_per_class("test_per_class", test_per_class, 1, most_test)
    train_idx, val_idx = [], []
    for idx in class_balanced_indices(raw["train_labels"], train_per_class, seed):
        n_val = _held_out(len(idx), val_fraction)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train_idx, val_idx = torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values
    test_idx = torch.cat(class_balanced_indices(raw["test_labels"], test_per_class, seed)).sort().values
    mean, std = STATS[key]
    test_part = "the whole test set" if test_per_class is None else f"{test_per_class} per class from test"
    subset = "" if train_per_class is None else f" (subset: {train_per_class} per class from train, {test_part})"
    return CifarData(
        name=raw["dataset"],
        classes=list(raw["classes"]),
        source=raw["source"] + subset,
        train_images=raw["train_images"][train_idx],
        train_labels=raw["train_labels"][train_idx],
        val_images=raw["train_images"][val_idx],
        val_labels=raw["train_labels"][val_idx],
        test_images=raw["test_images"][test_idx],
        test_labels=raw["test_labels"][test_idx],
        mean=mean,
        std=std,
    )
