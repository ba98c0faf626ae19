"""Every bad input to the two command lines ends in a short message, never a traceback.

The contract (issue "Reliability, second pass"), for ``python -m resnotes.train``
and ``python -m resnotes.bench``:

- a bad argument: ``SystemExit(2)`` (argparse's way) or ``main`` returns 2;
- a failure at run time (bad data, an unusable checkpoint, a folder that cannot
  be written...): ``main`` returns 1 (or raises ``SystemExit(1)``);
- Ctrl-C: exit status 130 and a one-line message saying the same command resumes;
- in no case does another exception escape ``main``; the message goes to stderr,
  is short (under 600 characters, at most 6 lines), shows no traceback, and holds
  the key facts: the file for a data or checkpoint error, the setting that
  differs when a resume is refused, and the flag that starts afresh.

Most of these run ``main(argv)`` in-process on a tiny tree of real CIFAR-10 JPEGs
(8 train and 2 test images per class, copied from data/offline/cifar10-jpeg).
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import resnotes.bench as rbench
import resnotes.cli as rcli

ROOT = Path(__file__).resolve().parent.parent
REAL_JPEGS = ROOT / "data" / "offline" / "cifar10-jpeg"
if not ((REAL_JPEGS / "train").is_dir() and (REAL_JPEGS / "test").is_dir()):
    pytest.skip(f"needs the real CIFAR-10 JPEG copy in {REAL_JPEGS}", allow_module_level=True)

TRAIN_PER_CLASS_ON_DISK = 8
TEST_PER_CLASS_ON_DISK = 2
MODEL = "preact_resnet20"
RUN_NAME = f"{MODEL}-cifar10-smoke-seed0"  # OUT/<model>-<dataset>-<profile>-seed<seed>, as --help says
ARGS = [
    "--model", MODEL, "--profile", "smoke", "--train-per-class", "6",
    "--test-per-class", "2", "--batch-size", "8",
]  # fmt: skip
FRESH_START_FLAGS = ("--no-resume",)  # what a message tells the user to pass to start afresh
MAX_CHARS, MAX_LINES = 600, 6


# --------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------


def run_cli(main, argv, capsys) -> tuple[int, str, str]:
    """Call ``main(argv)`` in-process: (exit code, stdout, stderr).

    ``SystemExit`` is turned into its code (a string code is what Python prints
    to stderr before exiting with 1); any other exception fails the test.
    """
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    except Exception as exc:  # noqa: BLE001 - that is the point of the test
        out, err = capsys.readouterr()
        pytest.fail(f"{type(exc).__name__} escaped main(): {str(exc)[:300]}\n--- stderr ---\n{err[-600:]}", pytrace=False)
    out, err = capsys.readouterr()
    return (0 if code is None else code), out, err


def message_of(err: str) -> str:
    """stderr without argparse's usage block (the lines from 'usage:' up to the error line)."""
    lines, kept, in_usage = err.splitlines(), [], False
    for line in lines:
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and (line.startswith(" ") or not line.strip()):
            continue
        in_usage = False
        kept.append(line)
    return "\n".join(kept).strip()


def check_message(err: str, *facts: str, max_chars: int = MAX_CHARS, max_lines: int = MAX_LINES) -> str:
    """Assert that stderr holds a short message with ``facts`` and no traceback; return the message."""
    assert "Traceback" not in err, f"a traceback was shown:\n{err[-1500:]}"
    message = message_of(err)
    assert message, "no message on stderr"
    assert "unrecognized arguments" not in message, f"an option this test relies on is gone:\n{message}"
    # Count pytest's long temporary folders (/tmp/pytest-of-USER/pytest-N/test_name0) as a short path.
    counted = re.sub(r"/[^\s'\"]*?/pytest-of-[^/\s]+/pytest-\d+/[^/\s'\"]+", "/tmp/x", message)
    assert len(counted) < max_chars, f"message too long ({len(counted)} characters):\n{message}"
    assert len(message.splitlines()) <= max_lines, f"message too long ({len(message.splitlines())} lines):\n{message}"
    for fact in facts:
        assert fact in message, f"{fact!r} missing from the message:\n{message}"
    return message


