"""The results ledger refuses what it must not hold or write: a second record of
one run, non-finite or out-of-range figures, strings that carry markup or a
path, and it never writes outside its folder nor through a planted link. The
book's tables show hostile text as text. Version-1 records are upgraded on read."""

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import resnotes.ledger as ledger
from resnotes.ledger import (
    SCHEMA,
    SCHEMA_VERSION,
    LedgerError,
    load_ledger,
    make_record,
    record_name,
    validate,
    write_record,
)
from resnotes.evidence import pack_correct
from resnotes.report import Markdown, Table
from resnotes.train import History

ROOT = Path(__file__).resolve().parent.parent
OLDEST = ROOT / "results" / "preact_resnet20-cifar10-demo-train-seed0-20261128T061149.json"

HOSTILE = [
    "CIFAR-10 <img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "A100 | 99.9% | forged",
    "two\nlines",
    "`code` and [a link](javascript:alert(1)) and ![img](x.png)",
    "{raw}`<b>bold</b>` $\\href{x}{y}$ **strong** _em_ ~~gone~~",
    "# heading & &lt;entity&gt; \\| backslash-pipe",
    "snake_case_<b>x</b> __init__ a_*b*_c _em_ x__strong__y é_ü_é",
]


def fake_history(run_id="3f2a9c0d1e4b5a67", precision="fp32", model="preact_resnet20", dataset="CIFAR-10",
                 hardware="CPU: AMD EPYC (2 threads)", epochs=((1.0, 100.0), (3.0, 300.0), (2.0, 200.0)), **meta):  # fmt: skip
    """A finished run's History without training: (seconds, images/s) per epoch."""
    history = History(
        meta={"model": model, "params": 272282, "dataset": dataset, "data_source": "test", "train_images": 4500,
              "hardware": hardware, "torch": "2.14.1+cpu", "run_id": run_id, "precision": precision, "test_images": 1000, **meta},  # fmt: skip
        config={"profile": "demo", "schedule": "onecycle", "lr": 0.1, "batch_size": 64, "warmup_epochs": 2,
                "milestones": [0.5, 0.75], "nesterov": False, "weight_decay": 1e-4, "seed": 0, "epochs": len(epochs)},  # fmt: skip
    )
    for i, (seconds, images_per_s) in enumerate(epochs):
        history.epochs.append({"epoch": i + 1, "seconds": seconds, "images_per_s": images_per_s, "train_loss": 1.0, "val_acc": 0.5})
    history.best_epoch, history.best_val_acc, history.test_acc, history.seconds = 2, 0.57, 0.576, 12.5
    history.meta.setdefault("test_set", "5e" * 16)
    history.test_correct = pack_correct(np.arange(1000) < 576)
    return history


def a_record(**meta):
    return make_record(fake_history(**meta), model_kwargs={"depth": 20, "num_classes": 10}, flops_per_image=81626368)


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# ---------------------------------------------------------------- the record


def test_make_record_reads_run_id_and_precision_and_takes_medians():
    record = a_record(precision="bf16")
    assert set(record) == set(SCHEMA) and record["schema_version"] == SCHEMA_VERSION == 4
    assert record["test_set"] == "5e" * 16 and len(record["test_correct"]) == 250
    assert record["run_id"] == "3f2a9c0d1e4b5a67" and record["precision"] == "bf16"
    assert record["test_images"] == 1000
    # medians over the epochs after the first, which pays for compilation: (3, 2) s and (300, 200) img/s
    assert record["seconds_per_epoch"] == 2.5 and record["images_per_s"] == 250.0
    assert "median" in SCHEMA["seconds_per_epoch"][0] and "median" in SCHEMA["images_per_s"][0]
    assert validate(record) == []


@pytest.mark.parametrize("key", ["run_id", "precision"])
def test_make_record_needs_the_trainers_run_id_and_precision(key):
    history = fake_history()
    del history.meta[key]
    with pytest.raises(LedgerError, match=f"history.meta lacks '{key}'"):
        make_record(history, model_kwargs={}, flops_per_image=1)


# ---------------------------------------------------------------- one record per run


