"""Reading CIFAR's files, trusting none of them: the two layouts the data layer
accepts, and every check that a file is what it claims to be.

- torchvision's layout (``cifar-10-batches-py/``, ``cifar-100-python/``): the
  original Python release, pickles of numpy arrays. They are read with an
  unpickler that rebuilds numpy arrays and nothing else: a pickle that names any
  other object is refused, since loading it could run code.
- The ImageFolder layout (``train/<class>/*``, ``test/<class>/*``). The
  dataset's name must be true of every file: a copy is plain "CIFAR-10" only
  when every image is lossless (PNG or BMP), and "CIFAR-10 (JPEG q75 copy)" only
  when every image is a JPEG of quality 75 (read from each file's quantisation
  table). A tree that mixes kinds is refused, naming one file of each kind:
  numbers measured on a mixture compare with no published result.

Every problem with the data itself is a ``DataFormatError`` that names the file.
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .progress import progress

try:  # where numpy keeps the functions its pickles name: numpy 2, then numpy 1
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

DISPLAY_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
PICKLE_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
LOSSLESS_FORMATS = {"PNG", "BMP"}


# CIFAR-10's class names (torchvision's order), to name a missing class folder.
CLASS_NAMES = {
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}  # fmt: skip


class DataNotFoundError(FileNotFoundError):
    """No copy of the dataset was found and none could be downloaded."""


class DataFormatError(ValueError):
    """A copy of the dataset was found but is not usable as it is."""


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
        super().__init__(
            file, encoding="latin1"
        )  # CIFAR's pickles were written by Python 2
        self.name = name

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise DataFormatError(
                f"{self.name} holds objects other than CIFAR's arrays "
                f"({module}.{name}); "
                "it was not loaded, since loading it could run code. Replace it with a "
                "fresh copy."
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
        raise DataFormatError(
            f"{name} is not a readable CIFAR pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(content, dict):
        raise DataFormatError(
            f"{name} holds a {type(content).__name__}, not CIFAR's dictionary"
        )
    return content


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 3, 32, 32) and labels (N,) of one pickled batch."""
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get(label_key)
    if (
        not isinstance(data, np.ndarray)
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        raise DataFormatError(
            f"{path.parent.name}/{path.name} has no 'data' array of N rows of 3,072 "
            f"bytes"
        )
    if data.dtype != np.uint8:
        raise DataFormatError(
            f"{path.parent.name}/{path.name} holds {data.dtype} pixels, not bytes"
        )
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise DataFormatError(
            f"{path.parent.name}/{path.name} has {len(data)} images but not as many "
            f"'{label_key}'"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DataFormatError(
            f"{path.parent.name}/{path.name}: its '{label_key}' are not integers"
        ) from None
    return data.reshape(-1, 3, 32, 32), labels


def read_pickle_layout(folder: Path, key: str) -> dict:
    """Read torchvision's layout (the original Python release of CIFAR)."""
    if key == "cifar10":
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_files, meta_file = [folder / "test_batch"], folder / "batches.meta"
        label_key, names_key = "labels", "label_names"
    else:
        train_files, test_files, meta_file = (
            [folder / "train"],
            [folder / "test"],
            folder / "meta",
        )
        label_key, names_key = "fine_labels", "fine_label_names"
    missing = [
        p.name for p in [*train_files, *test_files, meta_file] if not p.is_file()
    ]
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


def check_classes(raw: dict, key: str, folder: Path) -> None:
    """Every label a class of the dataset (a bad one would otherwise surface mid-run,
    as a CUDA assertion), and the dataset's number of classes."""
    count = NUM_CLASSES[key]
    if len(raw["classes"]) != count:
        raise DataFormatError(
            f"{folder} names {len(raw['classes'])} classes; {DISPLAY_NAMES[key]} has "
            f"{count}"
        )
    for split in ("train", "test"):
        labels = raw[f"{split}_labels"]
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < count:
            raise DataFormatError(
                f"{folder}: a {split} label lies outside 0..{count - 1}"
            )


# --------------------------------------------------------------------------
# The ImageFolder layout: train/<class>/*, test/<class>/*
# --------------------------------------------------------------------------

# Quantisation table of the IJG reference encoder at quality 50 (luminance).
# fmt: off
_IJG_LUMA = np.array([
     16,  11,  10,  16,  24,  40,  51,  61,
     12,  12,  14,  19,  26,  58,  60,  55,
     14,  13,  16,  24,  40,  57,  69,  56,
     14,  17,  22,  29,  51,  87,  80,  62,
     18,  22,  37,  56,  68, 109, 103,  77,
     24,  35,  55,  64,  81, 104, 113,  92,
     49,  64,  78,  87, 103, 121, 120, 101,
     72,  92,  95,  98, 112, 100, 103,  99,
])
# fmt: on


def _ijg_luma_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


# Sorted luminance table -> IJG quality (the lowest quality, where two share a table).
_QUALITY_OF_TABLE = {
    tuple(sorted(_ijg_luma_table(q).tolist())): q for q in range(100, 0, -1)
}


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
    """What a copy made of files like ``img`` is: "lossless", "JPEG q75" or "JPEG of
    unknown quality"."""
    if img.format in LOSSLESS_FORMATS:
        return "lossless"
    if img.format == "JPEG":
        quality = _jpeg_quality(img)
        return f"JPEG q{quality}" if quality else "JPEG of unknown quality"
    raise DataFormatError(
        f"{rel} is a {img.format} file; CIFAR images must be PNG, BMP or JPEG"
    )


def _read_image(folder: Path, rel: str) -> tuple[np.ndarray, str]:
    """The pixels (32, 32, 3) and kind of ``folder/rel``; every error names ``rel``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(folder / rel) as img:
            kind = _image_kind(img, rel)
            if img.mode != "RGB" or img.size != (32, 32):
                raise DataFormatError(
                    f"{rel} is a {img.size[0]}x{img.size[1]} {img.mode} image; CIFAR "
                    f"images must be 32x32 RGB"
                )
            return np.asarray(img, dtype=np.uint8), kind
    except DataFormatError:
        raise
    except UnidentifiedImageError:
        raise DataFormatError(
            f"{rel} is not an image file (PIL cannot identify its format)"
        ) from None
    except Exception as exc:  # PIL reports a truncated or corrupt file in several ways
        raise DataFormatError(
            f"{rel} could not be decoded, it may be truncated or corrupt "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _list_split(
    folder: Path, split: str, key: str
) -> tuple[list[str], list[str], list[int]]:
    """The class names of ``folder/split``, its image files (relative to ``folder``) and
    their labels."""
    where = f"{folder.name}/{split}"
    links = sorted(p.name for p in (folder / split).iterdir() if p.is_symlink())
    if links:
        # A class folder linked to another class's would train one on the other's
        # images under its own label.
        raise DataFormatError(
            f"{where}/{links[0]} is a link; class folders (and images) must be real "
            "folders and files, so that each image's label is where it lies"
        )
    classes = sorted(p.name for p in (folder / split).iterdir() if p.is_dir())
    if len(classes) != NUM_CLASSES[key]:
        known = CLASS_NAMES.get(key, ())
        missing = [c for c in known if c not in classes]
        named = f" (missing: {', '.join(missing[:5])})" if known and missing else ""
        raise DataFormatError(
            f"{where}/ has {len(classes)} class folders{named}; "
            f"{DISPLAY_NAMES[key]} needs {NUM_CLASSES[key]}"
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = []
        for p in sorted((folder / split / name).iterdir()):
            rel = f"{where}/{name}/{p.name}"
            if p.is_symlink():
                raise DataFormatError(
                    f"{rel} is a link; images must be real files in their class folder"
                )
            if p.is_dir():
                if any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.rglob("*")):
                    raise DataFormatError(
                        f"{rel}/ is a subfolder holding images; images must sit "
                        f"directly in {where}/{name}/ (they would not be read)"
                    )
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not p.is_file():  # a FIFO or a device: reading it could hang
                raise DataFormatError(
                    f"{rel} is not a regular file (a pipe or a device?); images must "
                    "be plain files"
                )
            found.append(p)
        if not found:
            raise DataFormatError(f"{where}/{name}/ holds no images")
        files += [p.relative_to(folder).as_posix() for p in found]
        labels += [label] * len(found)
    return classes, files, labels


def _read_images(
    folder: Path, files: list[str], desc: str
) -> tuple[torch.Tensor, dict[str, str]]:
    """Decode ``files`` in parallel: a uint8 (N, 3, 32, 32) tensor, and each kind of
    image met with its first file."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        try:
            decoded = list(
                progress(
                    pool.map(lambda rel: _read_image(folder, rel), files),
                    total=len(files),
                    desc=desc,
                )
            )
        except DataFormatError:
            pool.shutdown(cancel_futures=True)  # stop at the first bad file
            raise
    kinds = {}
    for rel, (_, kind) in zip(files, decoded):
        kinds.setdefault(kind, rel)
    images = (
        torch.from_numpy(np.stack([pixels for pixels, _ in decoded]))
        .permute(0, 3, 1, 2)
        .contiguous()
    )
    return images, kinds


def _dataset_name(key: str, folder: Path, kinds: dict[str, str]) -> str:
    """The exact name of a copy whose images are of ``kinds``; a mixture of kinds is
    refused."""
    if len(kinds) > 1:
        examples = ", ".join(f"{kind} ({rel})" for kind, rel in kinds.items())
        raise DataFormatError(
            f"{folder.name}/ mixes images of different kinds: {examples}. No one "
            f"dataset name is true of "
            "all of them, so results on it could not be compared with any other; use a "
            "copy made in one format."
        )
    (kind,) = kinds
    # A lossy copy is a different dataset for the purpose of reporting numbers.
    if kind == "lossless":
        return DISPLAY_NAMES[key]
    if kind == "JPEG of unknown quality":
        return f"{DISPLAY_NAMES[key]} (JPEG copy)"
    return f"{DISPLAY_NAMES[key]} ({kind} copy)"


def read_imagefolder_layout(folder: Path, key: str) -> dict:
    """Read ``train/<class>/*`` and ``test/<class>/*``; labels follow sorted class
    names."""
    splits = {split: _list_split(folder, split, key) for split in ("train", "test")}
    if splits["train"][0] != splits["test"][0]:
        extra = sorted(set(splits["train"][0]) ^ set(splits["test"][0]))
        raise DataFormatError(
            f"{folder.name}: train/ and test/ disagree on the classes {extra}"
        )
    out, kinds = {"classes": splits["train"][0], "source": "ImageFolder layout"}, {}
    for split, (_, files, labels) in splits.items():
        out[f"{split}_images"], split_kinds = _read_images(
            folder, files, f"decoding {split}"
        )
        out[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
        for kind, rel in split_kinds.items():
            kinds.setdefault(kind, rel)
    out["dataset"] = _dataset_name(key, folder, kinds)
    return out
