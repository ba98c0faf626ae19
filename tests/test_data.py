import os
import time

import numpy as np
import pytest
import torch

import resnotes.datasets as rdata
from conftest import (
    CIFAR10_CLASSES,
    real_cifar10_available,
    write_cifar10_pickles,
    write_cifar100_pickles,
    write_imagefolder,
)


def test_cifar10_pickle_layout_round_trips(data_env):
    _, external = data_env
    written = write_cifar10_pickles(external)
    raw = rdata.load_raw("CIFAR-10", download=False)
    assert raw["classes"] == CIFAR10_CLASSES
    assert raw["train_images"].dtype == torch.uint8 and raw["train_images"].shape == (100, 3, 32, 32)
    assert torch.equal(raw["train_images"], torch.from_numpy(written["train"]))
    assert torch.equal(raw["test_labels"], torch.from_numpy(written["test_labels"]))
    assert (
        raw["dataset"] == "CIFAR-10"
        and raw["source"] == "original Python release, from $RESNOTES_DATA/cifar-10-batches-py"
    )


def test_cifar100_pickle_layout_uses_fine_labels(data_env, monkeypatch):
    project, _ = data_env
    monkeypatch.chdir(project.parent)  # the data line names the folder as seen from here
    written = write_cifar100_pickles(project)
    data = rdata.load_cifar("cifar100", download=False)
    assert data.name == "CIFAR-100" and data.num_classes == 100 and data.classes == written["classes"]
    assert sorted(data.test_labels.tolist()) == list(range(100))
    assert data.std == (0.2673, 0.2564, 0.2762)
    assert data.source == "original Python release, from project-data/cifar-100-python"


def test_imagefolder_png_round_trips_with_sorted_class_labels(data_env):
    _, external = data_env
    written = write_imagefolder(external / "cifar10-png")
    raw = rdata.load_raw("cifar10", download=False)
    assert raw["classes"] == sorted(CIFAR10_CLASSES)
    # Files are read class by class; image i was written to class i % 10.
    order = sorted(range(30), key=lambda i: (i % 10, i))
    assert torch.equal(raw["train_images"], torch.from_numpy(written["train"][order]))
    assert raw["train_labels"].tolist() == [i % 10 for i in order]
    assert raw["dataset"] == "CIFAR-10" and raw["source"] == "ImageFolder layout, from $RESNOTES_DATA/cifar10-png"


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
    assert rdata.load_raw("cifar10", download=False)["source"] == "ImageFolder layout, from $RESNOTES_DATA/cifar10-jpeg"


def test_cache_is_used_then_rebuilt_when_corrupt(data_env, monkeypatch, tmp_path):
    project, external = data_env
    write_imagefolder(external)
    first = rdata.load_raw("cifar10", download=False)
    caches = list((tmp_path / "cache").glob("*.pt"))
    assert len(caches) == 1 and not (project / "cache").exists()

    def fail(*args):
        raise AssertionError("decoded again although the cache is valid")

    with monkeypatch.context() as patch:
        patch.setattr(rdata, "read_imagefolder_layout", fail)
        second = rdata.load_raw("cifar10", download=False)
    assert torch.equal(first["train_images"], second["train_images"])

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
    assert "$RESNOTES_DATA/cifar-10-batches-py/" in message and "project-data/cifar-10-batches-py/" in message
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
    with pytest.raises(rdata.DataFormatError, match=r"has 9 class folders \(missing: truck\); CIFAR-10 needs 10"):
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
    flat = lambda t: {bytes(x.numpy()) for x in t.flatten(1)}
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


# --------------------------------------------------------------------------
# The tests' own isolation
# --------------------------------------------------------------------------


def test_data_env_keeps_the_cache_out_of_the_project(data_env, tmp_path):
    project, external = data_env
    assert os.environ["RESNOTES_CACHE_DIR"] == str(tmp_path / "cache")
    write_imagefolder(external)
    rdata.load_raw("cifar10", download=False)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1 and not (project / "cache").exists()


# --------------------------------------------------------------------------
# The dataset's name is true of every file; the source names the folder used
# --------------------------------------------------------------------------


def test_bmp_and_png_together_are_plain_cifar(data_env):
    from PIL import Image

    _, external = data_env
    written = write_imagefolder(external)
    Image.fromarray(written["train"][0].transpose(1, 2, 0)).save(external / "train" / "airplane" / "extra.bmp")
    assert rdata.load_raw("cifar10", download=False)["dataset"] == "CIFAR-10"


@pytest.mark.parametrize(
    "base, odd, odd_kind", [("JPEG", "PNG", "lossless"), ("PNG", "JPEG", "JPEG q75"), ("JPEG", "JPEG q90", "JPEG q90")]
)
def test_a_tree_that_mixes_kinds_of_image_is_refused(data_env, base, odd, odd_kind):
    from PIL import Image

    _, external = data_env
    write_imagefolder(external, fmt=base)
    odd_file = external / "test" / "truck" / ("odd.png" if odd == "PNG" else "odd.jpg")
    Image.new("RGB", (32, 32), (9, 99, 199)).save(odd_file, odd.split()[0], quality=int(odd[-2:]) if "q" in odd else 75)
    first = "train/airplane/0000." + ("png" if base == "PNG" else "jpg")
    base_kind = "lossless" if base == "PNG" else "JPEG q75"
    with pytest.raises(rdata.DataFormatError) as err:
        rdata.load_raw("cifar10", download=False)
    message = str(err.value)
    assert f"mixes images of different kinds: {base_kind} ({first}), {odd_kind} (test/truck/odd." in message
    assert "use a copy made in one format" in message


