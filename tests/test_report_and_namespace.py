"""The book-facing helpers: intervals, comparisons, the paper table, wrapping,
the chapter clock, the short namespace and recording a chapter's runs."""

import re
import json
import math

import numpy as np
import pytest

import resnotes as rn
from resnotes.ledger import load_ledger, record_runs
from resnotes.evidence import across_seeds, compare, network_name, pack_correct
from resnotes.report import paper_table, wilson_interval, wrap
from resnotes.train import History


def test_wilson_interval_matches_hand_computed_values_and_stays_in_range():
    low, high = wilson_interval(0.5, 1000)
    # centre 0.5; half-width z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2))
    z, n = 1.96, 1000
    half = z / (1 + z * z / n) * math.sqrt(0.25 / n + z * z / (4 * n * n))
    assert low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    assert 0.030 < half < 0.032  # the "about ±3 points" the chapters quote
    low, high = wilson_interval(0.0, 100)
    assert low == 0.0 and 0 < high < 0.05  # never below 0, unlike p ± z·se
    assert wilson_interval(1.0, 100)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one test image"):
        wilson_interval(0.5, 0)
    with pytest.raises(ValueError, match="fraction"):
        wilson_interval(57.1, 1000)


def history(name, test_acc, test_images=1000, correct=None):
    h = History(
        meta={"model": name, "params": 1000, "dataset": "CIFAR-10", "data_source": "test", "train_images": 4500,
              "test_images": test_images, "hardware": "CPU: test (2 threads)", "torch": "2.14.1", "run_id": f"{name}0000",
              "precision": "fp32", "test_set": "0" * 32},  # fmt: skip
        config={"profile": "demo", "schedule": "onecycle", "lr": 0.1, "batch_size": 32, "warmup_epochs": 2.0,
                "milestones": [0.5, 0.75], "nesterov": True, "weight_decay": 5e-4, "seed": 0, "epochs": 2},  # fmt: skip
    )
    h.epochs = [{"epoch": 1, "seconds": 2.0, "images_per_s": 100.0, "train_loss": 2.0, "val_acc": 0.3},
                {"epoch": 2, "seconds": 1.0, "images_per_s": 200.0, "train_loss": 1.5, "val_acc": 0.4}]  # fmt: skip
    if correct is None:
        correct = np.arange(test_images) < round(test_acc * test_images)
    h.best_epoch, h.best_val_acc, h.test_acc, h.seconds = 2, 0.4, float(np.mean(correct)), 3.0
    h.test_correct = pack_correct(correct)
    return h


def test_compare_is_paired_mcnemar_on_the_images_where_the_runs_disagree():
    """61.4% against 55.3% on the same 1,000 images: what decides is how many images
    only one of them got right (McNemar), not the two accuracies' intervals."""
    a = np.zeros(1000, bool)
    a[:614] = True
    b = np.zeros(1000, bool)
    b[61:614] = True  # b is right on a subset of a's images: 61 discordant, all for a
    said = " ".join(compare({"a": history("a", 0, correct=a), "b": history("b", 0, correct=b)}, "a", "b").split())
    assert "+6.10 points" in said and "61 images right only in the first, 0 only" in said
    assert "McNemar's exact test p < 0.001" in said and "a difference McNemar's test detects" in said
    assert "another seed" in said
    c = a.copy()
    c[[0, 1, 2]] = False
    c[[700, 701]] = True  # 3 against 2 discordant images
    said = " ".join(compare({"a": history("a", 0, correct=a), "c": history("c", 0, correct=c)}, "a", "c").split())
    assert "no difference McNemar's test detects" in said and "p = 1" in said


@pytest.mark.parametrize(
    "model, kwargs, name",
    [
        ("preact_resnet20", {"depth": 32}, "ResNet-32"),
        ("plain20", {"depth": 32}, "plain-32"),
        ("preact_resnet164", {}, "ResNet-164 (bottleneck)"),
        ("pyramidnet110_a48", {"depth": 32, "alpha": 45}, "PyramidNet-32 (α=45)"),
        ("pyramidnet272_bottleneck_a200", {}, "PyramidNet-272 (α=200, bottleneck)"),
        ("densenet100_bc_k12", {"depth": 40}, "DenseNet-BC-40 (k=12)"),
        ("densenet40_k12", {}, "DenseNet-40 (k=12)"),
        ("attention92", {"depth": 56, "attention": "nal"}, "Attention-56 (NAL)"),
        ("resnet110_stochastic_depth", {"depth": 32}, "ResNet-32, stochastic depth"),
        ("resnet110", {"depth": 32}, "ResNet-32, constant depth"),
        ("preact_resnet110_se", {"depth": 14}, "ResNet-14 + SE"),
        ("wrn28_k10", {}, "WRN-28-10"),
    ],
)
def test_a_record_is_named_by_the_network_it_trained(model, kwargs, name):
    assert network_name(model, kwargs) == name


