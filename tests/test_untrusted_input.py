"""Reliability, third pass: files that lie, failures that must be named, and what a
user is told (one test per finding of the issue, each failing before its fix)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import resnotes.cache as rcache
import resnotes.datasets as rdata
from conftest import write_imagefolder
from resnotes.checkpoint import CheckpointError, load_checkpoint
from resnotes.files import remove_stale_temporaries
from resnotes.models.preact_resnet import PreActResNet
from resnotes.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parent.parent


from test_checkpoint import quiet, train  # noqa: E402  (a run into a folder)


# ---------------------------------------------------------------- files that lie


class RunsCode:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["RESNOTES_PWNED"]),))


def test_a_planted_checkpoint_is_called_unsafe_and_the_unsafe_fix_is_never_given(tiny_cifar10, tmp_path, monkeypatch):
    """torch 2.14 says 'unsupported GLOBAL ...': it was reported as 'truncated or
    corrupt', with torch's advice to load it with weights_only=False."""
    marker = tmp_path / "pwned"
    monkeypatch.setenv("RESNOTES_PWNED", str(marker))
    torch.save({"model": RunsCode(), "epoch": 1}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as caught:
        train(tiny_cifar10, tmp_path)
    message = str(caught.value)
    assert "unsafe" in message and "It names the Python object" in message and "could run code" in message
    assert "weights_only" not in message and "corrupt" not in message
    assert not marker.exists(), "the pickle's code ran"


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda s: s.update(epoch="1"), "'epoch' must be an integer >= 1"),
        (lambda s: s.update(epoch=True), "'epoch' must be an integer >= 1"),
        (lambda s: s.update(history="{not json"), "'history' must be a JSON object"),
        (lambda s: s.update(history="[1, 2]"), "'history' must be a JSON object"),
        (lambda s: s.update(run=json.dumps({"a": 1}), history=json.dumps({"meta": {}})), "'history' lacks"),
        (lambda s: s.update(model=[1, 2]), "'model' must map names to tensors"),
        (lambda s: s.update(optimizer="adam"), "'optimizer' must be a dictionary"),
        (lambda s: s.update(epoch=5), "'history' has 2 epochs, 'epoch' says 5"),
    ],
    ids=["epoch as text", "epoch as bool", "history not JSON", "history a list", "history without its fields", "model not tensors", "optimizer text", "epochs disagree"],
)
def test_a_checkpoint_of_the_right_shape_with_wrong_content_is_named(tiny_cifar10, tmp_path, change, problem):
    train(tiny_cifar10, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    change(state)
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="not a resnotes checkpoint of this version") as caught:
        load_checkpoint(tmp_path / "last.pt")
    assert problem in str(caught.value)
    with pytest.raises(CheckpointError, match="last.pt"):
        train(tiny_cifar10, tmp_path)


def test_a_resume_after_the_data_changed_meaning_is_refused(data_env, tmp_path):
    """Swap the cat and dog folders: the run used to resume on swapped labels."""
    _, external = data_env
    write_imagefolder(external, per_class=6)
    runs = tmp_path / "runs"
    train(rdata.load_cifar("cifar10", download=False), runs, epochs=3)
    for split in ("train", "test"):
        cat, dog = external / split / "cat", external / split / "dog"
        cat.rename(external / split / "swap")
        dog.rename(cat)
        (external / split / "swap").rename(dog)
    swapped = rdata.load_cifar("cifar10", download=False)
    with pytest.raises(CheckpointError, match="(?s)different run.*data_fingerprint"):
        train(swapped, runs, epochs=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resume": "False"}, "resume must be True or False"),
        ({"nesterov": "False"}, "nesterov must be True or False"),
        ({"progress": "no"}, "progress must be True or False"),
        ({"deterministic": 1}, "deterministic must be True or False"),
        ({"compile": "yes"}, "compile must be True, False or None"),
        ({"seed": -1}, "seed must be an integer in \\[0, 2\\*\\*63\\)"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": 2**70}, "seed must be an integer"),
        ({"epochs": 2.0}, "epochs must be an integer >= 1"),
        ({"lr": "0.1"}, "lr must be in \\(0, 1e\\+30\\]"),
        ({"milestones": "0.5"}, "milestones must be increasing fractions"),
        ({"device": 0}, "device must be a string"),
    ],
)
def test_train_config_checks_types_itself(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_fp32_asked_after_an_auto_run_on_the_cpu_resumes(tiny_cifar10, tmp_path):
    """Both are fp32 on a CPU: the run's identity compares what runs, not what was typed."""
    train(tiny_cifar10, tmp_path, epochs=1)
    again = train(tiny_cifar10, tmp_path, epochs=1, precision="fp32")
    assert len(again.epochs) == 1


