"""Fixtures: tiny CIFAR copies written in each layout the data layer reads."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import resnotes.datasets as rdata

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_images(n: int, seed: int) -> np.ndarray:
    """n random uint8 images (N, 3, 32, 32)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


class Python2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote CIFAR's own files: every string is a
    byte string (read back only with encoding="latin1"), and numpy's rebuilding
    function is named by its numpy 1 module, ``numpy.core.multiarray``."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, data):
        data = data.encode("latin1") if isinstance(data, str) else data
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(data)

    dispatch[str] = dispatch[bytes] = save_python2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_dumps(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_cifar10_pickles(root: Path, per_class_train: int = 10, per_class_test: int = 4, dumps=pickle.dumps) -> dict:
    """CIFAR-10 in torchvision's layout; ``dumps`` writes each file (default: this Python's pickle protocol)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = make_images(10 * per_class_train, 1)
    train_labels = np.arange(len(train)) % 10
    test = make_images(10 * per_class_test, 2)
    test_labels = np.arange(len(test)) % 10
    for i, chunk in enumerate(np.array_split(np.arange(len(train)), 5), start=1):
        batch = {"data": train[chunk].reshape(len(chunk), -1), "labels": train_labels[chunk].tolist()}
        (folder / f"data_batch_{i}").write_bytes(dumps(batch))
    (folder / "test_batch").write_bytes(dumps({"data": test.reshape(len(test), -1), "labels": test_labels.tolist()}))
    (folder / "batches.meta").write_bytes(dumps({"label_names": CIFAR10_CLASSES}))
    return {"train": train, "train_labels": train_labels, "test": test, "test_labels": test_labels}


def write_cifar100_pickles(root: Path, per_class_train: int = 2, per_class_test: int = 1) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train = make_images(100 * per_class_train, 3)
    test = make_images(100 * per_class_test, 4)
    for name, images in (("train", train), ("test", test)):
        fine = (np.arange(len(images)) % 100).tolist()
        data = {"data": images.reshape(len(images), -1), "fine_labels": fine, "coarse_labels": [f // 5 for f in fine]}
        (folder / name).write_bytes(pickle.dumps(data))
    names = [f"class{i:03d}" for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names, "coarse_label_names": []}))
    return {"train": train, "test": test, "classes": names}


def write_imagefolder(root: Path, per_class: int = 3, fmt: str = "PNG", classes=CIFAR10_CLASSES) -> dict:
    """An ImageFolder tree of random images, as PNG, BMP or JPEG (quality 75) files."""
    from PIL import Image

    written = {}
    for split, seed in (("train", 5), ("test", 6)):
        images = make_images(len(classes) * per_class, seed)
        for i, image in enumerate(images):
            label = i % len(classes)
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            suffix = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp"}[fmt]
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:04d}.{suffix}", fmt, quality=75)
        written[split] = images
    return written


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """An empty project data/ folder and an empty RESNOTES_DATA folder, both under tmp_path;
    the tensor cache goes to tmp_path/cache (never into the real data/cache)."""
    project = tmp_path / "project-data"
    project.mkdir()
    external = tmp_path / "external"
    external.mkdir()
    monkeypatch.setattr(rdata, "project_data_dir", lambda: project)
    monkeypatch.setenv("RESNOTES_DATA", str(external))
    monkeypatch.setenv("RESNOTES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RESNOTES_PROGRESS", "0")
    return project, external


@pytest.fixture
def tiny_cifar10(data_env):
    """A CIFAR-10 pickle copy with 10 train and 4 test images per class."""
    _, external = data_env
    write_cifar10_pickles(external)
    return rdata.load_cifar("cifar10", download=False)


def real_cifar10_available() -> bool:
    """Whether a real CIFAR-10 copy can be found without downloading."""
    try:
        rdata.load_raw("cifar10", download=False)
        return True
    except (rdata.DataNotFoundError, rdata.DataFormatError):
        return False


@pytest.fixture(autouse=True)
def _no_reference_solutions(monkeypatch):
    """The root conftest.py sets RESNOTES_SOLUTIONS=1 for the chapters' kernels
    (nbval); the unit tests run as a reader's session would, without it."""
    monkeypatch.delenv("RESNOTES_SOLUTIONS", raising=False)