def has_value(message: str, value: str, *, ignore: tuple = ()) -> bool:
    """Whether ``value`` appears in ``message`` as a number of its own (not inside a path or a name)."""
    for text in sorted(map(str, ignore), key=len, reverse=True):
        message = message.replace(text, " ")
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", message) is not None


def mentions_fresh_start(message: str) -> bool:
    return any(flag in message for flag in FRESH_START_FLAGS)


def trained_an_epoch(out: str) -> bool:
    return re.search(r"^epoch\s+1\s*/", out, re.MULTILINE) is not None


def copy_jpegs(root: Path) -> None:
    for split, n in (("train", TRAIN_PER_CLASS_ON_DISK), ("test", TEST_PER_CLASS_ON_DISK)):
        for class_dir in sorted(p for p in (REAL_JPEGS / split).iterdir() if p.is_dir()):
            target = root / split / class_dir.name
            target.mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:n]:
                shutil.copy2(image, target / image.name)


@pytest.fixture(scope="session")
def jpeg_tree(tmp_path_factory) -> Path:
    """A tiny ImageFolder copy of real CIFAR-10: 8 train and 2 test JPEGs per class."""
    root = tmp_path_factory.mktemp("cifar10-tiny")
    copy_jpegs(root)
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tensor-cache")


def _patch_data_layer(monkeypatch, project: Path) -> None:
    """Never fall back to the checkout's data/ folder, and never download."""

    def no_download(*args, **kwargs):
        raise OSError("no network in this test")

    for name in ("resnotes.datasets", "resnotes.data"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name, fromlist=["_"])
            except ImportError:
                continue
        if hasattr(module, "project_data_dir"):
            monkeypatch.setattr(module, "project_data_dir", lambda: project)
        if hasattr(module, "_download"):
            monkeypatch.setattr(module, "_download", no_download)


