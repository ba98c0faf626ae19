"""The run folder: crash-safe checkpoint writes (fault injection at every step),
the lock, fresh starts that keep old files, and resumes that refuse another run."""

import errno
import json
import re
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import resnotes.checkpoint as rcheckpoint
import resnotes.files as rfiles
from conftest import write_cifar10_pickles
from resnotes.checkpoint import CheckpointError, find_checkpoint, load_checkpoint
from resnotes.runs import RunLock, RunLockedError
from resnotes.files import WriteError
from resnotes.models.preact_resnet import PreActResNet
from resnotes.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parent.parent


def quiet(folder, **kw):
    return TrainConfig(**{"progress": False, "batch_size": 16, "epochs": 2, "seed": 3, "checkpoint_dir": str(folder), **kw})


def train(data, folder, **kw):
    torch.manual_seed(0)
    return fit(PreActResNet(depth=8), data, quiet(folder, **kw))


class Crash(Exception):
    """A crash injected into a checkpoint write."""


def _crash_on_second_save(monkeypatch, where: str):
    """Make the second checkpoint write (epoch 2) crash at ``where``; the first one succeeds."""
    calls = {"save": 0, "replace": 0}
    real_save, real_replace, real_fsync, real_mkstemp = torch.save, os.replace, os.fsync, rfiles.tempfile.mkstemp

    def second() -> bool:
        return calls["save"] == 2

    def save(obj, file):
        calls["save"] += 1
        if second() and where == "mid-write":
            file.write(b"half a checkpoint")
            raise Crash
        real_save(obj, file)

    def fsync(fd):
        if second() and where == "fsync":
            raise Crash
        real_fsync(fd)

    def replace(src, dst):
        if second():
            calls["replace"] += 1
            if (where, calls["replace"]) in {("keep-previous", 1), ("final-rename", 2)}:
                raise Crash
        real_replace(src, dst)

    def mkstemp(*args, **kwargs):
        if calls["save"] == 1 and where == "temp-file":  # the second write starts after the first save
            raise Crash
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(rcheckpoint.torch, "save", save)
    monkeypatch.setattr(rfiles.os, "fsync", fsync)
    monkeypatch.setattr(rfiles.os, "replace", replace)
    monkeypatch.setattr(rcheckpoint.os, "replace", replace)
    monkeypatch.setattr(rfiles.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("where", ["temp-file", "mid-write", "fsync", "keep-previous", "final-rename"])
def test_a_crash_at_any_step_of_a_checkpoint_write_loses_nothing(tiny_cifar10, tmp_path, monkeypatch, where):
    straight = train(tiny_cifar10, tmp_path / "straight")
    run = tmp_path / "crashed"
    with monkeypatch.context() as patch:
        _crash_on_second_save(patch, where)
        with pytest.raises((Crash, WriteError)):
            train(tiny_cifar10, run)
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")], "a temporary file was left behind"
    survivor = load_checkpoint(find_checkpoint(run))
    assert survivor["epoch"] in (1, 2)
    resumed = train(tiny_cifar10, run)  # the same command again
    assert [e["train_loss"] for e in resumed.epochs] == [e["train_loss"] for e in straight.epochs]
    assert resumed.test_acc == straight.test_acc


def test_a_full_disk_says_so_and_keeps_the_last_checkpoint(tiny_cifar10, tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def save(obj, file):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, file)

    monkeypatch.setattr(rcheckpoint.torch, "save", save)
    with pytest.raises(WriteError, match=r"could not write .*last\.pt: the disk is full; last\.pt was left as it was"):
        train(tiny_cifar10, tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_a_planted_symlink_is_never_written_through(tiny_cifar10, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt.tmp", ".last.pt.tmp", "last.tmp", "history.json.tmp"):
        (run / name).symlink_to(victim)
    train(tiny_cifar10, run)
    assert victim.read_text() == "precious"
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_first(tiny_cifar10, tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match=rf"another run \(process {os.getpid()}\) is training into"):
            train(tiny_cifar10, tmp_path)
    assert find_checkpoint(tmp_path) is None
    train(tiny_cifar10, tmp_path)  # the lock is gone with its holder


def test_a_fresh_start_keeps_the_old_run_aside(tiny_cifar10, tmp_path):
    train(tiny_cifar10, tmp_path)
    old = load_checkpoint(tmp_path / "last.pt")
    torch.manual_seed(0)
    fit(PreActResNet(depth=8), tiny_cifar10, quiet(tmp_path, resume=False, lr=0.05))
    kept = list(tmp_path.glob("replaced-*/last.pt"))
    assert len(kept) == 1 and load_checkpoint(kept[0])["run"] == old["run"]


@pytest.mark.parametrize(
    "change, differs",
    [
        ({"epochs": 3}, "epochs: 2 in the checkpoint, 3 now"),
        ({"batch_size": 8}, "batch_size: 16 in the checkpoint, 8 now"),
        ({"lr": 0.05}, "lr: 0.1 in the checkpoint, 0.05 now"),
        ({"profile": "demo"}, "profile: 'custom' in the checkpoint, 'demo' now"),
        ({"precision": "bf16"}, "precision: 'fp32' in the checkpoint, 'bf16' now"),
    ],
)
def test_resuming_with_settings_that_change_the_run_is_refused(tiny_cifar10, tmp_path, change, differs):
    train(tiny_cifar10, tmp_path)
    with pytest.raises(CheckpointError, match=rf"different run(.|\n)*{differs}(.|\n)*--no-resume"):
        train(tiny_cifar10, tmp_path, **change)


def test_resuming_with_other_data_is_refused(tiny_cifar10, tmp_path):
    from dataclasses import replace

    train(tiny_cifar10, tmp_path)
    fewer = replace(tiny_cifar10, train_images=tiny_cifar10.train_images[:64], train_labels=tiny_cifar10.train_labels[:64])
    with pytest.raises(CheckpointError, match="data: .*90 train.* in the checkpoint, .*64 train"):
        torch.manual_seed(0)
        fit(PreActResNet(depth=8), fewer, quiet(tmp_path))


def test_harmless_changes_resume(tiny_cifar10, tmp_path):
    train(tiny_cifar10, tmp_path)
    again = train(tiny_cifar10, tmp_path, eval_batch_size=7, deterministic=True)
    assert len(again.epochs) == 2


def test_a_checkpoint_of_another_architecture_is_refused(tiny_cifar10, tmp_path):
    train(tiny_cifar10, tmp_path)
    with pytest.raises(CheckpointError, match="different run(.|\n)*params"):
        fit(PreActResNet(depth=14), tiny_cifar10, quiet(tmp_path))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(os.urandom(4096)), "truncated or corrupt"),
        (lambda p: (p.unlink(), p.mkdir()), "is a folder, not a checkpoint"),
        (lambda p: torch.save({"model": {}, "epoch": 1}, p), "not a resnotes checkpoint of this version"),
    ],
)
def test_damaged_checkpoints_are_named_and_explained(tiny_cifar10, tmp_path, damage, message):
    train(tiny_cifar10, tmp_path)
    damage(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=message) as info:
        train(tiny_cifar10, tmp_path)
    assert "last.pt" in str(info.value) and "malicious" not in str(info.value)


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import resnotes.cli as cli
    import resnotes.train as t

    real = t.train_one_epoch

    def dies_in_epoch_2(engine, batches, optimizer, scaler, config, epoch):
        args = (engine, batches, optimizer, scaler, config, epoch)
        if epoch == 1 and os.environ.get("DIE") == "1":
            steps = iter(batches)
            next(steps)  # the middle of epoch 2: its first batch is drawn, then the process dies
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    t.train_one_epoch = dies_in_epoch_2
    sys.exit(cli.main(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    data_dir = tmp_path / "data"
    write_cifar10_pickles(data_dir, per_class_train=40, per_class_test=10)
    env = {**os.environ, "RESNOTES_DATA": str(data_dir), "RESNOTES_CACHE_DIR": str(tmp_path / "cache"), "RESNOTES_PROGRESS": "0"}
    argv = ["--model", "preact_resnet20", "--profile", "smoke", "--epochs", "3", "--batch-size", "16"]

    def cli(out, die):
        command = [sys.executable, "-c", _KILLER, *argv, "--out", str(out)]
        return subprocess.run(command, env={**env, "DIE": die}, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert cli(tmp_path / "straight", "0").returncode == 0
    killed = cli(tmp_path / "killed", "1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    run = tmp_path / "killed" / "preact_resnet20-cifar10-smoke-seed0"
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    resumed = cli(tmp_path / "killed", "0")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resumed from last.pt after epoch 1" in resumed.stdout

    straight = tmp_path / "straight" / run.name
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(run / "last.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    ha, hb = (json.loads((folder / "history.json").read_text()) for folder in (straight, run))
    assert [e["train_loss"] for e in ha["epochs"]] == [e["train_loss"] for e in hb["epochs"]]
    assert ha["test_acc"] == hb["test_acc"]


def _tamper(path, change):
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


@pytest.mark.parametrize(
    "change, fact",
    [
        (lambda s: s["optimizer"]["param_groups"][0].update(momentum=0.5, weight_decay=0.05), "momentum: 0.5 in the checkpoint, 0.9 in this run"),
        (lambda s: s["optimizer"]["param_groups"][0].update(momentum=float("nan")), "momentum: nan in the checkpoint"),
        (lambda s: s["optimizer"]["state"][0].update(momentum_buffer=torch.zeros(3)), "momentum buffer of shape (3,)"),
    ],
)
def test_a_resume_takes_no_hyperparameter_from_the_file(tiny_cifar10, tmp_path, change, fact):
    """optimizer.load_state_dict installed the file's momentum and weight decay
    without a word; the history and the record then reported the run's."""
    train(tiny_cifar10, tmp_path)
    _tamper(tmp_path / "last.pt", change)
    with pytest.raises(CheckpointError, match=re.escape(fact)) as info:
        train(tiny_cifar10, tmp_path)
    assert "last.pt" in str(info.value)


@pytest.mark.parametrize("best", [float("nan"), 2.0, -0.1])
def test_a_best_validation_accuracy_that_is_no_fraction_is_refused(tiny_cifar10, tmp_path, best):
    train(tiny_cifar10, tmp_path)

    def change(state):
        history = json.loads(state["history"])
        history["best_val_acc"] = best
        state["history"] = json.dumps(history)

    _tamper(tmp_path / "last.pt", change)
    with pytest.raises(CheckpointError, match="best_val_acc must be a fraction"):
        train(tiny_cifar10, tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_checkpoint_write_lets_the_write_finish(tiny_cifar10, tmp_path, monkeypatch, signum):
    """A real signal, delivered to this process while torch.save writes epoch 2's
    checkpoint: the write completes, then the run stops, and last.pt holds epoch 2
    (the temporary file was deleted and the resume started an epoch earlier)."""
    import resnotes.cli as cli

    real_save = torch.save
    calls = []

    def save_with_a_signal(obj, file, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # epoch 2's checkpoint, in the middle of its write
            os.kill(os.getpid(), signum)
        return real_save(obj, file, *a, **k)

    monkeypatch.setattr(rcheckpoint.torch, "save", save_with_a_signal)
    previous = signal.signal(signal.SIGTERM, cli._on_sigterm)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tiny_cifar10, tmp_path, epochs=3)
    finally:
        signal.signal(signal.SIGTERM, previous)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 2, "the epoch that had just finished was lost"
    assert load_checkpoint(tmp_path / "previous.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".last.pt.*.tmp"))


def test_an_interruption_names_a_previous_checkpoint_left_alone(tmp_path, capsys):
    import resnotes.cli as cli

    (tmp_path / "previous.pt").write_bytes(b"x")
    assert cli._interrupted(KeyboardInterrupt(), tmp_path) == 130
    err = capsys.readouterr().err
    assert "previous.pt" in err and "no checkpoint was written" not in err


def test_a_lock_that_is_a_fifo_is_named(tmp_path):
    """It said "File or stream is not seekable" without naming the file."""
    os.mkfifo(tmp_path / "lock")
    with pytest.raises(RunLockedError, match=r"lock is not a plain file"):
        with RunLock(tmp_path):
            pass
