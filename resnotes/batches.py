"""Batches on the training device: the uint8 dataset is copied there once, and
each batch is augmented (4-pixel padded random crop, horizontal flip) and
normalised there as a whole, so there is no per-image PIL work and no
host-device copy inside an epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .datasets import STATS


def crop_flip(
    images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int = 4
) -> torch.Tensor:
    """Pad by ``padding`` with zeros, crop the window at ``offsets`` (2, B), flip where
    ``flips`` (B,): one indexing operation for the whole uint8 (B, C, H, W) batch."""
    b, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)  # (B, C, H + 2p, W + 2p)
    rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # (B, W)
    cols = torch.where(
        flips[:, None], cols.flip(1), cols
    )  # a flip reverses the columns
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def draw_crop_flip(
    generator: torch.Generator, batch_sizes: list[int], padding: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop offsets (2, N) and flips (N,) of a whole epoch, drawn on the CPU
    batch after batch: for each batch its offsets, then its flips."""
    offsets, flips = [], []
    for b in batch_sizes:
        offsets.append(torch.randint(0, 2 * padding + 1, (2, b), generator=generator))
        flips.append(torch.rand(b, generator=generator) < 0.5)
    return torch.cat(offsets, 1), torch.cat(flips)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the CPU) on ``device``. To a GPU the copy goes from pinned
    memory without waiting (``non_blocking``): the epoch plan, drawn on the CPU,
    then costs the host no sync (a plain copy from pageable memory waits for it)."""
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class DeviceBatches:
    """Iterate over (images, labels) batches of a uint8 dataset kept on ``device``.

    The whole uint8 dataset is moved to the device once. Each training epoch
    draws its order and every crop and flip at its start, on the CPU, and
    copies them to the device in one go: no step waits on the host. Each batch
    is augmented there (if ``train``), converted to float and normalised.
    Shuffling and augmentation are seeded by ``seed`` and the epoch, so an
    epoch's batches are the same whenever it is replayed (after a resume, say).
    Training drops the last partial batch (every step has one shape);
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
            raise ValueError(
                f"rank must be in [0, world_size), got {rank} of {world_size}"
            )
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 (N, C, H, W) tensor")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.channels_last = channels_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.mean_std = (tuple(mean), tuple(std))
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255

    def to(self, device: torch.device | str) -> DeviceBatches:
        """The same batches on ``device`` (``self`` when they are there already)."""
        device = torch.device(device)
        if device == self.device or (
            device.type == self.device.type and device.index is None
        ):
            return self
        moved = DeviceBatches(
            self.images,
            self.labels,
            self.batch_size,
            device,
            *self.mean_std,
            train=self.train,
            seed=self.seed,
            channels_last=self.channels_last,
            rank=self.rank,
            world_size=self.world_size,
        )
        moved.epoch = self.epoch
        return moved

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of an epoch's order: every world_size-th index from
        ``rank``.

        With several processes (DistributedDataParallel), all ranks draw the
        same permutation and each takes its own slice, so together they see
        every image of the epoch once. When the number of images does not
        divide evenly, the last ``len % world_size`` of the permutation
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

    def epoch_plan(
        self,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """This epoch's order of images, and its crop offsets and flips (training),
        on the device."""
        if not self.train:
            return torch.arange(len(self.labels), device=self.device), None, None
        # Generator seeds are taken modulo 2**64, the range manual_seed accepts: the
        # same seeds as ever for the usual seeds, and no overflow for any seed.
        epoch_seed = self.seed * 100_003 + self.epoch
        generator = torch.Generator().manual_seed(epoch_seed % 2**64)
        order = self.shard(torch.randperm(len(self.labels), generator=generator))
        if self.world_size > 1:  # each rank augments its images with its own draws
            seed = (epoch_seed * 1_009 + self.rank) % 2**64
            generator = torch.Generator().manual_seed(seed)
        offsets, flips = draw_crop_flip(generator, [self.batch_size] * len(self))
        return to_device(order, self.device), *(
            to_device(t, self.device) for t in (offsets, flips)
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self.epoch_plan()
        for step in range(len(self)):
            batch = slice(step * self.batch_size, (step + 1) * self.batch_size)
            idx = order[batch]
            images = self.images[idx]
            if self.train:
                images = crop_flip(images, offsets[:, batch], flips[batch])
            yield self.normalise(images), self.labels[idx]
