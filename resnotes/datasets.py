"""CIFAR-10 and CIFAR-100 as uint8 tensors: where they are found, the
class-balanced subsets the profiles use, and the validation split.

``load_cifar(name, train_per_class, test_per_class)`` looks, in order, in

1. the folder named by ``RESNOTES_DATA``, then the project's ``data/`` folder,
   each in either layout: torchvision's (``cifar-10-batches-py/``,
   ``cifar-100-python/``) or ImageFolder (``train/<class>/*``,
   ``test/<class>/*``, directly in the folder or in a subfolder named like
   ``cifar10-jpeg/``);
2. otherwise it lets torchvision download the dataset into ``data/``.

When it finds nothing and cannot download, the error names every place it
looked and the three ways to supply the data; fake data is never substituted.
Reading the files, and refusing the ones that are not what they claim to be, is
``resnotes.datafiles``; the tensor cache that makes a second load fast is
``resnotes.cache``; batches and augmentation on the device are
``resnotes.batches``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .cache import load_through_cache
from .datafiles import (
    DISPLAY_NAMES,
    NUM_CLASSES,
    PICKLE_FOLDERS,
    DataFormatError,
    DataNotFoundError,
    read_imagefolder_layout,
    read_pickle_layout,
)

__all__ = [
    "NUM_CLASSES",
    "STATS",
    "CifarData",
    "DataFormatError",
    "DataNotFoundError",
    "class_balanced_indices",
    "load_cifar",
    "load_raw",
]

# Per-channel mean and std of the training images (the dataset's own std, not
# the mean of per-image stds that many repositories copy).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
VAL_FRACTION = 0.1  # 5,000 of CIFAR's 50,000 training images


def project_data_dir() -> Path:
    """The project's ``data/`` folder: beside the package in a checkout, else
    ``./data``."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.cwd() / "data"


def shown_path(path: Path) -> str:
    """``path`` as the user can find it from here: relative to the current folder when
    it is below it or close by, else absolute (with ``~`` for the home folder)."""
    path = Path(path).resolve()
    try:
        relative = os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive
        relative = str(path)
    if not relative.startswith(os.pardir + os.sep + os.pardir):
        return relative
    home = str(Path.home())
    return (
        "~" + str(path)[len(home) :]
        if str(path).startswith(home + os.sep)
        else str(path)
    )