# ---------------------------------------------------------------- failures that must be named


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 5 MB filesystem (tmpfs): needs root and mount, as CI has."""
    folder = tmp_path / "tiny-disk"
    folder.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_real_full_disk_says_so(tiny_cifar10, tiny_disk):
    """It said 'RuntimeError: [enforce fail at inline_container.cc] ... unexpected pos':
    the check looked at the free space after the partial file was deleted."""
    from resnotes.files import WriteError

    torch.manual_seed(0)
    model = PreActResNet(depth=20)  # its checkpoints (3.3 MB) fill the 5 MB disk at epoch 2
    with pytest.raises(WriteError, match="the disk is full; last.pt was left as it was"):
        fit(model, tiny_cifar10, quiet(tiny_disk, epochs=3))
    assert load_checkpoint(tiny_disk / "last.pt")["epoch"] >= 1
    assert not [p for p in tiny_disk.iterdir() if p.name.endswith(".tmp")]


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_the_temporary_file_of_a_killed_cache_write_is_removed(data_env, tmp_path):
    """A killed cache write left ~184 MB (full CIFAR-10) that no later build removed."""
    _, external = data_env
    write_imagefolder(external, per_class=3)
    folder = external.resolve()
    cache = rcache.cache_path(folder, "cifar10", rdata.project_data_dir())
    cache.parent.mkdir(parents=True)
    stale = cache.parent / f".{cache.name}.{dead_pid()}.x1y2z3.tmp"
    stale.write_bytes(b"half a cache")
    live = cache.parent / f".{cache.name}.{os.getppid()}.a1b2c3.tmp"  # a running process's
    live.write_bytes(b"being written")
    rdata.load_raw("cifar10", download=False)
    assert cache.is_file() and not stale.exists() and live.exists()
    assert remove_stale_temporaries(cache) == []


def run_command(tmp_path, jpeg_dir, *extra):
    env = {**os.environ, "RESNOTES_DATA": str(jpeg_dir), "RESNOTES_CACHE_DIR": str(tmp_path / "cache"), "RESNOTES_PROGRESS": "0"}
    command = [sys.executable, "-m", "resnotes.train", "--model", "preact_resnet20", "--profile", "smoke",
               "--batch-size", "8", "--out", str(tmp_path / "runs"), *extra]  # fmt: skip
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


@pytest.fixture
def jpeg_dir(data_env):
    _, external = data_env
    write_imagefolder(external, per_class=24, fmt="JPEG")
    return external


@pytest.mark.slow
def test_ctrl_c_during_the_imports_prints_no_traceback(tmp_path, jpeg_dir):
    proc = run_command(tmp_path, jpeg_dir, "--epochs", "2")
    time.sleep(0.4)  # python is importing torch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "Interrupted before" in err and "checkpoint of the last finished epoch" not in err


@pytest.mark.slow
def test_sigterm_stops_a_run_with_a_message_and_143(tmp_path, jpeg_dir):
    """SIGTERM (what timeout and job schedulers send) printed nothing."""
    proc = run_command(tmp_path, jpeg_dir, "--epochs", "40")
    checkpoint = tmp_path / "runs" / "preact_resnet20-cifar10-smoke-seed0" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists() and proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "Stopped by SIGTERM" in err and "resume" in err, err


def test_an_interrupt_before_the_first_epoch_does_not_claim_a_checkpoint(data_env, jpeg_dir, tmp_path, monkeypatch, capsys):
    import resnotes.cli as cli
    import resnotes.train as rtrain

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rtrain, "train_one_epoch", interrupted)
    code = cli.main(["--model", "preact_resnet20", "--profile", "smoke", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 130 and "before the first epoch finished; no checkpoint was written" in err


# ---------------------------------------------------------------- what a user is told


def test_the_start_of_a_run_says_where_it_writes_and_epochs_say_what_is_left(data_env, jpeg_dir, tmp_path, capsys):
    import resnotes.cli as cli

    assert cli.main(["--model", "preact_resnet20", "--profile", "smoke", "--epochs", "3", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    header = out[: out.index("epoch 1/3")]
    assert "run folder:" in header and "preact_resnet20-cifar10-smoke-seed0" in header
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3 and "left" not in lines[2]


def test_an_epoch_line_estimates_the_time_left_for_the_whole_run():
    from resnotes.history import History

    history = History(meta={}, config={})
    history.add({"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_acc": 0.25,
                 "seconds": 40.0, "images_per_s": 112.5})  # fmt: skip
    history.seconds = 45.0  # training and validation of epoch 1
    line = history.epoch_line(epochs=5)
    assert line.startswith("epoch 1/5  loss 2.000  train 20.0%  val 25.0%  40.0 s")
    assert line.endswith("3:00 left") and len(line) <= 88
    assert not history.epoch_line(epochs=1).endswith("left")


def test_model_args_are_checked_before_anything_is_written(data_env, jpeg_dir, tmp_path, capsys):
    import resnotes.cli as cli

    base = ["--model", "preact_resnet20", "--profile", "smoke", "--epochs", "1", "--out", str(tmp_path / "runs")]
    for bad, fact in ((["depth=33"], "6n+2"), (["alpha=3"], "takes"), (["depth"], "NAME=VALUE")):
        with pytest.raises(SystemExit) as caught:
            cli.main([*base, *[x for b in bad for x in ("--model-arg", b)]])
        assert caught.value.code == 2 and fact in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert cli.main([*base, "--model-arg", "depth=8", "--ledger", str(tmp_path / "results")]) == 0
    assert (tmp_path / "runs" / "preact_resnet20-depth8-cifar10-smoke-seed0" / "last.pt").is_file()
    # a smoke run's record is kept apart from the results, in DIR/smoke/
    assert not list((tmp_path / "results").glob("*.json"))
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results" / "smoke").glob("*.json")]
    assert record["model_kwargs"] == {"depth": 8, "num_classes": 10}
    capsys.readouterr()
    # The same command again: the finished run's record is refused as a second
    # record of one run, and the exit status says so (it was 0).
    assert cli.main([*base, "--model-arg", "depth=8", "--ledger", str(tmp_path / "results")]) == 1
    assert "results record not written" in capsys.readouterr().err


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("layout", ["raw pickle", "torch legacy", "torch zip"])
def test_a_planted_pickle_is_unsafe_in_every_protocol_and_layout(tiny_cifar10, tmp_path, monkeypatch, protocol, layout):
    """Protocols 0, 4 and 5 were called "truncated or corrupt": the file was judged
    by torch's message, which differs by protocol. Its opcodes decide now."""
    import pickle

    marker = tmp_path / "pwned"
    monkeypatch.setenv("RESNOTES_PWNED", str(marker))
    planted = {"model": RunsCode(), "epoch": 1}
    path = tmp_path / "last.pt"
    if layout == "raw pickle":
        path.write_bytes(pickle.dumps(planted, protocol=protocol))
    else:
        torch.save(planted, path, pickle_protocol=max(protocol, 2), _use_new_zipfile_serialization=layout == "torch zip")
    with pytest.raises(CheckpointError) as caught:
        train(tiny_cifar10, tmp_path)
    message = str(caught.value)
    assert "unsafe" in message and "It names the Python object" in message and "corrupt" not in message, message
    assert "getattr" in message or "pathlib" in message, message
    assert not marker.exists(), "the pickle's code ran"


def test_a_damaged_real_checkpoint_is_still_called_corrupt(tiny_cifar10, tmp_path):
    train(tiny_cifar10, tmp_path)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(tiny_cifar10, tmp_path)