def test_a_second_record_of_the_same_run_is_refused_and_nothing_is_written(tmp_path):
    first = write_record(a_record(), tmp_path)
    again = a_record()
    again["created"] = "2026-12-01T10:00:00+00:00"  # the same run, its command re-run later
    with pytest.raises(LedgerError, match="nothing was written") as caught:
        write_record(again, tmp_path)
    assert first.name in str(caught.value) and "3f2a9c0d1e4b5a67" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert files_in(tmp_path) == [first.name]
    assert json.loads(first.read_text())["created"] != again["created"]  # the first record is untouched
    # A different run is written, even at the same second.
    other = write_record(a_record(run_id="9d8c7b6a5f4e3d21"), tmp_path)
    assert len(load_ledger(tmp_path)) == 2 and other != first


def test_load_ledger_refuses_two_records_of_one_run(tmp_path):
    path = write_record(a_record(), tmp_path)
    shutil.copy(path, tmp_path / "copy.json")
    with pytest.raises(LedgerError, match="both record run 3f2a9c0d1e4b5a67"):
        load_ledger(tmp_path)


# ---------------------------------------------------------------- figures


def nested(path, value):
    def change(record):
        *parents, last = path
        target = record
        for key in parents:
            target = target[key]
        target[last] = value
    return change


BAD_FIGURES = [
    (("wall_clock_s",), math.nan), (("wall_clock_s",), math.inf), (("wall_clock_s",), -1.0), (("wall_clock_s",), 0),
    (("images_per_s",), math.nan), (("images_per_s",), -math.inf), (("images_per_s",), 0.0), (("images_per_s",), -250.0),
    (("seconds_per_epoch",), math.inf), (("seconds_per_epoch",), -16.6), (("seconds_per_epoch",), 0.0),
    (("best_val_acc",), math.nan), (("best_val_acc",), 1.5), (("best_val_acc",), -0.1),
    (("test_acc",), math.nan), (("test_acc",), math.inf), (("test_acc",), 57.6),
    (("peak_memory_bytes",), -1), (("params",), -3), (("flops_per_image",), 0), (("train_images",), -1),
    (("hardware", "count"), 0), (("hardware", "count"), -2),
    (("schedule", "lr"), math.nan), (("schedule", "lr"), -0.1), (("schedule", "batch_size"), 0),
    (("schedule", "weight_decay"), -1e-4), (("schedule", "warmup_epochs"), math.inf), (("schedule", "milestones"), [0.5, math.nan]),
    (("model_kwargs", "drop_rate"), math.nan), (("model_kwargs", "depth"), math.inf),
]  # fmt: skip