@pytest.fixture
def env(jpeg_tree, cache_dir, tmp_path, monkeypatch):
    """RESNOTES_DATA is the tiny tree, the cache is under tmp, bars are off; returns the --out folder."""
    project = tmp_path / "project-data"
    project.mkdir()
    _patch_data_layer(monkeypatch, project)
    monkeypatch.setenv("RESNOTES_DATA", str(jpeg_tree))
    monkeypatch.setenv("RESNOTES_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("RESNOTES_PROGRESS", "0")
    monkeypatch.setenv("RESNOTES_PROFILE", "smoke")
    return tmp_path / "runs"


@pytest.fixture
def hostile_tree(env, jpeg_tree, tmp_path, monkeypatch) -> Path:
    """A private copy of the tiny tree that a test may damage; RESNOTES_DATA points at it."""
    root = tmp_path / "hostile"
    shutil.copytree(jpeg_tree, root)
    monkeypatch.setenv("RESNOTES_DATA", str(root))
    return root


def train(argv, capsys):
    return run_cli(rcli.main, argv, capsys)


def finished_run(out: Path, capsys, *extra) -> Path:
    """Train ``ARGS + extra`` into ``out``; return the run folder."""
    code, stdout, err = train([*ARGS, "--epochs", "1", *extra, "--out", out], capsys)
    assert code == 0, err[-2000:]
    run = out / RUN_NAME
    assert (run / "last.pt").is_file()
    return run


# --------------------------------------------------------------------------
# train: bad arguments (exit 2)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, fact",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "1.5"], "--epochs"),
        (["--batch-size", "0"], "--batch-size"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--lr", "-0.1"], "--lr"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "99999999999999999999999"], "--seed"),  # today: OverflowError deep in torch.manual_seed
        (["--test-per-class", "0"], "--test-per-class"),
        (["--train-per-class", "0"], "--train-per-class"),
        (["--dataset", "mnist"], "mnist"),
        (["--profile", "quick"], "quick"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_train_bad_argument_exits_2(env, capsys, extra, fact):
    code, out, err = train([*ARGS, "--epochs", "1", *extra, "--out", env], capsys)
    assert code == 2
    check_message(err, fact)


def test_train_model_typo_suggests_the_name_briefly(env, capsys):
    argv = [*ARGS, "--epochs", "1", "--out", env]
    argv[argv.index(MODEL)] = "preact_resnet2O"
    code, out, err = train(argv, capsys)
    assert code == 2
    check_message(err, "preact_resnet2O", "preact_resnet20")  # today: all ~40 names, 670 characters


@pytest.mark.parametrize("profile, epochs", [("demo", "2"), ("demo", "1"), ("paper", "1")])
def test_epochs_shorter_than_the_profiles_warmup(env, capsys, profile, epochs):
    """Either the warm-up scales to fit, or --epochs is refused by name; never a ValueError from TrainConfig."""
    argv = [*ARGS, "--epochs", epochs, "--out", env]
    argv[argv.index("smoke")] = profile
    code, out, err = train(argv, capsys)
    if code == 0:
        return
    assert code == 2, err[-1500:]
    message = check_message(err, "--epochs")
    assert "warm" in message.lower()


def test_train_per_class_too_small_to_train(env, capsys):
    """1 image per class leaves none for training once validation is held out (today: ZeroDivisionError)."""
    code, out, err = train([*ARGS, "--train-per-class", "1", "--epochs", "1", "--out", env], capsys)
    assert code in (1, 2)
    check_message(err, "--train-per-class")


@pytest.mark.parametrize(
    "flag, value, on_disk",
    [("--train-per-class", TRAIN_PER_CLASS_ON_DISK + 1, TRAIN_PER_CLASS_ON_DISK), ("--test-per-class", TEST_PER_CLASS_ON_DISK + 1, TEST_PER_CLASS_ON_DISK)],
)
def test_asking_for_more_images_than_the_copy_holds(env, capsys, flag, value, on_disk):
    code, out, err = train([*ARGS, flag, value, "--epochs", "1", "--out", env], capsys)
    assert code in (1, 2)
    message = check_message(err, flag)
    assert has_value(message, str(on_disk), ignore=(env, os.environ["RESNOTES_DATA"])), message


def test_wrong_dataset_for_the_copy(env, capsys):
    code, out, err = train([*ARGS, "--dataset", "cifar100", "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "CIFAR-100")


def test_diverging_loss_is_a_message(env, capsys):
    code, out, err = train([*ARGS, "--lr", "1e30", "--epochs", "2", "--out", env], capsys)
    assert code == 1
    message = check_message(err)
    assert "learning rate" in message or "--lr" in message


def test_start_of_run_line_shows_the_settings_in_force(env, capsys):
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 0, err[-2000:]
    first = next(line for line in out.splitlines() if "smoke" in line)
    # smoke's defaults are batch 32, 2 epochs, 20 train / 10 test images per class; this run uses 8, 1, 6 / 2.
    assert re.search(r"batch[ _-]?(size)?\W{0,4}8\b", first) and not re.search(r"batch[ _-]?(size)?\W{0,4}32\b", first), first
    assert re.search(r"\b1 epochs?\b|epochs\W{0,4}1\b", first) and not re.search(r"\b2 epochs\b|epochs\W{0,4}2\b", first), first
    assert "20 train / 10 test" not in first, first


# --------------------------------------------------------------------------
# train: data errors (exit 1, the file named)
# --------------------------------------------------------------------------


def _a_real_jpeg(tree: Path) -> Path:
    return sorted((tree / "train" / "cat").iterdir())[0]


@pytest.mark.parametrize("keep", ["head", "tail"], ids=["cut-in-header", "cut-in-data"])
def test_truncated_jpeg_is_named(hostile_tree, env, capsys, keep):
    source = _a_real_jpeg(hostile_tree).read_bytes()
    bad = hostile_tree / "train" / "cat" / "zz_truncated.jpg"
    bad.write_bytes(source[:300] if keep == "head" else source[:-40])
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "zz_truncated.jpg")


@pytest.mark.parametrize("content", [b"hello, I am not a JPEG\n", b""], ids=["text", "empty"])
def test_non_image_jpg_is_named(hostile_tree, env, capsys, content):
    (hostile_tree / "train" / "dog" / "zz_fake.jpg").write_bytes(content)
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "zz_fake.jpg")


@pytest.mark.parametrize("mode, size", [("L", (32, 32)), ("RGB", (64, 64))])
def test_image_of_the_wrong_shape_is_named(hostile_tree, env, capsys, mode, size):
    from PIL import Image

    Image.new(mode, size).save(hostile_tree / "train" / "dog" / "zz_odd.png")
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "zz_odd.png")


def test_class_folder_without_images_is_named(hostile_tree, env, capsys):
    for image in (hostile_tree / "test" / "cat").iterdir():
        image.unlink()
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "test/cat")


def test_extra_class_folder_is_named(hostile_tree, env, capsys):
    for split in ("train", "test"):
        (hostile_tree / split / "unicorn").mkdir()
        shutil.copy2(_a_real_jpeg(hostile_tree), hostile_tree / split / "unicorn" / "0.jpg")
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "11")


