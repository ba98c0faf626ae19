import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from check_notebooks import check_notebook  # noqa: E402

GOOD_OUTPUTS = [
    {"output_type": "stream", "name": "stdout", "text": ["profile 'demo': 500 train\n", "hardware: CPU: x (2 threads)\n"]},
    {"output_type": "stream", "name": "stdout", "text": "CIFAR-10 (JPEG q75 copy), ImageFolder layout, from $RESNOTES_DATA\n"},
]


def write_notebook(folder: Path, outputs, pair=True) -> Path:
    cell = {"cell_type": "code", "metadata": {}, "source": "x", "execution_count": 1, "outputs": outputs}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = folder / "chapter.ipynb"
    path.write_text(json.dumps(nb))
    if pair:
        path.with_suffix(".py").write_text("# %%\nx\n")
    return path


def test_a_clean_notebook_passes(tmp_path):
    assert check_notebook(write_notebook(tmp_path, GOOD_OUTPUTS), identity_words=[]) == []


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"output_type": "stream", "name": "stderr", "text": "/home/alice/resnotes/data.py:12: UserWarning"}, "local path (/home/alice"),
        ({"output_type": "stream", "name": "stdout", "text": "saved to /work/main/runs"}, "local path (/work/main"),
        ({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}, "an error output (ValueError)"),
        ({"output_type": "stream", "name": "stdout", "text": "ran on build-box-7.example"}, "user or host name 'build-box-7.example'"),
    ],
)
def test_each_problem_is_reported(tmp_path, extra, expected):
    problems = check_notebook(write_notebook(tmp_path, [*GOOD_OUTPUTS, extra]), identity_words=["build-box-7.example"])
    assert any(expected in p for p in problems), problems


def test_urls_and_placeholders_are_not_paths(tmp_path):
    outputs = [*GOOD_OUTPUTS, {"output_type": "stream", "name": "stdout", "text": "see https://github.com/resnotes/resnotes and data/cache"}]
    assert check_notebook(write_notebook(tmp_path, outputs), identity_words=[]) == []


def test_missing_provenance_and_pair(tmp_path):
    outputs = [{"output_type": "stream", "name": "stdout", "text": "accuracy 54%"}]
    problems = check_notebook(write_notebook(tmp_path, outputs, pair=False), identity_words=[])
    assert any("no output states the run's profile or hardware or dataset" in p for p in problems)
    assert any("no Jupytext pair" in p for p in problems)


def test_lines_wider_than_the_column_are_reported(tmp_path):
    wide = "x" * 89
    outputs = [*GOOD_OUTPUTS, {"output_type": "stream", "name": "stdout", "text": f"ok\n{wide}\n"}]
    problems = check_notebook(write_notebook(tmp_path, outputs), identity_words=[])
    assert any("an output line of 89 characters" in p for p in problems), problems
    # stderr (progress bars) is not shown in the book; a table has a Markdown form that wraps
    hidden = [{"output_type": "stream", "name": "stderr", "text": wide},
              {"output_type": "execute_result", "data": {"text/plain": wide, "text/markdown": "| a |"}, "metadata": {}}]  # fmt: skip
    assert check_notebook(write_notebook(tmp_path, [*GOOD_OUTPUTS, *hidden]), identity_words=[]) == []
    path = write_notebook(tmp_path, GOOD_OUTPUTS)
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = ["short\n", "y = '" + "y" * 90 + "'\n"]
    path.write_text(json.dumps(nb))
    assert any("a code line of 96 characters" in p for p in check_notebook(path, identity_words=[]))


def test_a_notebook_without_outputs_is_reported(tmp_path):
    problems = check_notebook(write_notebook(tmp_path, []), identity_words=[])
    assert any("no outputs at all" in p for p in problems)


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path):
    assert check_notebook(path) == []


def test_every_solution_sits_in_one_toggle_and_its_copy_is_current():
    """The book showed two toggles per solution: the dropdown and the code cell."""
    import solutions

    assert solutions.check(ROOT) == [], "run python tools/solutions.py --write, then jupytext --sync"


GUARDED = "# @title Reference solution: it runs only when the book is executed\n" + \
    'if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it\n    check(\'x\', f)\n'
HIDDEN = {"tags": ["nbval-ignore-output", "remove-cell"], "jupyter": {"source_hidden": True}, "cellView": "form"}