@pytest.mark.parametrize("path, value", BAD_FIGURES, ids=[f"{'.'.join(p)}={v}" for p, v in BAD_FIGURES])
def test_non_finite_negative_and_out_of_range_figures_are_refused(tmp_path, path, value):
    record = a_record()
    nested(path, value)(record)
    assert validate(record), f"{path}={value} passed validation"
    with pytest.raises(LedgerError, match="invalid ledger record"):
        write_record(record, tmp_path)
    assert files_in(tmp_path) == []
    # and from a file (json writes NaN and Infinity unless told not to)
    (tmp_path / "bad.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="bad.json is not a valid ledger record"):
        load_ledger(tmp_path)


def test_make_record_refuses_a_nan_accuracy():
    history = fake_history()
    history.test_acc = math.nan
    with pytest.raises(LedgerError, match="test_acc must be a fraction"):
        make_record(history, model_kwargs={}, flops_per_image=1)


# ---------------------------------------------------------------- strings


BAD_STRINGS = [
    ("dataset", "CIFAR-10 <img src=x onerror=alert(1)>"),
    ("dataset", "CIFAR-10 (JPEG | q75)"),
    ("dataset", "CIFAR-10 (copy)\n# injected"),
    ("dataset", "CIFAR-10 [link](x)"),
    ("dataset", "CIFAR-1000"),
    ("dataset", "ImageNet"),
    (("hardware", "device"), "<script>alert(1)</script>"),
    (("hardware", "device"), "A100 | 99.9% | forged"),
    (("hardware", "device"), "GPU\nsecond line"),
    (("hardware", "device"), "`rm -rf`"),
    (("hardware", "device"), "x" * 500),
    (("hardware", "device"), ""),
    ("model", "../../../x"),
    ("model", "preact_resnet20<script>"),
    ("model", "PreActResNet"),
    ("model", "a/b"),
    ("profile", "../x"),
    ("profile", "evil"),
    ("kind", "train<b>"),
    ("run_id", "../../etc/passwd"),
    ("run_id", "abc"),
    ("precision", "fp64"),
    ("precision", "<b>fp32</b>"),
    ("git_commit", "82a9d7c<script>"),
    ("git_commit", "not a commit"),
    ("torch", "2.14.1 <img src=x>"),
    ("created", "yesterday"),
    ("created", "2026-11-28T06:11:49+00:00<b>"),
    ("created", "2026-13-45T06:11:49+00:00"),
    (("schedule", "schedule"), "<i>step</i>"),
    (("model_kwargs", "block"), "<script>alert(1)</script>"),
    (("model_kwargs", "block"), "a|b"),
    (("model_kwargs",), {"<k>": 1}),
]


@pytest.mark.parametrize("field, value", BAD_STRINGS, ids=[f"{f if isinstance(f, str) else '.'.join(f)}:{v!r:.30}" for f, v in BAD_STRINGS])
def test_strings_that_carry_markup_or_a_path_are_refused(tmp_path, field, value):
    record = a_record()
    nested((field,) if isinstance(field, str) else field, value)(record)
    assert validate(record), f"{field}={value!r} passed validation"
    with pytest.raises(LedgerError, match="invalid ledger record"):
        write_record(record, tmp_path)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("dataset", ["CIFAR-10", "CIFAR-100", "CIFAR-10 (JPEG q75 copy)", "CIFAR-100 (500 per class, v1.2)"])
def test_plain_dataset_names_pass(dataset):
    assert validate({**a_record(), "dataset": dataset}) == []


def test_hostile_history_cannot_make_a_record():
    with pytest.raises(LedgerError, match="dataset must be"):
        a_record(dataset="CIFAR-10 <img src=x onerror=alert(1)>")
    with pytest.raises(LedgerError, match="hardware device"):
        a_record(hardware="<script>alert(1)</script>")


# ---------------------------------------------------------------- the book's table


def table_rows(markdown):
    """The cells of each table row, split at unescaped pipes as a GFM table parser does."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())
            rows.append([c.strip() for c in cells[1:-1]])
    return rows


def test_table_shows_hostile_cells_as_text_in_one_cell():
    rows = [[text, "x", 1] for text in HOSTILE]
    markdown = Table(["value", "other", "n"], rows, caption="<b>caption</b> | *em*")._repr_markdown_()
    parsed = table_rows(markdown)
    assert len(parsed) == 2 + len(HOSTILE)  # header, separator, one line per row: no newline survived
    assert all(len(cells) == 3 for cells in parsed), parsed
    assert "<" not in markdown and ">" not in markdown
    for cells in parsed[2:]:
        assert cells[1:] == ["x", "1"]
        # every markup character is escaped (an underscore inside a word cannot start emphasis)
        assert not re.search(r"(?<!\\)([`*\[\]{}$~#]|(?<![^\W_])_|_(?![^\W_]))", cells[0]), cells[0]


def test_table_renders_hostile_cells_as_their_text_with_myst():
    pytest.importorskip("myst_parser")
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    # the book's settings: MyST with dollarmath, amsmath and colon_fence
    md = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence"}), RendererHTML)
    page = md.render(Table(["value", "other"], [[text, "x"] for text in HOSTILE], caption="<script>x</script>")._repr_markdown_())
    assert "<script" not in page and "<img" not in page and "<a " not in page and "<code" not in page and "<em" not in page
    assert page.count("<tr>") == 1 + len(HOSTILE) and page.count("<td>") == 2 * len(HOSTILE)
    import html

    cells = re.findall(r"<td>(.*?)</td>", page)[0::2]
    assert [html.unescape(c) for c in cells] == [" ".join(t.split("\n")) for t in HOSTILE]


def test_table_keeps_ordinary_cells_code_spans_and_trusted_markdown():
    pytest.importorskip("myst_parser")
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    md = create_md_parser(MdParserConfig(), RendererHTML)
    command = "`python -m resnotes.train --model preact_resnet110 --profile paper --ledger results`"
    table = Table(["model", "params", "acc", "gap", "run", "source"],
                  [["preact_resnet110", 1727962, "57.60%", "+1.6%", command, Markdown("[paper](https://arxiv.org/abs/1603.05027)")],
                   ["pre-act ResNet-110 + SE", 0.5, "CPU: AMD EPYC (2 threads) × 1", "-0.2", "", "He et al. 2016 (Identity Mappings), Table 4"]])  # fmt: skip
    markdown = table._repr_markdown_()
    assert "| preact_resnet110 | 1,727,962 | 57.60% | +1.6% |" in markdown  # the same Markdown as before escaping existed
    page = md.render(markdown)
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert cells == [
        "preact_resnet110", "1,727,962", "57.60%", "+1.6%", f"<code>{command.strip('`')}</code>", '<a href="https://arxiv.org/abs/1603.05027">paper</a>',
        "pre-act ResNet-110 + SE", "0.5", "CPU: AMD EPYC (2 threads) × 1", "-0.2", "", "He et al. 2016 (Identity Mappings), Table 4",
    ]  # fmt: skip
    assert str(table).splitlines()[2].split()[:3] == ["preact_resnet110", "1,727,962", "57.60%"]  # the terminal view is plain text


def test_a_code_span_cell_with_markup_inside_is_escaped():
    markdown = Table(["a"], [["`<img src=x>`"], ["`a|b`"]])._repr_markdown_()
    assert "<" not in markdown and all(len(cells) == 1 for cells in table_rows(markdown))


# ---------------------------------------------------------------- paths


def test_record_name_is_a_plain_file_name():
    name = record_name(a_record())
    assert name == Path(name).name and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.json", name) and ".." not in name
    for field, value in [("model", "../../../x"), ("profile", "../../x"), ("kind", "a/b"), ("model", ".hidden")]:
        with pytest.raises(LedgerError, match="not a plain file name"):
            record_name({**a_record(), field: value})


@pytest.mark.parametrize("field, value", [("model", "../../../x"), ("profile", "../../escape"), ("model", "/tmp/abs")])
def test_a_traversal_name_writes_nothing_outside_the_folder(tmp_path, monkeypatch, field, value):
    folder = tmp_path / "a" / "b" / "results"
    folder.mkdir(parents=True)
    record = {**a_record(), field: value}
    with pytest.raises(LedgerError):
        write_record(record, folder)
    # even with validation out of the way, the name and the resolved path are checked
    monkeypatch.setattr(ledger, "validate", lambda record: [])
    with pytest.raises(LedgerError, match="plain file name|outside"):
        write_record(record, folder)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_write_record_refuses_a_path_outside_the_folder_when_the_name_checks_are_bypassed(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setattr(ledger, "record_name", lambda record: "../outside.json")
    with pytest.raises(LedgerError, match="outside"):
        write_record(a_record(), folder)
    assert not (tmp_path / "outside.json").exists() and files_in(folder) == []


# ---------------------------------------------------------------- links and overwrites


def test_a_planted_link_is_never_followed_and_nothing_is_written(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    record = a_record()
    name = record_name(record)
    os.symlink(victim, folder / name)
    os.symlink(tmp_path / "missing.txt", folder / f"{name[:-5]}-1.json")  # a dangling one
    with pytest.raises(LedgerError, match="is a link"):
        write_record(record, folder)
    assert victim.read_text() == "precious" and not (tmp_path / "missing.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([name, f"{name[:-5]}-1.json"])


def test_a_taken_name_gets_a_suffix_and_no_file_is_replaced(tmp_path):
    record = a_record()
    name = record_name(record)
    other = write_record(a_record(run_id="9d8c7b6a5f4e3d21"), tmp_path)
    other.rename(tmp_path / name)  # another run's record under this record's name
    before = (tmp_path / name).read_bytes()
    path = write_record(record, tmp_path)
    assert path.name == f"{name[:-5]}-1.json" and (tmp_path / name).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"


def test_write_record_writes_through_atomic_write(tmp_path, monkeypatch):
    import resnotes.files

    calls = []
    real = resnotes.files.atomic_write
    monkeypatch.setattr(resnotes.files, "atomic_write", lambda path, *a, **k: calls.append(path) or real(path, *a, **k))
    path = write_record(a_record(), tmp_path)
    assert calls and calls[0].name == path.name and json.loads(path.read_text())["run_id"] == "3f2a9c0d1e4b5a67"


# ---------------------------------------------------------------- older records


def test_the_oldest_record_was_rewritten_in_this_schema_without_changing_its_numbers():
    record = json.loads(OLDEST.read_text())
    assert record["schema_version"] == 3 and validate(record) == []
    assert record["run_id"] == OLDEST.stem and record["precision"] == "fp32"
    assert record["test_images"] is None  # it did not say
    assert record["test_acc"] == 0.576 and record["wall_clock_s"] == 177.61115042100027


@pytest.mark.parametrize("version", [1, 2, 5])
def test_records_of_another_schema_version_are_refused(tmp_path, version):
    old = {**a_record(), "schema_version": version}
    assert any("schema_version must be 3 or 4" in e for e in validate(old))
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(LedgerError, match="old.json is not a valid ledger record"):
        load_ledger(tmp_path)


# ---------------------------------------------------------------- hostile files


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("[" * 30_000 + "]" * 30_000), "not a readable JSON record"),
        (lambda p: p.mkdir(), "is not a file"),
        (lambda p: p.write_text('{"params": ' + "9" * 5000 + "}"), "not a readable JSON record"),
        (lambda p: p.write_text(" " * (65 * 1024) + "{}"), "a ledger record is at most 65,536"),
        (lambda p: p.write_bytes(b"\xff\xfe{}"), "not a readable JSON record"),
        (lambda p: p.write_text("{}"), "not a valid ledger record"),
    ],
    ids=["deep nesting", "a folder", "a 5,000-digit integer", "4.4 MB", "not UTF-8", "empty"],
)
def test_a_hostile_file_is_named_in_one_ledger_error(tmp_path, make, message):
    make(tmp_path / "zz.json")
    with pytest.raises(LedgerError, match=message) as caught:
        load_ledger(tmp_path)
    assert "zz.json" in str(caught.value)


def test_a_record_behind_a_link_is_refused_and_nothing_is_written_beside_it(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    real = write_record(a_record(), elsewhere)
    folder = tmp_path / "results"
    folder.mkdir()
    os.symlink(real, folder / "linked.json")
    with pytest.raises(LedgerError, match="linked.json is a link"):
        load_ledger(folder)
    # write_record used to skip links in its duplicate check, so the same run was
    # written a second time, after which the whole ledger was refused.
    with pytest.raises(LedgerError, match="linked.json is a link"):
        write_record(a_record(), folder)
    assert files_in(folder) == ["linked.json"]


def test_the_committed_ledger_loads():
    rows = load_ledger(ROOT / "results")
    assert rows and all(r["schema_version"] in (3, SCHEMA_VERSION) and r["precision"] in ("bf16", "fp16", "fp32") for r in rows)
    assert all(("test_correct" in r) == (r["schema_version"] == 4) for r in rows)


def test_the_per_image_bits_must_fit_the_test_set_and_give_the_accuracy():
    record = a_record()
    assert validate(record) == []
    assert validate({**record, "test_correct": pack_correct(np.arange(1000) < 575)}) == [
        "test_correct marks 575 of 1,000 images right, but test_acc 0.576 says 576.0"
    ]
    assert any("hex characters" in e for e in validate({**record, "test_correct": record["test_correct"][:-2]}))
    every = {**record, "test_acc": 1.0, "test_correct": pack_correct(np.ones(1000, bool))}
    assert validate(every) == []
    assert any("past its last image" in e for e in validate({**every, "test_images": 999}))
    assert any("test_set must be 32 hex digits" in e for e in validate({**record, "test_set": "x"}))
    version_3 = {k: v for k, v in record.items() if k not in ("test_set", "test_correct")}
    assert validate({**version_3, "schema_version": 3}) == []  # old records stay readable
    assert any("missing field 'test_correct'" in e for e in validate(version_3))
    assert any("unknown field 'test_correct'" in e for e in validate({**record, "schema_version": 3}))


@pytest.mark.parametrize(
    "change, fact",
    [
        ({"test_acc": 0.5765}, "is not a whole number of the 1,000 test images"),
        ({"seed": 10**30}, "seed must be an integer >= 0 and <= 9.22337e+18"),
        ({"seed": 10**400}, "seed must be an integer"),
        ({"created": "9999-01-01T00:00:00+00:00"}, "is in the future"),
        ({"model": "notamodel"}, "is not a registered model"),
        ({"test_images": None}, "test_images must be a count (null only in schema 3)"),
    ],
)
def test_a_record_no_run_can_produce_is_refused(change, fact):
    record = a_record()
    if "test_acc" in change:  # keep the bits consistent, so that this rule is the one broken
        change = {**change, "test_correct": record["test_correct"]}
    errors = validate({**record, **change})
    assert any(fact in e for e in errors), errors


def test_a_record_with_a_key_twice_is_refused(tmp_path):
    """json keeps the last of two values: "test_acc" twice loaded, the last winning."""
    text = json.dumps(a_record(), indent=1)
    twice = text.replace('"test_acc": 0.576,', '"test_acc": 0.576,\n "test_acc": 0.999,')
    assert twice != text
    (tmp_path / "twice.json").write_text(twice)
    with pytest.raises(LedgerError, match="twice.json is not a readable JSON record .*'test_acc' appears twice"):
        load_ledger(tmp_path)