def test_data_variable_pointing_at_a_file(env, capsys, tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("RESNOTES_DATA", str(a_file))
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    check_message(err, "RESNOTES_DATA", str(a_file))


def test_data_variable_pointing_at_an_empty_folder(env, capsys, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RESNOTES_DATA", str(empty))
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 1
    # The not-found message lists where it looked and three ways to supply the data: allowed to be longer.
    check_message(err, "not found", max_chars=1400, max_lines=16)


# --------------------------------------------------------------------------
# train: checkpoints (exit 1, the file named, the way to start afresh)
# --------------------------------------------------------------------------


def _check_checkpoint_refusal(code, out, err, run: Path) -> str:
    assert code == 1
    message = check_message(err, "last.pt", run.name)
    assert mentions_fresh_start(message), message
    return message


def test_checkpoint_of_another_architecture(env, capsys, tmp_path):
    other = tmp_path / "other"
    code, out, err = train([*ARGS, "--model", "plain20", "--epochs", "1", "--out", other], capsys)  # the last --model wins
    assert code == 0, err[-2000:]
    run = env / RUN_NAME
    run.mkdir(parents=True)
    shutil.copy2(other / "plain20-cifar10-smoke-seed0" / "last.pt", run / "last.pt")
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    _check_checkpoint_refusal(code, out, err, run)


@pytest.mark.parametrize("field", ["model", "optimizer", "epoch", "history", "rng", "data_order", "best_state"])
def test_checkpoint_missing_a_field(env, capsys, field):
    run = finished_run(env, capsys)
    checkpoint = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    if field not in checkpoint:
        pytest.skip(f"checkpoints no longer hold {field!r}")
    del checkpoint[field]
    torch.save(checkpoint, run / "last.pt")
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    _check_checkpoint_refusal(code, out, err, run)


def test_checkpoint_path_is_a_folder(env, capsys):
    """Today: silently starts afresh, then fails with IsADirectoryError after the first epoch."""
    run = env / RUN_NAME
    (run / "last.pt").mkdir(parents=True)
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    assert code == 1
    check_message(err, "last.pt")
    assert not trained_an_epoch(out), "it trained before finding out"


def test_checkpoint_of_random_bytes_is_called_corrupt_not_unsafe(env, capsys):
    run = env / RUN_NAME
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(bytes(range(256)) * 16)
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    message = _check_checkpoint_refusal(code, out, err, run)
    assert "corrupt" in message.lower()
    assert "other than tensors" not in message and "malicious" not in message.lower()


@pytest.mark.parametrize("content", ["empty", "truncated", "a tensor"])
def test_unreadable_checkpoint(env, capsys, content):
    run = finished_run(env, capsys)
    last = run / "last.pt"
    if content == "empty":
        last.write_bytes(b"")
    elif content == "truncated":
        last.write_bytes(last.read_bytes()[:2000])
    else:
        torch.save(torch.zeros(3), last)
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    _check_checkpoint_refusal(code, out, err, run)


def test_truncated_checkpoint_points_at_the_previous_one(env, capsys):
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    assert code == 0, err[-2000:]
    run = env / RUN_NAME
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    message = _check_checkpoint_refusal(code, out, err, run)
    assert "previous.pt" in message


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["RESNOTES_PWNED"]),))


