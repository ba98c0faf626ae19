"""Batches on the training device: the uint8 dataset is copied there once, and
each batch is augmented (4-pixel padded random crop, horizontal flip) and
normalised there as a whole, so there is no per-image PIL work and no
host-device copy inside an epoch.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from .datasets import STATS


# --------------------------------------------------------------------------
# Whole-batch augmentation on the device
# --------------------------------------------------------------------------


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Pad by ``padding`` with zeros, crop the 32x32 window at ``offsets`` (2, B), flip where ``flips`` (B,).

    ``images`` is a uint8 (B, C, H, W) batch; the crop and flip of every image
    are one indexing operation on the device.
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)  # (B, C, H + 2p, W + 2p)
    rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip reverses the columns read
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def draw_crop_flip(generator: torch.Generator, batch_sizes: list[int], padding: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop offsets (2, N) and flips (N,) of a whole epoch, drawn on the CPU
    batch after batch: for each batch its offsets, then its flips."""
    offsets, flips = [], []
    for b in batch_sizes:
        offsets.append(torch.randint(0, 2 * padding + 1, (2, b), generator=generator))
        flips.append(torch.rand(b, generator=generator) < 0.5)
    return torch.cat(offsets, 1), torch.cat(flips)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Pad, crop a random 32x32 window per image and flip half: ``crop_flip``
    with offsets and flips drawn from a CPU ``generator``, so the result does not
    depend on the device."""
    offsets, flips = draw_crop_flip(generator, [len(images)], padding)
    return crop_flip(images, offsets.to(images.device), flips.to(images.device), padding)


class DeviceBatches:
    """Iterate over (images, labels) batches from a uint8 dataset kept on ``device``.

    The whole uint8 dataset is moved to the device once. Each training epoch
    draws its order and every crop and flip at its start, on the CPU, and
    copies them to the device in one go: no step waits on the host. Each batch
    is augmented there (if ``train``), converted to float and normalised.
    Shuffling and augmentation are seeded by ``seed`` and the epoch, so an
    epoch's batches are the same whenever it is replayed (for example after a
    resume). Training drops the last partial batch (every step has one shape);
    evaluation keeps every image.
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
        if self.train:
            return len(self.labels) // self.world_size // self.batch_size
        return -(-len(self.labels) // self.batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        out = (images.float() - self.mean) / self.std
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, steps = len(self.labels), len(self)
        if self.train:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = self.shard(torch.randperm(n, generator=generator))
            if self.world_size > 1:  # each rank augments its images with its own random draws
                generator = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) * 1_009 + self.rank)
            offsets, flips = draw_crop_flip(generator, [self.batch_size] * steps)
            order, offsets, flips = (t.to(self.device) for t in (order, offsets, flips))
        else:
            order = torch.arange(n, device=self.device)
        self.last_order = order
        for step in range(steps):
            batch = slice(step * self.batch_size, (step + 1) * self.batch_size)
            idx = order[batch]
            images = self.images[idx]
            if self.train:
                images = crop_flip(images, offsets[:, batch], flips[batch])
            yield self.normalise(images), self.labels[idx]
