"""Keep every exercise's solution hidden, in the book, in JupyterLab and in Colab.

    python tools/solutions.py --check   # exit 1 and list every mismatch (the default)
    python tools/solutions.py --write   # rewrite book/*.py from the executed notebooks
                                        # then:
    python -m jupytext --sync book/*.ipynb

An exercise's solution is an HTML ``<details>`` block (``<summary>Solution</summary>``)
in a markdown cell: Jupyter Book, JupyterLab, Colab and GitHub all show it closed
until the reader opens it. It is followed by the code cell that runs the reference
answer (through its check, where the exercise has one). That cell is tagged
``remove-cell`` (the book does not show it), its source is hidden in JupyterLab
(``jupyter.source_hidden``) and folded to its ``# @title`` line in Colab, and its
code runs only under ``if rn.run_solutions():``, that is with
``RESNOTES_SOLUTIONS=1``, set when the chapters are executed to be committed and
under nbval: a reader's "Run all" prints no answer. The details block ends with a
copy of that cell's code (without the guard) and of the output it printed in the
committed run, after this line:

    <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->

``--write`` makes the copies from the code cell and the executed notebook, then
clears that cell's outputs in the notebook (the copy holds them; a plain renderer
would show them) and tags it ``nbval-ignore-output``. Under
``RESNOTES_SOLUTIONS=1`` a failed check is an error, so nbval still fails on a
wrong reference. ``--check`` (which ``tests/test_notebook_checks.py`` runs)
reports a stale copy of the code, kept outputs, and any solution cell that is not
tagged, not hidden or not guarded.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = (
    "<!-- The reference solution, as the next code cell runs it "
    "(tools/solutions.py) -->"
)
DROPDOWN = "<summary>Solution</summary>"
CLOSE = "\n</details>"
# Colab folds a cell to its "@title" line; ruff writes the comment as "# @title".
TITLE = "# @title Reference solution: it runs only when the book is executed"
GUARD = 'if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it'


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _stdout(cell: dict) -> str:
    return "".join(
        _text(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    ).rstrip("\n")


def shown_code(source: str) -> str:
    """A reference cell's code as the reader would write it: without the title
    line and the guard, dedented."""
    lines = source.split("\n")
    if lines and lines[0].strip() == TITLE:
        lines = lines[1:]
    if lines and lines[0].strip() == GUARD:
        lines = lines[1:]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def copy_block(code: str, output: str) -> str:
    """What the details block ends with: the mark, the code and what it printed."""
    block = f"{MARK}\n\n```python\n{shown_code(code).rstrip()}\n```\n"
    if output:
        block += f"\n```text\n{output}\n```\n"
    return block


def pairs(cells: list[dict]):
    """(index of the solution's markdown cell, index of its code cell)."""
    for i, cell in enumerate(cells[:-1]):
        nxt = cells[i + 1]
        if cell["cell_type"] == "markdown" and DROPDOWN in _text(cell["source"]):
            if nxt["cell_type"] == "code":
                yield i, i + 1


def with_copy(markdown: str, block: str) -> str:
    """``markdown`` with its Solution block ending in ``block``."""
    start = markdown.index(DROPDOWN)
    end = markdown.index(CLOSE, start)
    body = markdown[start:end]
    if MARK in body:
        body = body[: body.index(MARK)]
    body = body.rstrip("\n")
    return markdown[:start] + body + "\n\n" + block.rstrip("\n") + "\n" + markdown[end:]


def problems_in(nb: dict, where: str) -> list[str]:
    problems = []
    for md, code in pairs(nb["cells"]):
        cell = nb["cells"][code]
        tags = cell.get("metadata", {}).get("tags", [])
        if "remove-cell" not in tags:
            problems.append(
                f"{where}: cell {code} (a solution) is not tagged remove-cell"
            )
        source = _text(cell["source"])
        metadata = cell.get("metadata", {})
        if (
            not metadata.get("jupyter", {}).get("source_hidden")
            or metadata.get("cellView") != "form"
            or TITLE not in source
        ):
            problems.append(
                f"{where}: cell {code} (a solution) is not hidden in JupyterLab "
                "(jupyter.source_hidden) and Colab (cellView form, a # @title line)"
            )
        if GUARD not in source.split("\n")[:2]:
            problems.append(
                f"{where}: cell {code} (a solution) would run on Run all: start it "
                f"with {GUARD.split('  #')[0]}"
            )
        expected = copy_block(source, "")
        if expected.rstrip("\n") not in _text(nb["cells"][md]["source"]):
            problems.append(
                f"{where}: cell {md}: the solution's copy of cell {code} is stale"
            )
        if cell.get("outputs"):
            problems.append(
                f"{where}: cell {code} (a solution) keeps its outputs, which a plain "
                "renderer shows: run python tools/solutions.py --write"
            )
        if "nbval-ignore-output" not in tags:
            problems.append(
                f"{where}: cell {code} (a solution) is not tagged nbval-ignore-output "
                "(its outputs live in the solution's copy)"
            )
    return problems


def check(root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        problems += problems_in(
            json.loads(path.read_text()), str(path.relative_to(root))
        )
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite the solutions' copies (and the tags) of every chapter's .py from its
    executed notebook's solution cells."""
    import jupytext

    changed = []
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text()
        executed = json.loads(text)
        py = path.with_suffix(".py")
        nb = jupytext.read(py)
        for md, code in pairs(executed["cells"]):
            cell = executed["cells"][code]
            if cell.get("outputs"):  # else copied and cleared by an earlier --write
                block = copy_block(_text(cell["source"]), _stdout(cell))
                nb.cells[md].source = with_copy(nb.cells[md].source, block)
            tags = [
                t for t in nb.cells[code].metadata.get("tags", []) if t != "hide-cell"
            ]
            wanted = {"remove-cell", "nbval-ignore-output"}
            nb.cells[code].metadata["tags"] = sorted(set(tags) | wanted)
            nb.cells[code].metadata.setdefault("jupyter", {})["source_hidden"] = True
            nb.cells[code].metadata["cellView"] = "form"  # Colab: the title line only
            # The outputs now live in the copy; a plain renderer would show them.
            cell["outputs"], cell["execution_count"] = [], None
        indent = 1 if text.startswith('{\n "') else 2
        after = json.dumps(executed, indent=indent, ensure_ascii=False) + "\n"
        if after != text:
            path.write_text(after)
            changed.append(path)
        before, after = py.read_text(), jupytext.writes(nb, fmt="py:percent")
        if after != before:  # an untouched file keeps its time for jupytext --sync
            py.write_text(after)
            changed.append(py)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="(the default)")
    parser.add_argument("--write", action="store_true", help="rewrite book/*.py")
    if parser.parse_args(argv).write:
        rewritten = [str(path.relative_to(ROOT)) for path in write()]
        print(f"rewrote {', '.join(rewritten) or 'nothing'}; now run:")
        print("python -m jupytext --sync book/*.ipynb")
        return 0
    problems = check()
    print("\n".join([*problems, f"solutions: {len(problems)} problems"]))
    return int(bool(problems))


if __name__ == "__main__":
    sys.exit(main())