def test_checkpoint_carrying_code_is_refused_without_running_it(env, capsys, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("RESNOTES_PWNED", str(marker))
    run = env / RUN_NAME
    run.mkdir(parents=True)
    with open(run / "last.pt", "wb") as f:
        pickle.dump({"model": _Payload(), "epoch": 1}, f, protocol=2)
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    message = _check_checkpoint_refusal(code, out, err, run)
    assert not marker.exists(), "the pickle's code ran"
    # torch's own text suggests retrying with weights_only=False: never relay that for an untrusted file.
    assert "will likely succeed" not in message and "weights_only` set to `False`" not in message


# --------------------------------------------------------------------------
# train: resuming with other settings, --no-resume, overwriting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second, facts",
    [
        (["--epochs", "2"], ["--epochs", "4"], ["2", "4"]),
        (["--epochs", "2"], ["--epochs", "1"], ["2", "1"]),
        (["--epochs", "1"], ["--epochs", "1", "--batch-size", "16"], ["8", "16"]),
        (["--epochs", "1"], ["--epochs", "1", "--lr", "0.2"], ["0.2"]),
        (["--epochs", "1"], ["--epochs", "1", "--train-per-class", "7"], ["6", "7"]),
    ],
    ids=["more-epochs", "fewer-epochs", "batch-size", "lr", "train-per-class"],
)
def test_resuming_with_changed_settings_is_refused(env, capsys, first, second, facts):
    code, out, err = train([*ARGS, *first, "--out", env], capsys)
    assert code == 0, err[-2000:]
    last = env / RUN_NAME / "last.pt"
    before = last.read_bytes()
    code, out, err = train([*ARGS, *second, "--out", env], capsys)
    assert code in (1, 2)
    message = check_message(err)
    for value in facts:  # the old and the new value of the setting that differs
        assert has_value(message, value, ignore=(env, RUN_NAME)), f"{value!r} missing from the message:\n{message}"
    assert mentions_fresh_start(message), message
    if "--epochs" in second and "--batch-size" not in second and "--lr" not in second and "--train-per-class" not in second:
        assert "epochs" in message, message
    if "--batch-size" in second:
        assert "batch" in message, message
    if "--lr" in second:
        assert "lr" in message.lower() or "learning rate" in message.lower()
    if "--train-per-class" in second:
        assert "train-per-class" in message or "train_per_class" in message or "per class" in message
    assert last.read_bytes() == before, "the refused run changed the checkpoint"
    assert not trained_an_epoch(out)


