import pytest
import torch

from resnotes.batches import DeviceBatches, crop_flip, draw_crop_flip
from resnotes.datasets import STATS


def random_crop_flip(images, generator, padding=4):
    """One batch's crops and flips, drawn from ``generator`` as an epoch draws them."""
    offsets, flips = draw_crop_flip(generator, [len(images)], padding)
    return crop_flip(images, offsets, flips, padding)


def find_window(out: torch.Tensor, image: torch.Tensor, padding: int):
    """(dy, dx, flipped) such that out is that window of the zero-padded image, or None."""
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    size = image.shape[-1]
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            window = padded[:, dy : dy + size, dx : dx + size]
            for flipped, candidate in ((False, window), (True, window.flip(-1))):
                if torch.equal(candidate, out):
                    return dy, dx, flipped
    return None


def random_batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Values from 1 up, so that the zero padding cannot be confused with a pixel.
    return torch.randint(1, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def test_shape_and_dtype_are_kept():
    x = random_batch()
    out = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8


def test_every_output_is_a_window_within_the_padding_possibly_flipped():
    x = random_batch()
    out = random_crop_flip(x, torch.Generator().manual_seed(1))
    found = [find_window(o, i, 4) for o, i in zip(out, x)]
    assert all(f is not None for f in found), "an output is not a crop of the padded image"
    offsets = {(dy, dx) for dy, dx, _ in found}
    assert len(offsets) > 10, "crops should vary across the batch"
    flips = sum(f for _, _, f in found)
    assert 16 < flips < 48, f"{flips} of 64 flipped; expected about half"


def test_flip_is_a_mirror_of_columns():
    x = random_batch(256)
    out = random_crop_flip(x, torch.Generator().manual_seed(2), padding=0)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())
    assert 90 < int(mirrored.sum()) < 166


def test_same_seed_same_augmentation():
    x = random_batch()
    a = random_crop_flip(x, torch.Generator().manual_seed(3))
    b = random_crop_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_batches_cover_each_image_at_most_once_per_epoch_and_replay():
    labels = torch.arange(100)
    images = random_batch(100)
    batches = DeviceBatches(images, labels, batch_size=32, train=True, seed=7)
    batches.set_epoch(3)
    seen = torch.cat([y for _, y in batches])
    assert len(seen) == 96 and len(set(seen.tolist())) == 96  # the partial last batch is dropped
    first = [x for x, _ in batches]
    again = [x for x, _ in batches]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    batches.set_epoch(4)
    assert not torch.equal(torch.cat([y for _, y in batches]), seen)


def test_eval_batches_are_in_order_and_normalised_with_cifar_stats():
    mean, std = STATS["cifar10"]
    assert std == (0.2470, 0.2435, 0.2616)
    value = torch.tensor(mean).mul(255).round().to(torch.uint8).view(1, 3, 1, 1)
    images = value.expand(10, 3, 32, 32).contiguous()
    batches = DeviceBatches(images, torch.arange(10), batch_size=4, train=False)
    xs, ys = zip(*batches)
    assert torch.cat(ys).tolist() == list(range(10))
    assert xs[0].dtype == torch.float32 and torch.cat(xs).abs().max() < 0.01


def test_a_partial_last_training_batch_is_dropped_but_evaluation_sees_every_image():
    train = DeviceBatches(random_batch(90), torch.zeros(90, dtype=torch.long), batch_size=32, train=True)
    assert len(train) == 2 and [len(y) for _, y in train] == [32, 32]  # one shape for every step
    test = DeviceBatches(random_batch(90), torch.zeros(90, dtype=torch.long), batch_size=32, train=False)
    assert len(test) == 3 and [len(y) for _, y in test] == [32, 32, 26]


def test_an_epochs_augmentation_drawn_up_front_equals_drawing_it_step_by_step():
    """The randoms of a whole epoch are drawn at its start (one copy to the device,
    no host sync per step); they must be the very numbers that drawing them
    batch by batch from the same generator gives, so results stay bit-identical."""
    images, labels = random_batch(100), torch.arange(100)
    batches = DeviceBatches(images, labels, batch_size=32, train=True, seed=7)
    batches.set_epoch(2)
    got = [(x, y) for x, y in batches]
    generator = torch.Generator().manual_seed(7 * 100_003 + 2)
    order = torch.randperm(100, generator=generator)
    for step, (x, y) in enumerate(got):
        idx = order[step * 32 : (step + 1) * 32]
        expected = batches.normalise(random_crop_flip(images[idx], generator))
        assert torch.equal(y, labels[idx]) and torch.equal(x, expected), f"step {step}"


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DeviceBatches(random_batch(4), torch.zeros(4), batch_size=0)
