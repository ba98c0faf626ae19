"""The results ledger, the multi-process command line (DDP on gloo) and the GPU check command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_cifar10_pickles
from resnotes.batches import DeviceBatches
from resnotes.ledger import SCHEMA, LedgerError, load_ledger, make_record, validate, write_record
from resnotes.models.preact_resnet import PreActResNet
from resnotes.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "results").glob("*.json"))


@pytest.fixture
def record(tiny_cifar10):
    torch.manual_seed(0)
    model = PreActResNet(depth=8)
    history = fit(model, tiny_cifar10, TrainConfig(epochs=1, batch_size=16, progress=False, profile="smoke"), name="preact_resnet20")
    return make_record(history, model_kwargs={"depth": 8}, flops_per_image=12345)


def test_a_record_has_every_field_and_round_trips(record, tmp_path):
    assert set(record) == set(SCHEMA)
    assert record["dataset"] == "CIFAR-10"
    assert record["hardware"]["count"] == 1 and record["profile"] == "smoke" and record["epochs"] == 1
    path = write_record(record, tmp_path)
    with pytest.raises(LedgerError, match="already has a ledger record"):
        write_record(record, tmp_path)  # one record per run, and never an overwrite
    rows = load_ledger(tmp_path)
    assert len(rows) == 1 and rows[0]["test_acc"] == record["test_acc"] and rows[0]["file"] == path.name


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop("seed"), "missing field 'seed'"),
        (lambda r: r.update(test_acc=93.1), "test_acc must be a fraction"),
        (lambda r: r.update(params="1.7M"), "params must be an integer >= 1"),
        (lambda r: r.update(dataset="ImageNet"), "dataset must name a CIFAR dataset"),
        (lambda r: r.update(kind="guess"), "kind must be one of"),
        (lambda r: r.update(surprise=1), "unknown field 'surprise'"),
        (lambda r: r.update(hardware={"device": "H100"}), "hardware must give 'device' and 'count'"),
    ],
)
def test_invalid_records_are_rejected(record, tmp_path, change, message):
    bad = json.loads(json.dumps(record))
    change(bad)
    assert any(message in error for error in validate(bad)), validate(bad)
    with pytest.raises(ValueError, match="invalid ledger record"):
        write_record(bad, tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="bad.json is not a valid ledger record"):
        load_ledger(tmp_path)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_result_file_validates(path):
    assert validate(json.loads(path.read_text())) == []


def test_the_ledger_folder_is_committed_and_loads():
    assert (ROOT / "results" / "README.md").is_file()
    assert len(load_ledger(ROOT / "results")) == len(COMMITTED)


@pytest.mark.parametrize("n, world_size", [(20, 2), (21, 2), (30, 3), (9, 4)])
def test_shards_cover_the_epoch_once(n, world_size):
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    labels = torch.arange(n)
    seen = []
    for rank in range(world_size):
        batches = DeviceBatches(images, labels, 2, rank=rank, world_size=world_size, seed=3)
        batches.set_epoch(5)
        seen.append(torch.cat([y for _, y in batches]).tolist())
    assert len({len(s) for s in seen}) == 1, "ranks must run the same number of samples"
    flat = [i for s in seen for i in s]
    assert len(flat) == len(set(flat)), "an image was seen twice in one epoch"
    assert len(flat) == n - n % world_size


# The command line, with each process writing down the training images of every
# epoch (observed through DeviceBatches.epoch_plan; the package has no hook for it).
TRACED = """
import json, os, sys
from pathlib import Path

import resnotes.batches as batches

real = batches.DeviceBatches.epoch_plan


def traced(self):
    order, offsets, flips = real(self)
    if self.train:
        used = order[: len(self) * self.batch_size].tolist()
        trace = Path(os.environ["TRACE_DIR"]) / f"rank{self.rank}-epoch{self.epoch + 1}.json"
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text(json.dumps(used))
    return order, offsets, flips


batches.DeviceBatches.epoch_plan = traced
from resnotes.cli import main

sys.exit(main())
"""


def _torchrun(tmp_path, model: str, trace: bool = False) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 -m resnotes.train`` (gloo) on a tiny CIFAR-10 copy, 2 smoke epochs."""
    data_dir = tmp_path / "data"
    write_cifar10_pickles(data_dir, per_class_train=20, per_class_test=10)
    env = {**os.environ, "RESNOTES_DATA": str(data_dir), "RESNOTES_CACHE_DIR": str(tmp_path / "cache"),
           "RESNOTES_PROGRESS": "0", "OMP_NUM_THREADS": "1", "TRACE_DIR": str(tmp_path / "trace")}  # fmt: skip
    script = tmp_path / "traced_train.py"
    script.write_text(TRACED)
    entry = [str(script)] if trace else ["-m", "resnotes.train"]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        *entry, "--model", model, "--profile", "smoke", "--epochs", "2",
        "--out", str(tmp_path / "runs"), "--ledger", str(tmp_path / "results"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_torchrun_trains_faithful_stochastic_depth(tmp_path):
    """It used to fail at step 2: a skipped block's parameters got no gradient
    ("Expected to have finished reduction in the prior iteration...")."""
    _torchrun(tmp_path, "resnet110_stochastic_depth")
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "smoke").glob("*.json")]
    assert len(records) == 1 and records[0]["hardware"]["count"] == 2 and records[0]["epochs"] == 2


@pytest.mark.slow
def test_torchrun_two_processes_see_each_image_at_most_once_and_write_one_record(tmp_path):
    done = _torchrun(tmp_path, "preact_resnet20", trace=True)
    # 200 training images, 10% held out for validation: 180, split between two ranks
    # of 90; each runs 5 full batches of 16 (the global batch of 32 halved).
    for epoch in (1, 2):
        shards = [json.loads((tmp_path / "trace" / f"rank{rank}-epoch{epoch}.json").read_text()) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == 80
        assert len(set(shards[0]) | set(shards[1])) == 160, "no image may be seen twice in one epoch"
        assert set(shards[0] + shards[1]) <= set(range(180))
    records = list((tmp_path / "results" / "smoke").glob("*.json"))
    assert len(records) == 1, "only rank 0 writes the ledger"
    record = json.loads(records[0].read_text())
    assert validate(record) == [] and record["hardware"]["count"] == 2 and record["epochs"] == 2
    assert done.stdout.count("Training preact_resnet20") == 1, "only rank 0 logs"
    assert (tmp_path / "runs" / "preact_resnet20-cifar10-smoke-seed0" / "last.pt").is_file()