def test_two_copies_in_one_folder_source_names_the_one_used(data_env):
    _, external = data_env
    write_imagefolder(external / "cifar10-jpeg", fmt="JPEG")
    write_imagefolder(external / "CIFAR-10")  # PNG; sorts first, so it is used
    data = rdata.load_cifar("cifar10", download=False)
    assert data.name == "CIFAR-10"
    assert (
        data.source
        == "ImageFolder layout, from $RESNOTES_DATA/CIFAR-10; ignored another copy in $RESNOTES_DATA/cifar10-jpeg"
    )


def test_pickles_beside_an_imagefolder_copy_say_so(data_env, monkeypatch):
    project, _ = data_env
    monkeypatch.chdir(project)
    write_cifar10_pickles(project)
    write_imagefolder(project / "cifar10-jpeg", fmt="JPEG")
    write_imagefolder(project / "CIFAR-10")
    source = rdata.load_raw("cifar10", download=False)["source"]
    assert (
        source
        == "original Python release, from ./cifar-10-batches-py; ignored other copies in ./CIFAR-10, ./cifar10-jpeg"
    )


# --------------------------------------------------------------------------
# Every data error names the file and what is wrong with it
# --------------------------------------------------------------------------


def _break_truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _break_header_only(path):
    path.write_bytes(path.read_bytes()[:200])


def _break_not_an_image(path):
    path.write_text("these are my notes, not a picture\n")


def _break_grey(path):
    from PIL import Image

    Image.new("L", (32, 32)).save(path, "JPEG", quality=75)


def _break_gif(path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(path, "GIF")


@pytest.mark.parametrize(
    "damage, expected",
    [
        (_break_truncated, "train/dog/0005.jpg could not be decoded, it may be truncated or corrupt (OSError: "),
        (_break_header_only, "train/dog/0005.jpg could not be decoded, it may be truncated or corrupt"),
        (_break_not_an_image, "train/dog/0005.jpg is not an image file"),
        (_break_grey, "train/dog/0005.jpg is a 32x32 L image; CIFAR images must be 32x32 RGB"),
        (_break_gif, "train/dog/0005.jpg is a GIF file; CIFAR images must be PNG, BMP or JPEG"),
    ],
    ids=["truncated", "header only", "not an image", "greyscale", "gif"],
)
def test_a_bad_image_file_is_named(data_env, damage, expected):
    _, external = data_env
    write_imagefolder(external, fmt="JPEG")
    damage(external / "train" / "dog" / "0005.jpg")
    with pytest.raises(rdata.DataFormatError) as err:
        rdata.load_raw("cifar10", download=False)
    assert str(err.value).startswith(expected), str(err.value)


def test_a_broken_link_is_named(data_env):
    _, external = data_env
    write_imagefolder(external)
    (external / "train" / "cat" / "broken.png").symlink_to(external / "nowhere.png")
    with pytest.raises(
        rdata.DataFormatError, match="^train/cat/broken.png cannot be read \\(No such file or directory\\)"
    ):
        rdata.load_raw("cifar10", download=False)


# --------------------------------------------------------------------------
# Subset sizes a user can act on (they come from --train-per-class, --test-per-class)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (
            {"train_per_class": 1},
            "train_per_class (--train-per-class) must be at least 2, so that each class keeps a training image after 10% of it (at least one image) is held out for validation; got 1",
        ),
        ({"train_per_class": 0}, "train_per_class (--train-per-class) must be at least 2"),
        (
            {"train_per_class": 11},
            "train_per_class (--train-per-class) can be at most 10: the smallest class of the train set has 10 images; got 11",
        ),
        ({"test_per_class": 0}, "test_per_class (--test-per-class) must be at least 1; got 0"),
        (
            {"test_per_class": 5},
            "test_per_class (--test-per-class) can be at most 4: the smallest class of the test set has 4 images; got 5",
        ),
    ],
)
def test_subset_sizes_out_of_range_say_the_limits(data_env, kwargs, expected):
    _, external = data_env
    write_cifar10_pickles(external)  # 10 train, 4 test images per class
    with pytest.raises(ValueError) as err:
        rdata.load_cifar("cifar10", download=False, **kwargs)
    assert str(err.value).startswith(expected)


def test_smallest_and_largest_subsets_work(data_env):
    _, external = data_env
    write_cifar10_pickles(external)
    small = rdata.load_cifar("cifar10", train_per_class=2, test_per_class=1, download=False)
    assert len(small.train_labels) == 10 and len(small.val_labels) == 10 and len(small.test_labels) == 10
    large = rdata.load_cifar("cifar10", train_per_class=10, test_per_class=4, download=False)
    assert len(large.train_labels) == 90 and len(large.test_labels) == 40
    half = rdata.load_cifar("cifar10", train_per_class=2, val_fraction=0.5, download=False)
    assert len(half.train_labels) == 10


def test_the_data_line_names_the_folder_read_as_seen_from_the_current_one(data_env, monkeypatch, tmp_path):
    """Run from another folder, it used to print data/... relative to the checkout."""
    project, _ = data_env
    write_cifar10_pickles(project)
    elsewhere = tmp_path / "a" / "b" / "c"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    source = rdata.load_raw("cifar10", download=False)["source"]
    assert source.endswith(f"from {project}/cifar-10-batches-py"), source
    monkeypatch.chdir(tmp_path)
    assert rdata.load_raw("cifar10", download=False)["source"].endswith("from project-data/cifar-10-batches-py")


def test_a_broken_torchvision_is_not_taken_for_a_failed_download(data_env, monkeypatch):
    """'operator torchvision::nms does not exist' was reported as 'the download failed'."""
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "torchvision":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(rdata.DataNotFoundError) as err:
        rdata.load_cifar("cifar10")
    message = str(err.value)
    assert "torchvision" in message and "cannot be imported" in message and "nms" in message
    assert "download failed" not in message and "RESNOTES_DATA" in message
