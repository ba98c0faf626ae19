"""The data layer under attack and under failure: a stale or forged cache, a pickle
that runs code, a planted symlink, a full disk, and a crash at each step of the
cache write."""

import contextlib
import errno
import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import resnotes.cache as rcache
import resnotes.datasets as rdata
from conftest import python2_dumps, write_cifar10_pickles, write_imagefolder

ROOT = Path(__file__).resolve().parent.parent


def fresh_decode(folder: Path) -> torch.Tensor:
    """The training images as decoding the files now gives them (no cache)."""
    return rdata.read_imagefolder_layout(folder, "cifar10")["train_images"]


def repaint(path: Path, colour=(255, 0, 0)) -> None:
    """Overwrite an image with a plain one (much smaller as a PNG, so its size changes too)."""
    Image.new("RGB", (32, 32), colour).save(path)


def cache_files(tmp_path: Path) -> dict[str, bytes]:
    """Every file in the test's cache folder, hidden ones included, with its bytes."""
    folder = tmp_path / "cache"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


# --------------------------------------------------------------------------
# 1. The cache follows every image file, and its checks are not asserts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["repaint", "delete", "add", "same size, later mtime"])
def test_cache_notices_changes_inside_class_folders(data_env, change):
    _, external = data_env
    write_imagefolder(external, fmt="BMP" if change.startswith("same size") else "PNG")
    rdata.load_raw("cifar10", download=False)  # builds the cache
    cat = sorted((external / "train" / "cat").iterdir())
    if change == "repaint":
        repaint(cat[0])
    elif change == "delete":
        cat[0].unlink()
    elif change == "add":
        repaint(cat[0].with_name("new.png"))
    else:  # a BMP of the same size, rewritten later (the clock may not have moved yet: set the time)
        before = cat[0].stat()
        Image.new("RGB", (32, 32), (0, 255, 0)).save(cat[0], "BMP")
        assert cat[0].stat().st_size == before.st_size
        os.utime(cat[0], ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    with pytest.warns(UserWarning, match="files changed since it was written\\); rebuilding it"):
        raw = rdata.load_raw("cifar10", download=False)
    assert torch.equal(raw["train_images"], fresh_decode(external))


def test_fingerprint_covers_the_files_not_the_cache_beside_them(tmp_path):
    """A copy directly in data/ has data/cache/ beside train/ and test/: writing the cache must not change the key."""
    write_imagefolder(tmp_path)
    before = rcache.fingerprint(tmp_path, ("train", "test"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cifar10-x.pt").write_bytes(b"...")
    assert rcache.fingerprint(tmp_path, ("train", "test")) == before
    os.utime(tmp_path / "test" / "dog" / "0005.png", ns=(0, 0))
    assert rcache.fingerprint(tmp_path, ("train", "test")) != before


TAMPERINGS = {
    "old format": (lambda raw: {**raw, "version": 2}, "format 2, expected 3"),
    "other files": (lambda raw: {**raw, "fingerprint": "0" * 64}, "files changed"),
    "wrong shape": (
        lambda raw: {**raw, "train_images": raw["train_images"][:, :, :16]},
        "train images are not a uint8",
    ),
    "wrong dtype": (lambda raw: {**raw, "test_images": raw["test_images"].float()}, "test images are not a uint8"),
    "labels too short": (lambda raw: {**raw, "train_labels": raw["train_labels"][:-1]}, "train labels do not match"),
    "no name": (lambda raw: {k: v for k, v in raw.items() if k != "dataset"}, "lacks the dataset's name"),
    "not a dict": (lambda raw: [raw["train_images"]], "not a dictionary"),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_a_cache_that_fails_a_check_is_rebuilt(data_env, tmp_path, tampering):
    _, external = data_env
    write_imagefolder(external)
    first = rdata.load_raw("cifar10", download=False)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    change, reason = TAMPERINGS[tampering]
    torch.save(change(torch.load(cache, weights_only=True)), cache)
    with pytest.warns(UserWarning, match=f"ignoring the cache {cache.name} \\(.*{reason}.*\\); rebuilding it"):
        second = rdata.load_raw("cifar10", download=False)
    assert torch.equal(first["train_images"], second["train_images"]) and second["dataset"] == "CIFAR-10"


OPTIMISED_LOADS = """
import sys, warnings
import torch
import resnotes.datasets as rdata
cache = sys.argv[1]
for change in (lambda raw: {**raw, "version": 2}, lambda raw: {**raw, "train_images": raw["train_images"][:, :, :16]}):
    torch.save(change(torch.load(cache, weights_only=True)), cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = rdata.load_raw("cifar10", download=False)
    print(tuple(raw["train_images"].shape), *[str(w.message) for w in caught])
"""


def test_cache_checks_hold_under_python_O(data_env, tmp_path):
    """``python -O`` strips asserts: the checks must be real ones (an old format, then a wrong shape)."""
    _, external = data_env
    write_imagefolder(external)
    rdata.load_raw("cifar10", download=False)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RESNOTES_DATA": str(external),
        "RESNOTES_CACHE_DIR": str(cache.parent),
    }
    command = [sys.executable, "-O", "-c", OPTIMISED_LOADS, str(cache)]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    old_format, wrong_shape = result.stdout.splitlines()
    assert (
        old_format.startswith("(30, 3, 32, 32) ignoring the cache")
        and "(format 2, expected 3); rebuilding it" in old_format
    )
    assert (
        wrong_shape.startswith("(30, 3, 32, 32) ignoring the cache") and "train images are not a uint8" in wrong_shape
    )


# --------------------------------------------------------------------------
# 3. CIFAR's pickles are read without running code
# --------------------------------------------------------------------------


class RunsAShellCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.mark.parametrize("victim", ["data_batch_1", "batches.meta"])
def test_a_pickle_that_would_run_code_is_refused(data_env, tmp_path, victim):
    _, external = data_env
    write_cifar10_pickles(external)
    marker = tmp_path / "pwned"
    payload = {"data": RunsAShellCommand(marker), "labels": [], "label_names": RunsAShellCommand(marker)}
    (external / "cifar-10-batches-py" / victim).write_bytes(pickle.dumps(payload))
    with pytest.raises(
        rdata.DataFormatError,
        match=f"cifar-10-batches-py/{victim} holds objects other than CIFAR's arrays \\(posix.system\\)",
    ):
        rdata.load_raw("cifar10", download=False)
    assert not marker.exists()


@pytest.mark.parametrize(
    "dumps",
    [python2_dumps, lambda obj: pickle.dumps(obj, protocol=4), lambda obj: pickle.dumps(obj, protocol=5)],
    ids=["python2", "protocol4", "protocol5"],
)
def test_pickles_of_each_protocol_still_load(data_env, dumps):
    _, external = data_env
    written = write_cifar10_pickles(external, dumps=dumps)
    raw = rdata.load_raw("cifar10", download=False)
    assert torch.equal(raw["train_images"], torch.from_numpy(written["train"]))
    assert raw["train_labels"].tolist() == written["train_labels"].tolist()


def test_python2_fixture_is_like_cifars_own_files():
    """Python 2's byte strings, which only encoding="latin1" reads, and numpy 1's module name."""
    data = python2_dumps({"data": np.array([[200, 1]], dtype=np.uint8)})
    assert b"numpy.core.multiarray\n_reconstruct" in data
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)


@pytest.mark.parametrize("damage", ["truncated", "not a dict", "no data"])
def test_a_damaged_pickle_is_named(data_env, damage):
    _, external = data_env
    write_cifar10_pickles(external)
    batch = external / "cifar-10-batches-py" / "data_batch_3"
    if damage == "truncated":
        batch.write_bytes(batch.read_bytes()[:500])
        expected = "data_batch_3 is not a readable CIFAR pickle"
    elif damage == "not a dict":
        batch.write_bytes(pickle.dumps([1, 2, 3]))
        expected = "data_batch_3 holds a list, not CIFAR's dictionary"
    else:
        batch.write_bytes(pickle.dumps({"labels": [1]}))
        expected = "data_batch_3 has no 'data' array"
    with pytest.raises(rdata.DataFormatError, match=f"cifar-10-batches-py/{expected}"):
        rdata.load_raw("cifar10", download=False)


# --------------------------------------------------------------------------
# 4, 5. The cache write: planted links, a full disk
# --------------------------------------------------------------------------


def test_a_symlink_planted_at_the_old_temporary_name_is_not_followed(data_env, tmp_path):
    _, external = data_env
    write_imagefolder(external)
    cache = rcache.cache_path(external, "cifar10", rdata.project_data_dir())
    cache.parent.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache.with_suffix(".tmp").symlink_to(victim)  # the temporary file's name before atomic_write
    rdata.load_raw("cifar10", download=False)
    assert victim.read_text() == "precious"
    assert cache.is_file() and not cache.is_symlink()
    assert rcache.read_cache(cache, rcache.fingerprint(external, ("train", "test"))) is not None


def save_on_a_full_disk(obj, file):
    """torch.save when the disk fills up: some bytes are written, then the write fails."""
    if isinstance(file, (str, os.PathLike)):  # how the cache was written before atomic_write
        file = open(file, "wb")  # noqa: SIM115
    file.write(b"PK\x03\x04" + b"\0" * 60)
    file.flush()
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_warns_and_leaves_no_file(data_env, tmp_path, monkeypatch):
    _, external = data_env
    write_imagefolder(external)
    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    with pytest.warns(
        UserWarning,
        match="could not write .*cifar10-.*\\.pt: the disk is full; no cifar10-.*\\.pt was written; the data will be decoded again",
    ):
        raw = rdata.load_raw("cifar10", download=False)
    assert torch.equal(raw["train_images"], fresh_decode(external))
    assert cache_files(tmp_path) == {}


REAL_WRITE_FAILURE = """
import resource, signal, warnings
import resnotes.datasets as rdata
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    raw = rdata.load_raw("cifar10", download=False)
print(tuple(raw["train_images"].shape))
print(*[str(w.message) for w in caught], sep="\\n")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE and SIGXFSZ")
def test_a_real_failed_write_through_torch_save_is_caught(data_env, tmp_path):
    """Not a mock: the kernel refuses the bytes past 20 kB, as a full disk would."""
    _, external = data_env
    write_imagefolder(external)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RESNOTES_DATA": str(external),
        "RESNOTES_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [sys.executable, "-c", REAL_WRITE_FAILURE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shape, message = result.stdout.splitlines()
    assert (
        shape == "(30, 3, 32, 32)"
        and message.startswith("could not write ")
        and message.endswith("; the data will be decoded again next time")
    )
    assert cache_files(tmp_path) == {}


# --------------------------------------------------------------------------
# 9. A crash at each step of the cache write
# --------------------------------------------------------------------------


class Crash(Exception):
    """The process dying part-way (not an OSError, so nothing handles it on the way out)."""


def failing(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def save_half_then(exc):
    real_save = torch.save

    def save(obj, file):
        whole = io.BytesIO()
        real_save(obj, whole)
        file.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise exc

    return save


STEPS = {
    "creating the temporary file": lambda patch, exc: patch.setattr(tempfile, "mkstemp", failing(exc)),
    "in the middle of writing": lambda patch, exc: patch.setattr(torch, "save", save_half_then(exc)),
    "at fsync": lambda patch, exc: patch.setattr(os, "fsync", failing(exc)),
    "at the rename": lambda patch, exc: patch.setattr(os, "replace", failing(exc)),
}


@pytest.mark.parametrize("had_cache", [True, False], ids=["over a good cache", "first write"])
@pytest.mark.parametrize("failure", ["OSError", "crash"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_each_step_of_the_cache_write(data_env, tmp_path, monkeypatch, step, failure, had_cache):
    _, external = data_env
    write_imagefolder(external)
    if had_cache:
        rdata.load_raw("cifar10", download=False)
        repaint(external / "train" / "cat" / "0003.png")  # the cache is now stale and will be rewritten
    before = cache_files(tmp_path)
    assert len(before) == had_cache
    exc = OSError(errno.EIO, "Input/output error") if failure == "OSError" else Crash(step)

    with monkeypatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        STEPS[step](patch, exc)
        if failure == "OSError":  # reported, and the data is still returned
            raw = rdata.load_raw("cifar10", download=False)
            assert torch.equal(raw["train_images"], fresh_decode(external))
        else:
            with pytest.raises(Crash):
                rdata.load_raw("cifar10", download=False)
    messages = [str(w.message) for w in caught]
    assert (failure == "OSError") == any("decoded again next time" in m for m in messages), messages
    assert cache_files(tmp_path) == before  # no temporary or empty file; the old cache intact

    with pytest.warns(UserWarning, match="files changed") if had_cache else contextlib.nullcontext():
        raw = rdata.load_raw("cifar10", download=False)  # nothing patched now: the stale cache is replaced
    assert torch.equal(raw["train_images"], fresh_decode(external))
    after = cache_files(tmp_path)
    assert len(after) == 1 and after != before
    with monkeypatch.context() as patch:
        patch.setattr(
            rdata, "read_imagefolder_layout", failing(AssertionError("decoded again although the cache is valid"))
        )
        assert torch.equal(rdata.load_raw("cifar10", download=False)["train_images"], raw["train_images"])
