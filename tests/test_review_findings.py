"""Findings of a reader's review of the package (0.3.0): processes that must stop
together, files trusted too far, helpers that changed what they measured, and
rules that were silent. Each test fails on the code before its fix."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import resnotes.datasets as rdata
from conftest import write_cifar10_pickles
from resnotes.checkpoint import CheckpointError
from resnotes.datafiles import DataFormatError
from resnotes.models.preact_resnet import PreActBottleneckUnit, PreActResNet
from resnotes.train import TrainConfig, fit
from test_checkpoint import train

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------- several processes, one decision


ONE_RANK_OUT_OF_TIME = """
import json, os, sys, torch
from resnotes.datasets import load_cifar
from resnotes.engine import TimeBudget
from resnotes.models import create_model
from resnotes.train import TrainConfig, fit

rank = int(os.environ["RANK"])
if rank == 1:  # only rank 1's clock says that a second epoch would not fit
    TimeBudget.room_for_epoch = lambda self, history: not history.epochs
data = load_cifar("cifar10", download=False)
torch.manual_seed(0)
history = fit(create_model("preact_resnet20", depth=8), data, TrainConfig(epochs=3, batch_size=16, progress=False))
print(json.dumps({"rank": rank, "epochs": len(history.epochs), "best": history.best_epoch}))
"""


@pytest.mark.slow
def test_when_one_process_runs_out_of_time_every_process_stops_with_it(tmp_path):
    """Each process decided alone: rank 1 stopped after epoch 1 while rank 0 went on
    into epoch 2 and waited for rank 1 in its first collective call."""
    data_dir = tmp_path / "data"
    write_cifar10_pickles(data_dir, per_class_train=20, per_class_test=10)
    script = tmp_path / "one_rank_out_of_time.py"
    script.write_text(ONE_RANK_OUT_OF_TIME)
    env = {**os.environ, "RESNOTES_DATA": str(data_dir), "RESNOTES_CACHE_DIR": str(tmp_path / "cache"),
           "RESNOTES_PROGRESS": "0", "OMP_NUM_THREADS": "1"}  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    try:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the processes did not finish: one waits for the other")
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"rank"')]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert all(r["epochs"] == 1 and r["best"] == 1 for r in ranks), ranks
    assert done.stdout.count("Stopping early: epoch 2 would end past the budget") == 1  # rank 0 says it


def test_a_split_smaller_than_one_batch_is_an_error_line_not_a_traceback(data_env, tmp_path, capsys):
    import resnotes.cli as cli

    _, external = data_env
    write_cifar10_pickles(external)
    code = cli.main(["--model", "preact_resnet20", "--profile", "smoke", "--epochs", "1",
                     "--train-per-class", "2", "--test-per-class", "2", "--out", str(tmp_path / "runs")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "fewer than one batch" in err and "Traceback" not in err


# ------------------------------------------------------------------ what fit is given


def test_a_path_as_checkpoint_dir_is_accepted(tiny_cifar10, tmp_path):
    """A pathlib.Path passed the config's checks, then failed JSON in the run folder."""
    config = TrainConfig(epochs=1, batch_size=16, progress=False, checkpoint_dir=tmp_path / "run")
    assert config.checkpoint_dir == str(tmp_path / "run")
    torch.manual_seed(0)
    fit(PreActResNet(depth=8), tiny_cifar10, config)
    assert (tmp_path / "run" / "last.pt").is_file()


def test_each_arm_of_a_comparison_gets_its_own_run_folder(tiny_cifar10, tmp_path):
    """Every arm shared one folder: the second was refused as another run's."""
    from resnotes.ledger import train_and_record

    config = TrainConfig(epochs=1, batch_size=16, progress=False, checkpoint_dir=str(tmp_path))
    arms = {"plain": ("plain20", {"depth": 8}), "resnet": ("preact_resnet20", {"depth": 8})}
    runs, _ = train_and_record(arms, tiny_cifar10, config, record=False)
    assert set(runs) == {"plain", "resnet"}
    assert (tmp_path / "plain" / "last.pt").is_file() and (tmp_path / "resnet" / "last.pt").is_file()


def test_a_chapter_record_rebuilds_its_network_with_the_datasets_classes(tiny_cifar10, tmp_path):
    from resnotes.ledger import record_runs

    history = train(tiny_cifar10, tmp_path / "run")
    history.config["profile"] = "demo"
    (path,) = record_runs({"ResNet-8": history}, {"ResNet-8": ("preact_resnet20", {"depth": 8})}, tmp_path / "ledger")
    record = json.loads(path.read_text())
    assert record["model_kwargs"] == {"depth": 8, "num_classes": 10}


def test_the_source_line_names_a_test_subset_drawn_alone(data_env):
    _, external = data_env
    write_cifar10_pickles(external)
    data = rdata.load_cifar("cifar10", test_per_class=2, download=False)
    assert "(subset: 2 per class from test)" in data.source