def test_harmless_changes_do_not_block_a_resume(env, capsys, monkeypatch):
    """Threads, progress bars and --deterministic change how a run goes, not what it computes."""
    code, out, err = train([*ARGS, "--epochs", "2", "--out", env], capsys)
    assert code == 0, err[-2000:]
    run = env / RUN_NAME
    shutil.copy2(run / "previous.pt", run / "last.pt")  # as if stopped after epoch 1 of 2
    threads = torch.get_num_threads()
    monkeypatch.setenv("RESNOTES_PROGRESS", "1")
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        code, out, err = train([*ARGS, "--epochs", "2", "--deterministic", "--out", env], capsys)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    assert code == 0, err[-2000:]
    assert "resumed" in out.lower()
    history = json.loads((run / "history.json").read_text())
    assert len(history["epochs"]) == 2


def test_no_resume_on_a_finished_run_keeps_its_files_aside_and_says_where(env, capsys):
    """--no-resume starts afresh without losing anything: the old run's files move
    into RUN/replaced-<time>/, and the output names that folder."""
    run = finished_run(env, capsys)
    before = (run / "last.pt").read_bytes()
    code, out, err = train([*ARGS, "--epochs", "1", "--no-resume", "--out", env], capsys)
    assert code == 0, err[-2000:]
    assert trained_an_epoch(out) and "resumed" not in out.lower()
    kept = list(run.glob("replaced-*/last.pt"))
    assert len(kept) == 1 and kept[0].read_bytes() == before, "--no-resume lost the finished run's checkpoint"
    assert kept[0].parent.name in out


# --------------------------------------------------------------------------
# train: where the run writes (checked before training, not after an epoch)
# --------------------------------------------------------------------------


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root ignores permission bits; sysfs refuses mkdir even to root.
    folder = Path("/sys/resnotes-cli-test")
    try:
        folder.mkdir()
    except OSError:
        yield folder
        return
    folder.rmdir()
    pytest.skip("no unwritable folder available to root here")


def test_read_only_out_fails_before_training(env, capsys, unwritable_dir):
    code, out, err = train([*ARGS, "--epochs", "2", "--out", unwritable_dir], capsys)
    assert code == 1
    check_message(err, str(unwritable_dir))
    assert not trained_an_epoch(out), "it trained an epoch before finding out"


def test_out_pointing_at_a_file(env, capsys, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, out, err = train([*ARGS, "--epochs", "1", "--out", a_file], capsys)
    assert code in (1, 2)
    check_message(err, str(a_file))
    assert not trained_an_epoch(out)


def test_run_folder_taken_by_a_file(env, capsys):
    env.mkdir()
    (env / RUN_NAME).write_text("x")
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code in (1, 2)
    check_message(err, RUN_NAME)
    assert not trained_an_epoch(out)


@pytest.mark.parametrize("flag", ["--ledger"])
def test_output_folder_option_pointing_at_a_file(env, capsys, tmp_path, flag):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env, flag, a_file], capsys)
    assert code in (1, 2)
    check_message(err, str(a_file))
    assert not trained_an_epoch(out), "it trained before finding out"


# --------------------------------------------------------------------------
# train: one run per folder at a time (RUN_DIR/lock, fcntl.flock, the holder's pid inside)
# --------------------------------------------------------------------------

_HOLD_LOCK = """
import fcntl, os, sys
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("locked", flush=True)
sys.stdin.read()
"""


def test_second_run_on_a_locked_folder_is_refused(env, capsys):
    run = env / RUN_NAME
    run.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(run / "lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert code == 1
    check_message(err, run.name, str(holder.pid))
    assert not (run / "last.pt").exists() and not trained_an_epoch(out)


def test_a_stale_lock_file_does_not_block_and_the_lock_is_released(env, capsys):
    run = env / RUN_NAME
    run.mkdir(parents=True)
    (run / "lock").write_text("999999999")  # left by a run that died: the file exists, nobody holds it
    code, out, err = train([*ARGS, "--epochs", "1", "--out", env], capsys)
    assert code == 0, err[-2000:]
    with open(run / "lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if the run still held it


# --------------------------------------------------------------------------
# train: Ctrl-C (a real process and a real SIGINT)
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_with_130_and_the_same_command_resumes(jpeg_tree, tmp_path):
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "resnotes.train", *ARGS, "--epochs", "6", "--out", str(out)]
    env = {**os.environ, "RESNOTES_DATA": str(jpeg_tree), "RESNOTES_CACHE_DIR": str(tmp_path / "cache"), "RESNOTES_PROGRESS": "0"}
    checkpoint = out / RUN_NAME / "last.pt"
    # A shell without job control starts background jobs with SIGINT ignored: undo that for the child.
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint)
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), "the first epoch never finished"
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2 and len(stderr) < MAX_CHARS, stderr
    assert "resume" in stderr.lower() and "same command" in stderr.lower(), stderr

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed" in again.stdout.lower(), again.stdout[-2000:]