def test_across_seeds_pairs_the_arms_seed_by_seed():
    def record(model, kwargs, seed, acc, created="2026-11-30T10:00:00+00:00"):
        return {"kind": "train", "profile": "demo", "model": model, "model_kwargs": {**kwargs, "num_classes": 10},
                "dataset": "CIFAR-10", "seed": seed, "test_acc": acc, "test_images": 1000, "epochs": 8,
                "created": created}  # fmt: skip
    ledger = [
        record("preact_resnet20", {"depth": 32}, 0, 0.55),
        record("preact_resnet20", {"depth": 32}, 1, 0.50),
        record("preact_resnet20", {"depth": 32}, 1, 0.52, created="2026-11-30T11:00:00+00:00"),  # the latest wins
        record("plain20", {"depth": 32}, 0, 0.40),
        record("plain20", {"depth": 32}, 1, 0.45),
        record("plain20", {"depth": 20}, 1, 0.99),  # another network
    ]
    arms = {"ResNet-32": ("preact_resnet20", {"depth": 32}), "plain-32": ("plain20", {"depth": 32})}
    table = across_seeds(ledger, arms, "demo")
    assert table.headers == ["network", "seed 0", "seed 1", "mean", "spread (sd)"]
    assert table.rows[0] == ["ResNet-32", "55.0", "52.0", "53.5", "2.1"]
    assert table.rows[1] == ["plain-32", "40.0", "45.0", "42.5", "3.5"]
    assert table.rows[2] == ["plain-32 − ResNet-32", "-15.0", "-7.0", "-11.0", "5.7"]
    # Once records keep per-image bits, the older ones (1,000 test images) are left out.
    newer = record("preact_resnet20", {"depth": 32}, 2, 0.60)
    newer.update(test_correct="ff", test_images=10_000)
    table = across_seeds([*ledger, newer], arms, "demo")
    assert table.headers == ["network", "seed 2", "mean", "spread (sd)"] and "10,000 test images" in table.caption


def test_results_table_shows_the_interval_and_the_number_of_test_images():
    table = rn.results_table({"a": history("a", 0.5)})
    assert "1,000 test images" in table.caption
    assert table.rows[0][3] == "50.0% (46.9–53.1)"


def test_paper_table_reads_the_registry_and_counts_live():
    table = paper_table(["preact_resnet110", "densenet40_k12"], flops=False)
    assert table.headers[:4] == ["paper's row", "our params", "paper's params", "gap"]
    resnet, densenet = table.rows
    assert resnet[0] == "ResNet-110 (pre-activation)" and resnet[1] == "1.73M" and resnet[2] == "1.7M"
    assert resnet[3] == "+1.8%" and resnet[4] == "6.37"
    assert densenet[4:6] == ["5.24", "24.42"]
    assert "He et al. 2016" in table.caption and "Huang et al. 2017" in table.caption
    with_column = paper_table(["densenet40_k12"], columns={"k": lambda name: 12}, flops=True)
    assert with_column.headers[4] == "GFLOPs" and with_column.rows[0][-1] == "12"


def test_wrap_keeps_lines_within_the_column_and_indents_continuations():
    line = "  data: " + " ".join(["word"] * 40)
    wrapped = wrap(line).splitlines()
    assert len(wrapped) > 1 and all(len(x) <= 88 for x in wrapped)
    assert wrapped[1].startswith("      word")  # the line's own indent plus 4
    assert wrap("short\n\nlines") == "short\n\nlines"


def test_the_short_namespace_and_the_chapter_clock(capsys):
    assert rn.create_model is rn.models.create_model and rn.fit.__module__ == "resnotes.train"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        rn.nonexistent  # noqa: B018
    profile = rn.start_chapter()
    printed = capsys.readouterr().out
    assert profile.name == "smoke" and "profile 'smoke'" in printed and "hardware:" in printed
    assert re.match(r"This chapter ran in \d+ s \(profile", rn.chapter_time())


def test_record_runs_names_a_model_anyone_can_rebuild_and_skips_smoke(tmp_path, capsys):
    demo = {"ResNet-32": history("ResNet-32", 0.5)}
    written = record_runs(demo, {"ResNet-32": ("preact_resnet20", {"depth": 32})}, folder=tmp_path)
    (record,) = load_ledger(tmp_path)
    assert len(written) == 1 and record["model"] == "preact_resnet20"
    assert record["model_kwargs"] == {"depth": 32, "num_classes": 10}  # CIFAR-10: rebuilt with its 10 classes
    assert record["test_images"] == 1000
    rebuilt = rn.create_model(record["model"], **record["model_kwargs"])
    assert record["flops_per_image"] == rn.count_flops(rebuilt)
    smoke = {"x": history("x", 0.5)}
    smoke["x"].config["profile"] = "smoke"
    assert record_runs(smoke, {"x": ("preact_resnet20", {})}, folder=tmp_path / "other") == []
    assert not (tmp_path / "other").exists() and "not added" in capsys.readouterr().out
    assert json.loads(written[0].read_text())["schema_version"] == 4
