import time

import numpy as np
import pytest
import torch

import resnotes.data as rdata
from conftest import CIFAR10_CLASSES, real_cifar10_available, write_cifar10_pickles, write_cifar100_pickles, write_imagefolder


def test_cifar10_pickle_layout_round_trips(data_env):
    _, external = data_env
    written = write_cifar10_pickles(external)
    raw = rdata.load_raw("CIFAR-10", download=False)
    assert raw["classes"] == CIFAR10_CLASSES
    assert raw["train_images"].dtype == torch.uint8 and raw["train_images"].shape == (100, 3, 32, 32)
    assert torch.equal(raw["train_images"], torch.from_numpy(written["train"]))
    assert torch.equal(raw["test_labels"], torch.from_numpy(written["test_labels"]))
    assert raw["dataset"] == "CIFAR-10" and raw["source"] == "original Python release, from $RESNOTES_DATA"


def test_cifar100_pickle_layout_uses_fine_labels(data_env):
    project, _ = data_env
    written = write_cifar100_pickles(project)
    data = rdata.load_cifar("cifar100", download=False)
    assert data.name == "CIFAR-100" and data.num_classes == 100 and data.classes == written["classes"]
    assert sorted(data.test_labels.tolist()) == list(range(100))
    assert data.std == (0.2673, 0.2564, 0.2762)
    assert "from data/" in data.source


def test_imagefolder_png_round_trips_with_sorted_class_labels(data_env):
    _, external = data_env
    written = write_imagefolder(external / "cifar10-png")
    raw = rdata.load_raw("cifar10", download=False)
    assert raw["classes"] == sorted(CIFAR10_CLASSES)
    # Files are read class by class; image i was written to class i % 10.
    order = sorted(range(30), key=lambda i: (i % 10, i))
    assert torch.equal(raw["train_images"], torch.from_numpy(written["train"][order]))
    assert raw["train_labels"].tolist() == [i % 10 for i in order]
    assert raw["dataset"] == "CIFAR-10" and raw["source"] == "ImageFolder layout, from $RESNOTES_DATA"


def test_jpeg_copy_is_labelled_with_its_quality(data_env):
    _, external = data_env
    write_imagefolder(external, fmt="JPEG")
    data = rdata.load_cifar("cifar10", download=False)
    assert data.name == "CIFAR-10 (JPEG q75 copy)"
    assert data.describe().startswith("CIFAR-10 (JPEG q75 copy), ImageFolder layout, from $RESNOTES_DATA:")


def test_pickle_layout_is_preferred_and_env_before_project(data_env):
    project, external = data_env
    write_cifar10_pickles(project)
    write_imagefolder(external / "cifar10-jpeg")
    assert rdata.load_raw("cifar10", download=False)["source"].endswith("from $RESNOTES_DATA")


def test_cache_is_used_then_rebuilt_when_corrupt(data_env, monkeypatch):
    project, external = data_env
    write_imagefolder(external)
    first = rdata.load_raw("cifar10", download=False)
    caches = list((project / "cache").glob("*.pt"))
    assert len(caches) == 1

    def fail(*args):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(rdata, "read_imagefolder_layout", fail)
    second = rdata.load_raw("cifar10", download=False)
    assert torch.equal(first["train_images"], second["train_images"])
    monkeypatch.undo()
    monkeypatch.setattr(rdata, "project_data_dir", lambda: project)
    monkeypatch.setenv("RESNOTES_DATA", str(external))

    caches[0].write_bytes(caches[0].read_bytes()[:100])  # truncate it
    with pytest.warns(UserWarning, match="rebuilding"):
        third = rdata.load_raw("cifar10", download=False)
    assert torch.equal(first["train_images"], third["train_images"])


