"""python -m resnotes.replicates: the chapters' demo arms over seeds, by the command
line, skipping what the ledger already holds."""

import sys

import pytest

from resnotes import replicates
from resnotes.models import create_model


def test_every_arm_builds_and_every_comparison_names_two_arms():
    for label, (model, kwargs) in replicates.DEMO_ARMS.items():
        assert create_model(model, **kwargs) is not None, label
    for chapter, pairs in replicates.COMPARISONS.items():
        for first, second in pairs:
            assert first in replicates.DEMO_ARMS and second in replicates.DEMO_ARMS and first != second


def test_the_command_is_the_command_lines_and_parses_back():
    line = replicates.command("Attention-56 (NAL)", 2, "results", "runs/replicates")
    assert line[:3] == [sys.executable, "-m", "resnotes.train"]
    assert line[line.index("--model") + 1] == "attention92"
    assert "attention='nal'" in line and "depth=56" in line
    assert line[line.index("--seed") + 1] == "2" and line[line.index("--profile") + 1] == "demo"
    assert line[line.index("--train-per-class") + 1] == "250"  # chapter 4's half subset
    assert "--train-per-class" not in replicates.command("ResNet-14", 0, "results", "runs")
    import argparse

    from resnotes.cli import _model_args, model_arg

    pairs = [model_arg(v) for i, v in enumerate(line) if line[i - 1] == "--model-arg"]
    assert _model_args(argparse.ArgumentParser(), "attention92", pairs) == {"depth": 56, "attention": "nal"}


def record(model, kwargs, seed, bits=True, created="2026-12-08T00:00:00+00:00", profile="demo", train_images=4500):
    r = {"kind": "train", "profile": profile, "model": model, "model_kwargs": {**kwargs, "num_classes": 10},
         "seed": seed, "created": created, "wall_clock_s": 100.0 + seed, "dataset": "CIFAR-10 (JPEG q75 copy)",
         "train_images": train_images}  # fmt: skip
    if bits:
        r["test_correct"] = "ff"
    return r


def test_recorded_finds_the_arms_runs_with_bits_only_and_the_latest_per_seed():
    model, kwargs = replicates.DEMO_ARMS["ResNet-14"]
    records = [
        record(model, kwargs, 0),
        record(model, kwargs, 0, created="2026-12-09T00:00:00+00:00"),
        record(model, kwargs, 1, bits=False),
        record(model, {"depth": 32}, 2),
        record(model, kwargs, 3, profile="smoke"),
        record(model, kwargs, 4, train_images=2250),
    ]
    found = replicates.recorded(records, "ResNet-14")
    assert sorted(found) == [0] and found[0]["created"].startswith("2026-12-09")
    assert replicates.estimate_seconds(records, "ResNet-14") == pytest.approx(100.0)  # 100, 100, 101
    assert replicates.estimate_seconds([], "ResNet-14") is None


def test_a_dry_run_lists_only_what_is_missing(tmp_path, capsys, monkeypatch):
    model, kwargs = replicates.DEMO_ARMS["ResNet-14"]
    monkeypatch.setattr("resnotes.ledger.load_ledger", lambda folder: [record(model, kwargs, 0)])
    assert replicates.main(["--chapter", "6", "--seeds", "0", "1", "--ledger", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 runs to do (3 arms x 2 seeds, less 1 already in")
    assert "ResNet-14, seed 0" not in out and "ResNet-14, seed 1" in out and "ResNet-14 + CBAM, seed 0" in out
    with pytest.raises(SystemExit):
        replicates.main(["--chapter", "9"])


def test_chapter_4s_arms_are_found_on_their_half_subset_only():
    model, kwargs = replicates.DEMO_ARMS["Attention-56 (NAL)"]
    records = [record(model, kwargs, 0, train_images=2250), record(model, kwargs, 1)]
    assert sorted(replicates.recorded(records, "Attention-56 (NAL)")) == [0]


def test_a_chapters_evidence_pairs_the_seeds_both_arms_have_and_draws_it():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from resnotes.evidence import pack_correct
    from resnotes.plot import seed_evidence

    rng = np.random.default_rng(0)
    records = []
    for arm, p, seeds in (("ResNet-32", 0.6, (0, 1, 2)), ("plain-32", 0.5, (1, 2, 3))):
        model, kwargs = replicates.DEMO_ARMS[arm]
        for seed in seeds:
            bits = rng.random(1000) < p
            r = record(model, kwargs, seed)
            r.update(test_correct=pack_correct(bits), test_images=1000, test_acc=float(bits.mean()),
                     test_set="ab" * 16, profile="demo", hardware={"device": "CPU: test", "count": 1})  # fmt: skip
            records.append(r)
    [(first, second, result, runs_a, runs_b)] = replicates.chapter_evidence(1, records)
    assert (first, second) == ("ResNet-32", "plain-32") and result.seeds == (1, 2)
    assert result.mean > 0.05 and sorted(runs_a) == [0, 1, 2]
    fig = seed_evidence(replicates.chapter_evidence(1, records))
    assert len(fig.axes) == 2 and "1,000 test images" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="python -m resnotes.replicates"):
        seed_evidence(replicates.chapter_evidence(4, records))