# ------------------------------------------------------------------ files trusted too far


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda h: h["epochs"].__setitem__(0, "fast"), "epoch 1 lacks"),
        (lambda h: h["epochs"][1].pop("eval_seconds"), "epoch 2 lacks"),
        (lambda h: h.update(best_epoch=7), "best_epoch must be an epoch from 1 to 2"),
        (lambda h: h.update(seconds="long"), "best_val_acc and seconds must be numbers"),
        (lambda h: h.update(meta=[]), "meta must be a JSON object"),
    ],
    ids=["epoch not a record", "epoch without a field", "best epoch past the end", "seconds as text", "meta a list"],
)
def test_a_checkpoints_history_is_checked_field_by_field(tiny_cifar10, tmp_path, change, problem):
    train(tiny_cifar10, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    history = json.loads(state["history"])
    change(history)
    state["history"] = json.dumps(history)
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="not a resnotes checkpoint of this version") as caught:
        train(tiny_cifar10, tmp_path)
    assert problem in str(caught.value)


def test_a_checkpoints_random_state_is_checked(tiny_cifar10, tmp_path):
    """A number where a tensor belongs raised AttributeError ('.tolist') on resume."""
    train(tiny_cifar10, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["rng"]["python"]["internal"] = 5
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="'rng' is not the random generators' state"):
        train(tiny_cifar10, tmp_path)


def test_best_weights_that_do_not_fit_the_model_are_refused_on_resume(tiny_cifar10, tmp_path):
    """They were loaded only at the end of the run, as a RuntimeError traceback."""
    train(tiny_cifar10, tmp_path)
    state = torch.load(tmp_path / "previous.pt", weights_only=True)  # after epoch 1
    state["best_state"] = {"fc.weight": torch.zeros(3, 3)}
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train(tiny_cifar10, tmp_path)


def _rewrite_first_batch(external: Path, **changes):
    path = external / "cifar-10-batches-py" / "data_batch_1"
    batch = pickle.loads(path.read_bytes())
    batch.update(changes)
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_a_label_outside_the_classes_is_named_when_the_data_loads(data_env):
    """It surfaced mid-run, on a GPU as a device-side assertion."""
    _, external = data_env
    write_cifar10_pickles(external)
    batch = _rewrite_first_batch(external)
    _rewrite_first_batch(external, labels=[10] + batch["labels"][1:])
    with pytest.raises(DataFormatError, match="a train label lies outside 0..9"):
        rdata.load_cifar("cifar10", download=False)


def test_pixels_that_are_not_bytes_are_refused_not_wrapped(data_env):
    """Values of 256 and more were silently wrapped by astype(uint8)."""
    _, external = data_env
    write_cifar10_pickles(external)
    batch = _rewrite_first_batch(external)
    _rewrite_first_batch(external, data=batch["data"].astype(np.int32) * 2)
    with pytest.raises(DataFormatError, match="holds int32 pixels, not bytes"):
        rdata.load_cifar("cifar10", download=False)


# ------------------------------------------------------------- helpers that measure


def test_gradient_norms_leave_the_model_as_they_found_it():
    from resnotes.analysis import gradient_norms_per_unit

    torch.manual_seed(0)
    net = PreActResNet(depth=8).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    norms = gradient_norms_per_unit(net, net.units(), images, labels)
    assert len(norms) == 3 and all(n > 0 for n in norms)
    assert not net.training, "eval mode was left as train mode"
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "BN statistics changed"
    assert all(p.grad is None for p in net.parameters())


# ------------------------------------------------------------------ exercises


def test_an_answer_that_works_in_place_corrupts_neither_the_check_nor_later_cases(capsys):
    """The reference ran after the answer, on the case's tensors, which the answer
    had changed; the cases' tensors are shared, so later cases changed too."""
    from resnotes.exercises import CHECKS, check

    cases = CHECKS["attention.combine"].cases
    before = [t.clone() for t in (cases[0][0], cases[0][1])]

    def in_place(trunk, mask, attention):
        return trunk.mul_(1 + mask) if attention == "arl" else trunk.mul_(mask)

    assert check("attention.combine", in_place), capsys.readouterr().out
    assert torch.equal(cases[0][0], before[0]) and torch.equal(cases[0][1], before[1])


def test_a_hidden_answer_is_not_given_away_by_a_whole_factor():
    from resnotes.exercises.checker import how_off

    assert how_off(100, 300, hidden=False) == "3 times too large"
    assert how_off(100, 300, hidden=True) == "a whole number of times too large"


# ------------------------------------------------------------------ model rules


def test_a_bottleneck_unit_needs_bottleneck_true():
    """A bottleneck unit with bottleneck=False silently took the 6n+2 depth rule."""
    with pytest.raises(ValueError, match="bottleneck must be True exactly when the unit widens"):
        PreActResNet(depth=20, bottleneck=False, unit=PreActBottleneckUnit)
    PreActResNet(depth=11, bottleneck=True, unit=PreActBottleneckUnit)