def test_missing_data_offline_lists_places_and_three_ways(data_env, monkeypatch):
    def offline(key, target):
        raise OSError("no route to host")

    monkeypatch.setattr(rdata, "_download", offline)
    with pytest.raises(rdata.DataNotFoundError) as err:
        rdata.load_cifar("cifar10")
    message = str(err.value)
    assert "$RESNOTES_DATA/cifar-10-batches-py/" in message and "data/cifar-10-batches-py/" in message
    assert "download failed: OSError: no route to host" in message
    assert "1. connect" in message and "2. copy" in message and "3. set RESNOTES_DATA" in message


def test_resnotes_data_pointing_at_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNOTES_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(rdata.DataNotFoundError, match="RESNOTES_DATA is set to .* not a folder"):
        rdata.load_raw("cifar10", download=False)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="valid names: CIFAR-10, CIFAR-100"):
        rdata.load_raw("mnist")


def test_imagefolder_with_missing_class(data_env):
    _, external = data_env
    write_imagefolder(external, classes=CIFAR10_CLASSES[:9])
    with pytest.raises(rdata.DataFormatError, match="has 9 class folders; CIFAR-10 needs 10"):
        rdata.load_raw("cifar10", download=False)


def test_imagefolder_with_wrong_image_size(data_env):
    from PIL import Image

    _, external = data_env
    write_imagefolder(external)
    Image.new("RGB", (64, 48)).save(external / "train" / "cat" / "big.png")
    with pytest.raises(rdata.DataFormatError, match="64x48 RGB image; CIFAR images must be 32x32 RGB"):
        rdata.load_raw("cifar10", download=False)


def test_subsets_are_class_balanced_deterministic_and_disjoint(data_env):
    _, external = data_env
    write_cifar10_pickles(external, per_class_train=50, per_class_test=10)
    a = rdata.load_cifar("cifar10", train_per_class=30, test_per_class=5, download=False, seed=1)
    b = rdata.load_cifar("cifar10", train_per_class=30, test_per_class=5, download=False, seed=1)
    c = rdata.load_cifar("cifar10", train_per_class=30, test_per_class=5, download=False, seed=2)
    assert torch.equal(a.train_images, b.train_images) and not torch.equal(a.train_images, c.train_images)
    assert torch.bincount(a.train_labels).tolist() == [27] * 10  # 30 per class, 10% held out
    assert torch.bincount(a.val_labels).tolist() == [3] * 10
    assert torch.bincount(a.test_labels).tolist() == [5] * 10
    # Validation images are held out: none of them is also a training image.
    flat = lambda t: {bytes(x.numpy()) for x in t.flatten(1)}  # noqa: E731
    assert not flat(a.train_images) & flat(a.val_images)


def test_full_split_holds_out_ten_percent(data_env):
    _, external = data_env
    write_cifar10_pickles(external, per_class_train=50)
    data = rdata.load_cifar("cifar10", download=False)
    assert len(data.val_labels) == 50 and len(data.train_labels) == 450


@pytest.mark.skipif(not real_cifar10_available(), reason="no real CIFAR-10 copy in $RESNOTES_DATA or data/")
def test_real_cifar10_full_split_and_cache_speed():
    rdata.load_raw("cifar10", download=False)  # builds the cache if needed
    start = time.perf_counter()
    raw = rdata.load_raw("cifar10", download=False)
    seconds = time.perf_counter() - start
    assert raw["train_images"].shape == (50_000, 3, 32, 32) and raw["test_images"].shape == (10_000, 3, 32, 32)
    assert seconds < 2.0, f"loading 60,000 images from the cache took {seconds:.2f} s"
    data = rdata.load_cifar("cifar10", download=False)
    assert len(data.val_labels) == 5_000 and len(data.train_labels) == 45_000
    # The dataset's own statistics, which the normalisation uses.
    pixels = raw["train_images"].float().div_(255)
    mean = pixels.mean((0, 2, 3))
    assert np.allclose(mean.numpy(), rdata.STATS["cifar10"][0], atol=0.01)