# --------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------


def bench(argv, capsys):
    return run_cli(rbench.main, argv, capsys)


LOADER = ["loader", "--model", MODEL, "--batch-size", "8", "--steps", "1"]


@pytest.mark.parametrize(
    "change, fact",
    [
        (["--steps", "0"], "--steps"),  # today: TypeError after loading the data
        (["--steps", "-3"], "--steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--workers", "-1"], "--workers"),
        (["--model", "nope"], "nope"),
        (["--device", "nope"], "--device"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bench_loader_bad_argument_exits_2(env, capsys, tmp_path, change, fact):
    code, out, err = bench([*LOADER, *change, "--json", tmp_path / "bench.json"], capsys)
    assert code == 2
    check_message(err, fact)


def test_bench_loader_json_pointing_at_a_folder(env, capsys, tmp_path):
    code, out, err = bench([*LOADER, "--json", tmp_path], capsys)
    assert code in (1, 2)
    check_message(err, str(tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_loader_on_a_missing_gpu(env, capsys, tmp_path):
    code, out, err = bench([*LOADER, "--device", "cuda", "--json", tmp_path / "bench.json"], capsys)
    assert code in (1, 2)
    check_message(err, "cuda")


def test_bench_loader_needs_more_images_than_the_copy_holds(env, capsys, tmp_path):
    """Default batch 128 x 23 steps needs 328 images per class; the copy holds 8."""
    code, out, err = bench(["loader", "--model", MODEL, "--json", tmp_path / "bench.json"], capsys)
    assert code == 1
    message = check_message(err)
    assert "--batch-size" in message or "--steps" in message, message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bench_gpu_without_a_gpu(env, capsys, tmp_path):
    code, out, err = bench(["gpu", "--models", MODEL, "--epochs", "1", "--out", tmp_path / "ledger"], capsys)
    assert code == 1
    check_message(err, "GPU", "--allow-cpu")


@pytest.mark.parametrize(
    "change, fact",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "0", "--allow-cpu"], "--epochs"),
        (["--models", "nope", "--allow-cpu"], "nope"),
        (["--profile", "nope", "--allow-cpu"], "nope"),
        (["--budget-minutes", "nan", "--allow-cpu"], "--budget-minutes"),
        (["--budget-minutes", "-1", "--allow-cpu"], "--budget-minutes"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bench_gpu_bad_argument_exits_2(env, capsys, tmp_path, change, fact):
    """Arguments are checked before the GPU, the data or any model (bench gpu --epochs 0 says so even on a CPU)."""
    argv = ["gpu", "--models", MODEL, "--epochs", "1", "--profile", "smoke", "--out", tmp_path / "ledger", *change]
    code, out, err = bench(argv, capsys)
    assert code == 2
    check_message(err, fact)


def test_bench_gpu_ledger_pointing_at_a_file(env, capsys, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, out, err = bench(["gpu", "--allow-cpu", "--models", MODEL, "--epochs", "1", "--profile", "smoke", "--out", a_file], capsys)
    assert code in (1, 2)
    check_message(err, str(a_file))


def test_bench_without_a_command(capsys):
    code, out, err = bench([], capsys)
    assert code == 2
    check_message(err, "command")
