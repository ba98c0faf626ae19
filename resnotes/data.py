"""CIFAR-10 and CIFAR-100 as uint8 tensors, and a batch iterator that keeps
them on the training device.

Where the data comes from, in order:

1. the folder named by ``RESNOTES_DATA``, then the project's ``data/`` folder,
   each in either layout:
   - torchvision's (``cifar-10-batches-py/``, ``cifar-100-python/``);
   - ImageFolder (``train/<class>/*``, ``test/<class>/*``), directly in the
     folder or in a subfolder named like ``cifar10-jpeg/``;
2. otherwise torchvision's download into ``data/``.

The images are decoded once and cached as tensors under ``data/cache/``.
Augmentation (4-pixel padded random crop, horizontal flip) and normalisation
run on whole batches on the training device: there is no per-image PIL work in
the training loop.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .progress import progress

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
CACHE_VERSION = 2
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


# --------------------------------------------------------------------------
# Readers for the two layouts
# --------------------------------------------------------------------------


def _unpickle(path: Path) -> dict:
    # The dataset's own format is a pickle of numpy arrays.
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


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
        batches = [_unpickle(p) for p in files]
        images = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([b[label_key] for b in batches])
        return torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels.astype(np.int64))

    train_images, train_labels = read(train_files)
    test_images, test_labels = read(test_files)
    classes = list(_unpickle(meta_file)[names_key])
    return dict(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classes=classes,
        dataset=DISPLAY_NAMES[key],
        source="original Python release",
    )


# Quantisation table of the IJG reference encoder at quality 50 (luminance).
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
)  # fmt: skip


def jpeg_quality(path: Path) -> int | None:
    """The IJG quality whose luminance table the JPEG file uses, or None."""
    from PIL import Image

    with Image.open(path) as img:
        tables = getattr(img, "quantization", None)
        if not tables:
            return None
        luma = np.sort(np.asarray(tables[0]))
    for quality in range(1, 101):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        table = np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)
        if np.array_equal(np.sort(table), luma):
            return quality
    return None


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        if img.mode != "RGB" or img.size != (32, 32):
            raise DataFormatError(
                f"{path.parent.name}/{path.name} is a {img.size[0]}x{img.size[1]} "
                f"{img.mode} image; CIFAR images must be 32x32 RGB"
            )
        return np.asarray(img, dtype=np.uint8)


def read_imagefolder_layout(folder: Path, key: str) -> dict:
    """Read ``train/<class>/*`` and ``test/<class>/*``; labels follow sorted class names."""
    expected = NUM_CLASSES[key]
    splits = {}
    for split in ("train", "test"):
        classes = sorted(p.name for p in (folder / split).iterdir() if p.is_dir())
        if len(classes) != expected:
            raise DataFormatError(
                f"{folder.name}/{split}/ has {len(classes)} class folders; "
                f"{DISPLAY_NAMES[key]} needs {expected}"
            )
        files, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(p for p in (folder / split / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataFormatError(f"{folder.name}/{split}/{name}/ holds no images")
            files += found
            labels += [label] * len(found)
        splits[split] = (classes, files, labels)
    if splits["train"][0] != splits["test"][0]:
        extra = sorted(set(splits["train"][0]) ^ set(splits["test"][0]))
        raise DataFormatError(f"{folder.name}: train/ and test/ disagree on the classes {extra}")

    out = {"classes": splits["train"][0]}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for split, (_, files, labels) in splits.items():
            arrays = list(progress(pool.map(_decode, files, chunksize=256), total=len(files), desc=f"decoding {split}"))
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
            out[f"{split}_images"] = images
            out[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
    # A lossy copy is a different dataset for the purpose of reporting numbers.
    first = splits["train"][1][0]
    out["dataset"] = DISPLAY_NAMES[key]
    if first.suffix.lower() in {".jpg", ".jpeg"}:
        quality = jpeg_quality(first)
        out["dataset"] += f" (JPEG q{quality} copy)" if quality else " (JPEG copy)"
    out["source"] = "ImageFolder layout"
    return out


# --------------------------------------------------------------------------
# Finding, caching and downloading
# --------------------------------------------------------------------------


def _cache_path(folder: Path, key: str) -> Path:
    """``data/cache/`` (or ``$RESNOTES_CACHE_DIR``), one file per source folder."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    cache_dir = Path(os.environ.get("RESNOTES_CACHE_DIR") or project_data_dir() / "cache")
    return cache_dir / f"{key}-{digest}.pt"


def _read_cache(path: Path, stamp: float) -> dict | None:
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        assert raw["version"] == CACHE_VERSION and raw["stamp"] == stamp
        for split in ("train", "test"):
            assert raw[f"{split}_images"].dtype == torch.uint8
            assert raw[f"{split}_images"].shape[1:] == (3, 32, 32)
            assert len(raw[f"{split}_images"]) == len(raw[f"{split}_labels"])
        return raw
    except Exception as exc:  # corrupt, truncated or stale: rebuild it
        warnings.warn(f"ignoring the cache {path.name} ({type(exc).__name__}); rebuilding it", stacklevel=3)
        return None


def _write_cache(path: Path, raw: dict, stamp: float) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({**raw, "version": CACHE_VERSION, "stamp": stamp}, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"could not write the cache {path.name} ({exc}); the data will be decoded again next time", stacklevel=3)


def _load_folder(folder: Path, key: str, reader) -> dict:
    """Read ``folder`` through the tensor cache."""
    stamp = max(p.stat().st_mtime for p in [folder, *folder.iterdir()])
    cache = _cache_path(folder, key)
    raw = _read_cache(cache, stamp)
    if raw is None:
        raw = reader(folder, key)
        _write_cache(cache, raw, stamp)
    return raw


def load_raw(name: str = "cifar10", download: bool = True) -> dict:
    """The whole dataset as uint8 tensors, with class names, the dataset's exact
    name (e.g. "CIFAR-10 (JPEG q75 copy)") and a line saying where it came from."""
    key = _normalise_name(name)
    looked = []
    for root, label in _search_roots():
        pickled = root / PICKLE_FOLDERS[key]
        looked.append(f"{label}{'/' if label[-1] != '/' else ''}{PICKLE_FOLDERS[key]}/ (torchvision layout)")
        if pickled.is_dir():
            raw = _load_folder(pickled, key, read_pickle_layout)
            return {**raw, "source": f"{raw['source']}, from {label}"}
        looked.append(f"{label} and its {key}* subfolders (ImageFolder layout: train/<class>/, test/<class>/)")
        for folder in _imagefolder_candidates(root, key):
            raw = _load_folder(folder, key, read_imagefolder_layout)
            return {**raw, "source": f"{raw['source']}, from {label}"}
    if download:
        target = project_data_dir()
        looked.append(f"torchvision's download into {target.name}/")
        try:
            _download(key, target)
        except Exception as exc:
            raise _not_found(key, looked, exc) from exc
        raw = _load_folder(target / PICKLE_FOLDERS[key], key, read_pickle_layout)
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

    def __repr__(self) -> str:
        return f"CifarData({self.describe()})"


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
    key = _normalise_name(name)
    raw = load_raw(key, download=download)
    train_idx, val_idx = [], []
    for idx in class_balanced_indices(raw["train_labels"], train_per_class, seed):
        n_val = max(1, round(len(idx) * val_fraction))
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


# --------------------------------------------------------------------------
# Whole-batch augmentation on the device
# --------------------------------------------------------------------------


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Pad by ``padding`` with zeros, crop a random 32x32 window per image, flip half.

    ``images`` is a uint8 (B, C, H, W) batch on any device; the random numbers
    come from a CPU ``generator`` so the result does not depend on the device.
    """
    b, c, h, w = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(images.device)
    flips = (torch.rand(b, generator=generator) < 0.5).to(images.device)
    padded = F.pad(images, (padding,) * 4)  # (B, C, H + 2p, W + 2p)
    rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip reverses the columns read
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class DeviceBatches:
    """Iterate over (images, labels) batches from a uint8 dataset kept on ``device``.

    The whole uint8 dataset is moved to the device once. Each batch is
    augmented there (if ``augment``), converted to float and normalised.
    Shuffling and augmentation are seeded by ``seed`` and the epoch, so an
    epoch's batches are the same whenever it is replayed (for example after a
    resume).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        device: torch.device | str = "cpu",
        mean: tuple[float, ...] = STATS["cifar10"][0],
        std: tuple[float, ...] = STATS["cifar10"][1],
        train: bool = True,
        seed: int = 0,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of {world_size}")
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 (N, C, H, W) tensor")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.channels_last = channels_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of an epoch's order: every world_size-th index, from position rank.

        With several processes (DistributedDataParallel), all ranks draw the
        same permutation and each takes its own slice, so together they see
        every image of the epoch exactly once. When the number of images does
        not divide evenly, the last ``len % world_size`` of the permutation
        (different ones each epoch) are left out, so every rank runs the same
        number of steps.
        """
        if self.world_size == 1:
            return order
        usable = len(order) - len(order) % self.world_size
        return order[:usable][self.rank :: self.world_size]

    def __len__(self) -> int:
        full, rest = divmod(len(self.labels) // self.world_size if self.train else len(self.labels), self.batch_size)
        # A training batch of one image would break batch norm: it is dropped.
        return full + (rest > 1 or (rest == 1 and not self.train))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        out = (images.float() - self.mean) / self.std
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.train:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = self.shard(torch.randperm(n, generator=generator)).to(self.device)
            if self.world_size > 1:  # each rank augments its images with its own random draws
                generator = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) * 1_009 + self.rank)
        else:
            generator, order = None, torch.arange(n, device=self.device)
        self.last_order = order
        for step in range(len(self)):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            images = self.images[idx]
            if self.train:
                images = random_crop_flip(images, generator)
            yield self.normalise(images), self.labels[idx]