def test_a_stale_solution_copy_is_reported():
    import solutions

    code = {"cell_type": "code", "metadata": json.loads(json.dumps(HIDDEN)), "source": GUARDED, "outputs": []}
    markdown = {"cell_type": "markdown", "metadata": {}, "source": "<details>\n<summary>Solution</summary>\n\nWhy.\n\n</details>"}
    nb = {"cells": [markdown, code]}
    assert solutions.problems_in(nb, "nb") == ["nb: cell 0: the solution's copy of cell 1 is stale"]
    markdown["source"] = solutions.with_copy(markdown["source"], solutions.copy_block(GUARDED, "✓ x: correct."))
    assert solutions.problems_in(nb, "nb") == []
    assert markdown["source"].endswith("```python\ncheck('x', f)\n```\n\n```text\n✓ x: correct.\n```\n\n</details>")
    assert "Why.\n\n<!-- The reference solution" in markdown["source"]
    code["metadata"]["tags"] = ["hide-cell", "nbval-ignore-output"]
    assert solutions.problems_in(nb, "nb") == ["nb: cell 1 (a solution) is not tagged remove-cell"]


def test_a_solution_cell_must_be_hidden_guarded_and_without_outputs():
    """In JupyterLab and Colab the solution was in plain sight, and Run all ran it."""
    import solutions

    code = {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": "check('x', f)\n",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "✓ x: correct.\n"}]}  # fmt: skip
    markdown = {"cell_type": "markdown", "metadata": {}, "source": "<details>\n<summary>Solution</summary>\n\nWhy.\n\n</details>"}
    problems = solutions.problems_in({"cells": [markdown, code]}, "nb")
    assert [p.removeprefix("nb: ")[:40] for p in problems] == [
        "cell 1 (a solution) is not hidden in Jup",
        "cell 1 (a solution) would run on Run all",
        "cell 0: the solution's copy of cell 1 is",
        "cell 1 (a solution) keeps its outputs, w",
        "cell 1 (a solution) is not tagged nbval-",
    ]


def test_with_reference_solutions_running_a_failed_check_is_an_error(monkeypatch, capsys):
    from resnotes.exercises import check

    assert not check("resnet.units_per_stage", lambda depth, bottleneck: 0)
    monkeypatch.setenv("RESNOTES_SOLUTIONS", "1")
    with pytest.raises(AssertionError, match="resnet.units_per_stage"):
        check("resnet.units_per_stage", lambda depth, bottleneck: 0)


# The pairing check (tools/check_pairs.py), which CI runs instead of a byte diff.
from check_pairs import compare as compare_pair  # noqa: E402


def copy_pair(tmp_path: Path, name: str = "01_residual_unit") -> Path:
    for suffix in (".ipynb", ".py"):
        (tmp_path / f"{name}{suffix}").write_bytes((ROOT / "book" / f"{name}{suffix}").read_bytes())
    return tmp_path / f"{name}.ipynb"


def test_every_committed_pair_is_in_sync():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        assert compare_pair(path) == [], path.name


def test_metadata_a_newer_tool_writes_does_not_unpair(tmp_path):
    """A new jupytext, nbformat or ipykernel rewrites versions and ids, not the book."""
    ipynb = copy_pair(tmp_path)
    py = ipynb.with_suffix(".py")
    header, body = py.read_text().split("# ---\n\n", 1)
    header = header.replace("format_version: '1.3'", "format_version: '1.9'")
    header = header.replace("format_name: percent", "format_name: percent\n#       jupytext_version: 99.1.0")
    header = header.replace("display_name: Python 3 (ipykernel)", "display_name: Python 3.14 (ipykernel 9)")
    py.write_text(header + "# ---\n\n" + body)
    nb = json.loads(ipynb.read_text())
    nb["nbformat_minor"] = 9
    nb["metadata"]["language_info"]["version"] = "3.99.0"
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3 (a kernel of 2030)"
    for index, cell in enumerate(nb["cells"]):
        cell["id"] = f"new-id-{index}"
        cell["metadata"]["execution"] = {"iopub.status.busy": "2030-01-01T00:00:00Z"}
    ipynb.write_text(json.dumps(nb, indent=2))
    assert "jupytext_version: 99.1.0" in py.read_text()
    assert compare_pair(ipynb) == []


def test_an_unsynced_edit_is_a_difference(tmp_path):
    ipynb = copy_pair(tmp_path)
    py = ipynb.with_suffix(".py")
    py.write_text(py.read_text().replace("# Every network in this book", "# Every NETWORK in this book", 1))
    assert compare_pair(ipynb) == [f"{py}: cell 0: its source differs from {ipynb.name}'s"]
    nb = json.loads(ipynb.read_text())
    code = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    nb["cells"][code]["metadata"]["tags"] = ["a-new-tag"]
    ipynb.write_text(json.dumps(nb))
    assert f"{py}: cell {code}: its metadata differs from {ipynb.name}'s" in compare_pair(ipynb)
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "new"})
    ipynb.write_text(json.dumps(nb))
    assert any("cells, against" in p for p in compare_pair(ipynb))


