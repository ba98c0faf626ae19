"""The data layer in one import: ``resnotes.datasets`` (finding, reading, caching
and downloading CIFAR; subsets and the validation split) and ``resnotes.batches``
(on-device batches with whole-batch augmentation).
"""

from .batches import DeviceBatches, crop_flip, draw_crop_flip, random_crop_flip
from .datasets import (
    DISPLAY_NAMES,
    NUM_CLASSES,
    STATS,
    CifarData,
    DataFormatError,
    DataNotFoundError,
    class_balanced_indices,
    load_cifar,
    load_raw,
)

__all__ = [
    "DISPLAY_NAMES", "NUM_CLASSES", "STATS", "CifarData", "DataFormatError", "DataNotFoundError",
    "DeviceBatches", "class_balanced_indices", "crop_flip", "draw_crop_flip", "load_cifar", "load_raw", "random_crop_flip",
]