def _key(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if key not in STATS:
        raise ValueError(f"unknown dataset {name!r}; valid names: CIFAR-10, CIFAR-100")
    return key


def _search_roots() -> list[tuple[Path, str]]:
    """(folder, how to show it) in search order."""
    roots = []
    env = os.environ.get("RESNOTES_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(
                f"RESNOTES_DATA is set to {env!r}, which is not a folder. Point it at "
                f"a "
                "folder that holds CIFAR in torchvision's layout "
                "(cifar-10-batches-py/) "
                "or the ImageFolder layout (train/<class>/, test/<class>/), or unset "
                "it."
            )
        roots.append((path, "$RESNOTES_DATA"))
    data = project_data_dir()
    roots.append((data, shown_path(data) + "/"))
    return roots


def _copies_in(root: Path, key: str) -> list[tuple[Path, object, tuple[str, ...]]]:
    """Every copy of the dataset in ``root``, preferred first: (folder, its reader,
    the subfolders that hold the data, for the cache's fingerprint)."""
    copies = []
    if (root / PICKLE_FOLDERS[key]).is_dir():
        copies.append((root / PICKLE_FOLDERS[key], read_pickle_layout, (".",)))
    candidates = [root]
    if root.is_dir():
        other = "cifar100" if key == "cifar10" else None
        for sub in sorted(root.iterdir()):
            norm = re.sub(r"[^a-z0-9]", "", sub.name.lower())
            if (
                sub.is_dir()
                and norm.startswith(key)
                and not (other and norm.startswith(other))
            ):
                candidates.append(sub)
    for folder in candidates:
        train, test = (folder / "train").is_dir(), (folder / "test").is_dir()
        if train and test:
            copies.append((folder, read_imagefolder_layout, ("train", "test")))
        elif train or test:
            have, lack = ("train", "test") if train else ("test", "train")
            raise DataFormatError(
                f"{shown_path(folder)} holds {have}/ but no {lack}/: an ImageFolder "
                f"copy of {DISPLAY_NAMES[key]} needs both train/<class>/ and "
                "test/<class>/"
            )
    return copies


def _shown(label: str, root: Path, folder: Path) -> str:
    """``folder`` as the user named it: ``$RESNOTES_DATA/cifar10-jpeg``,
    ``data/cifar-10-...``."""
    rel = folder.relative_to(root).as_posix()
    return label if rel == "." else f"{label.rstrip('/')}/{rel}"


def load_raw(name: str = "cifar10", download: bool = True) -> dict:
    """The whole dataset as uint8 tensors, with class names, the dataset's exact
    name (e.g. "CIFAR-10 (JPEG q75 copy)") and a line saying where it came from."""
    key = _key(name)
    looked = []
    for root, label in _search_roots():
        looked.append(
            f"{_shown(label, root, root / PICKLE_FOLDERS[key])}/ (torchvision layout)"
        )
        looked.append(
            f"{label} and its {key}* subfolders (ImageFolder layout: train/<class>/, "
            "test/<class>/)"
        )
        copies = _copies_in(root, key)
        if copies:
            (folder, reader, parts), *others = copies
            raw = load_through_cache(folder, key, reader, parts, project_data_dir())
            source = f"{raw['source']}, from {_shown(label, root, folder)}"
            if others:
                ignored = ", ".join(
                    _shown(label, root, other) for other, _, _ in others
                )
                copies = "another copy" if len(others) == 1 else "other copies"
                source += f"; ignored {copies} in {ignored}"
            return {**raw, "source": source}
    if not download:
        raise _not_found(key, looked, None)
    target = project_data_dir()
    looked.append(f"torchvision's download into {shown_path(target)}/")
    try:
        _download(key, target)
    except DataNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 (no network, a proxy, a full disk...)
        raise _not_found(key, looked, exc) from None  # the message names the cause
    folder = target / PICKLE_FOLDERS[key]
    raw = load_through_cache(folder, key, read_pickle_layout, (".",), target)
    return {**raw, "source": f"{raw['source']}, downloaded by torchvision into data/"}


def _download(key: str, target: Path) -> None:
    """torchvision's download into ``target``; a torchvision that cannot be imported
    is named as such, not taken for a failed download."""
    try:
        import torchvision
    except Exception as exc:  # noqa: BLE001 (a build that does not match torch fails in many ways)
        raise DataNotFoundError(
            f"{DISPLAY_NAMES[key]} was not found offline, and torchvision, which "
            f"downloads "
            f"it, cannot be imported ({type(exc).__name__}: {str(exc)[:160]}). Install "
            f"a "
            "torchvision that matches your torch (pip install torch torchvision), or "
            "supply the data: set RESNOTES_DATA to a folder holding it."
        ) from None
    dataset = (
        torchvision.datasets.CIFAR10
        if key == "cifar10"
        else torchvision.datasets.CIFAR100
    )
    target.mkdir(parents=True, exist_ok=True)
    dataset(root=str(target), train=True, download=True)


def _not_found(key: str, looked: list[str], exc: Exception | None) -> DataNotFoundError:
    reason = f"\nThe download failed: {type(exc).__name__}: {exc}" if exc else ""
    places = "\n".join(f"  - {p}" for p in looked)
    return DataNotFoundError(
        f"{DISPLAY_NAMES[key]} was not found. Looked in:\n{places}{reason}\n"
        "Supply it in one of three ways:\n"
        "  1. connect to the internet: torchvision then downloads it into data/;\n"
        f"  2. copy torchvision's {PICKLE_FOLDERS[key]}/ folder, or an ImageFolder "
        f"tree "
        "(train/<class>/*, test/<class>/*), into data/;\n"
        "  3. set RESNOTES_DATA to a folder holding either layout, for example an "
        "extracted cifar10-jpeg.tar.gz."
    )


def class_balanced_indices(labels: torch.Tensor, per_class: int | None, seed: int = 0):
    """For each class, a seeded permutation of its indices, cut to ``per_class``."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for c in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        if per_class is not None:
            if per_class > len(idx):
                raise ValueError(
                    f"asked for {per_class} images per class, but class {c} has "
                    f"{len(idx)}"
                )
            idx = idx[:per_class]
        out.append(idx)
    return out


@dataclass
class CifarData:
    """Train, validation and test splits as uint8 (N, 3, 32, 32) tensors on the CPU."""

    name: str  # exactly which dataset: "CIFAR-10", "CIFAR-10 (JPEG q75 copy)", ...
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

    def fingerprint(self) -> str:
        """A digest of every image and label of the three splits: two runs train on
        the same data exactly when their fingerprints agree."""
        digest = hashlib.sha256()
        for tensor in (
            self.train_images,
            self.train_labels,
            self.val_images,
            self.val_labels,
            self.test_images,
            self.test_labels,
        ):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().data)
        return digest.hexdigest()[:32]

    def test_fingerprint(self) -> str:
        """A digest of the test images and labels, in order: two runs can be
        paired image by image exactly when theirs agree."""
        digest = hashlib.sha256()
        for tensor in (self.test_images, self.test_labels):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().data)
        return digest.hexdigest()[:32]

    def describe(self) -> str:
        return (
            f"{self.name}, {self.source}: {len(self.train_labels):,} train / "
            f"{len(self.val_labels):,} validation (held out from train) / "
            f"{len(self.test_labels):,} test images"
        )

    def __str__(self) -> str:
        from .report import wrap

        return wrap(self.describe())

    def __repr__(self) -> str:
        return f"CifarData({self.describe()})"


def _held_out(n: int, val_fraction: float) -> int:
    """How many of a class's ``n`` drawn training images are held out for validation."""
    return max(1, round(n * val_fraction))


def _check_per_class(
    option: str, value, least: int, most: int | None = None, why: str = ""
):
    """Refuse a subset size outside [least, most], naming the option and its limits."""
    if value is None:
        return
    flag, split = "--" + option.replace("_", "-"), option.split("_")[0]
    if value < least:
        raise ValueError(
            f"{option} ({flag}) must be at least {least}{why}; got {value}"
        )
    if most is not None and value > most:
        raise ValueError(
            f"{option} ({flag}) can be at most {most:,}: the smallest class of the "
            f"{split} "
            f"set has {most:,} images; got {value:,}"
        )


def load_cifar(
    name: str = "cifar10",
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    download: bool = True,
) -> CifarData:
    """CIFAR-10 or CIFAR-100, optionally a class-balanced subset, with a validation
    split.

    ``train_per_class`` images per class are drawn from the training set (all of
    them when None); ``val_fraction`` of each class among them is held out for
    validation (500 per class, 5,000 in all, on full CIFAR-10). The test set
    (``test_per_class`` per class, all when None) is only ever used for the
    final number, never to choose anything.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    least = next(n for n in itertools.count(2) if n > _held_out(n, val_fraction))
    why = (
        f", so that each class keeps a training image after {val_fraction:.0%} of it "
        "(at least one image) is held out for validation"
    )
    _check_per_class("train_per_class", train_per_class, least, why=why)
    _check_per_class("test_per_class", test_per_class, 1)
    key = _key(name)
    raw = load_raw(key, download=download)
    num_classes = len(raw["classes"])
    most_train = int(torch.bincount(raw["train_labels"], minlength=num_classes).min())
    most_test = int(torch.bincount(raw["test_labels"], minlength=num_classes).min())
    if train_per_class is None and most_train < least:
        raise DataFormatError(
            f"the smallest class of the training set has {most_train} image(s); at "
            f"least {least} are needed, so that each class keeps a training image "
            f"after {val_fraction:.0%} of it (at least one image) is held out for "
            "validation"
        )
    _check_per_class("train_per_class", train_per_class, least, most_train)
    _check_per_class("test_per_class", test_per_class, 1, most_test)
    train_idx, val_idx = [], []
    for idx in class_balanced_indices(raw["train_labels"], train_per_class, seed):
        n_val = _held_out(len(idx), val_fraction)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train_idx, val_idx = (
        torch.cat(train_idx).sort().values,
        torch.cat(val_idx).sort().values,
    )
    test_idx = class_balanced_indices(raw["test_labels"], test_per_class, seed)
    test_idx = torch.cat(test_idx).sort().values
    mean, std = STATS[key]
    parts = []
    if train_per_class is not None:
        parts.append(f"{train_per_class} per class from train")
    if test_per_class is not None:
        parts.append(f"{test_per_class} per class from test")
    subset = f" (subset: {', '.join(parts)})" if parts else ""
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
