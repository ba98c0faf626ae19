"""Image folders that are not what they look like are refused, naming the place:
a class folder linked to another's, a FIFO named like an image, images in a
subfolder, a missing test/ or class, one image per class."""

import os
import shutil

import pytest

import resnotes.datasets as rdata
from conftest import write_imagefolder
from resnotes.datafiles import DataFormatError


@pytest.fixture
def tree(data_env):
    _, external = data_env
    write_imagefolder(external, per_class=3)
    return external


def load():
    return rdata.load_cifar("cifar10", download=False)


def test_a_class_folder_linked_to_another_class_is_refused(tree):
    """The dog class trained on the cat images."""
    dog = tree / "train" / "dog"
    shutil.rmtree(dog)
    os.symlink(tree / "train" / "cat", dog)
    with pytest.raises(DataFormatError, match="train/dog is a link"):
        load()


def test_an_image_that_is_a_link_is_refused(tree):
    target = next((tree / "train" / "cat").iterdir())
    os.symlink(target, tree / "train" / "dog" / "borrowed.png")
    with pytest.raises(DataFormatError, match="dog/borrowed.png is a link"):
        load()


def test_a_fifo_named_like_an_image_is_refused_instead_of_hanging(tree):
    os.mkfifo(tree / "train" / "cat" / "pipe.jpg")
    with pytest.raises(DataFormatError, match="cat/pipe.jpg is not a regular file"):
        load()


def test_images_in_a_subfolder_of_a_class_are_named_not_dropped(tree):
    sub = tree / "train" / "cat" / "more"
    sub.mkdir()
    shutil.copy(next((tree / "train" / "cat").glob("*.png")), sub / "extra.png")
    with pytest.raises(DataFormatError, match="cat/more/ is a subfolder holding images"):
        load()
    shutil.rmtree(sub)
    (tree / "train" / "cat" / ".ipynb_checkpoints").mkdir()  # no images: harmless
    assert len(load().classes) == 10


def test_a_missing_test_folder_is_named(tree):
    """It said "CIFAR-10 was not found" though train/ was there."""
    shutil.rmtree(tree / "test")
    with pytest.raises(DataFormatError, match="holds train/ but no test/"):
        load()


def test_a_missing_class_is_named(tree):
    shutil.rmtree(tree / "train" / "dog")
    with pytest.raises(DataFormatError, match=r"9 class folders \(missing: dog\)"):
        load()


def test_one_training_image_per_class_is_refused_not_loaded_as_none(data_env):
    """It loaded as 0 training images (the one image held out for validation)."""
    _, external = data_env
    write_imagefolder(external, per_class=1)
    with pytest.raises(DataFormatError, match="smallest class of the training set has 1 image"):
        load()