def test_the_pairs_headers_do_not_record_the_jupytext_version():
    for py in sorted((ROOT / "book").glob("*.py")):
        header = py.read_text().split("# ---", 2)[1]
        assert not [line for line in header.splitlines() if line.strip("# ").startswith("jupytext_version:")], py.name


def test_the_intros_table_names_each_chapter_by_its_page_title():
    import re

    intro = (ROOT / "book" / "intro.md").read_text()
    linked = dict((target, title) for title, target in re.findall(r"\| \[([^\]]+)\]\((\d\d_\w+)\.ipynb\)", intro))
    assert len(linked) == 7
    for target, title in linked.items():
        first = (ROOT / "book" / f"{target}.py").read_text().split("# # ", 1)[1].splitlines()[0]
        assert re.sub(r"^\d+\. ", "", first) == title, target


# Solutions: hidden in every renderer, and not run by a reader's "Run all".


def test_a_plain_renderer_shows_every_solution_closed():
    """JupyterLab and Colab showed the MyST dropdown's text and the solution open:
    nbconvert's HTML (not Jupyter Book) must show each inside a closed <details>."""
    import re

    nbconvert = pytest.importorskip("nbconvert")
    for path in sorted((ROOT / "book").glob("0[1-5]_*.ipynb")):
        nb = json.loads(path.read_text())
        html, _ = nbconvert.HTMLExporter(template_name="lab").from_filename(str(path))
        assert ":::{dropdown}" not in html and "% The reference solution" not in html, path.name
        closed = re.findall(r"<details>\s*<summary>Solution</summary>(.*?)</details>", html, re.S)
        solutions_md = [c for c in nb["cells"] if c["cell_type"] == "markdown" and "<summary>Solution</summary>" in "".join(c["source"])]
        assert len(closed) == len(solutions_md) >= 3, path.name
        assert "<details open" not in html, path.name
        outside = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
        for body in closed:
            for answer in re.findall(r"✓ [\w.]+: correct[^<]*", body):
                assert answer not in outside.replace("&#10003;", "✓"), (path.name, answer)


def test_run_all_in_a_plain_kernel_runs_no_reference_solution(tmp_path):
    """The reference cell printed the answer's check on "Run all"; it runs only with
    RESNOTES_SOLUTIONS=1 (the book's execution, and nbval)."""
    import os

    nbclient = pytest.importorskip("nbclient")
    import nbformat

    chapter = json.loads((ROOT / "book" / "01_residual_unit.ipynb").read_text())
    reference = next(c for c in chapter["cells"] if "rn.run_solutions()" in "".join(c["source"]))
    cells = [
        nbformat.v4.new_code_cell("import resnotes as rn\nfrom resnotes.exercises import check"),
        nbformat.v4.new_code_cell("".join(reference["source"])),
    ]
    for env, printed in (({}, False), ({"RESNOTES_SOLUTIONS": "1"}, True)):
        nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(c) for c in cells])
        old = {k: os.environ.pop(k, None) for k in ("RESNOTES_SOLUTIONS",)}
        os.environ.update(env)
        try:
            nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
        finally:
            os.environ.pop("RESNOTES_SOLUTIONS", None)
            os.environ.update({k: v for k, v in old.items() if v is not None})
        out = "".join(o.get("text", "") for o in nb.cells[1].outputs)
        assert ("correct" in out) is printed, (env, out)
