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


def test_a_stale_solution_copy_is_reported():
    import solutions

    code = {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": "check('x', f)\n",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "✓ x: correct.\n"}]}  # fmt: skip
    markdown = {"cell_type": "markdown", "metadata": {}, "source": ":::{dropdown} Solution\nWhy.\n:::"}
    nb = {"cells": [markdown, code]}
    assert solutions.problems_in(nb, "nb") == ["nb: cell 0: the dropdown's copy of cell 1 is stale"]
    markdown["source"] = solutions.with_copy(markdown["source"], solutions.copy_block("check('x', f)\n", "✓ x: correct."))
    assert solutions.problems_in(nb, "nb") == []
    assert markdown["source"].endswith("```text\n✓ x: correct.\n```\n:::")
    code["metadata"]["tags"] = ["hide-cell"]
    assert solutions.problems_in(nb, "nb") == ["nb: cell 1 (a solution) is not tagged remove-cell"]


def test_a_solution_without_a_check_is_also_kept_in_its_dropdown():
    """Exercise 2.4's reference code has no check() and was shown as a second toggle."""
    import solutions

    code = {"cell_type": "code", "metadata": {"tags": ["hide-cell"]}, "source": "print(1)\n",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]}  # fmt: skip
    markdown = {"cell_type": "markdown", "metadata": {}, "source": ":::{dropdown} Solution\nWhy.\n:::"}
    problems = solutions.problems_in({"cells": [markdown, code]}, "nb")
    assert problems == [
        "nb: cell 1 (a solution) is not tagged remove-cell",
        "nb: cell 0: the dropdown's copy of cell 1 is stale",
    ]
