"""Keep every exercise's solution in one toggle of the rendered book.

    python tools/solutions.py --check   # exit 1 and list every mismatch (the default)
    python tools/solutions.py --write   # rewrite book/*.py from the executed notebooks
                                        # then:
    python -m jupytext --sync book/*.ipynb

An exercise's solution is a MyST ``:::{dropdown} Solution`` in a markdown cell,
followed by the code cell that runs the reference answer (through its check, where
the exercise has one). The
book shows only the dropdown: the code cell is tagged ``remove-cell`` (it still
runs, in Jupyter and under nbval), and the dropdown ends with a copy of that
cell's code and of the output it printed in the committed run, between this
line and the dropdown's closing fence:

    % The reference solution, as the next code cell runs it (tools/solutions.py):

``--write`` makes the copies from the code cell and the executed notebook;
``--check`` (which ``tests/test_notebook_checks.py`` runs) reports any that
differ, and any solution cell not tagged ``remove-cell``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "% The reference solution, as the next code cell runs it (tools/solutions.py):"
DROPDOWN = ":::{dropdown} Solution"


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _stdout(cell: dict) -> str:
    return "".join(
        _text(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    ).rstrip("\n")


def copy_block(code: str, output: str) -> str:
    """What the dropdown ends with: the mark, the code and what it printed."""
    block = f"{MARK}\n\n```python\n{code.rstrip()}\n```\n"
    if output:
        block += f"\n```text\n{output}\n```\n"
    return block


def pairs(cells: list[dict]):
    """(index of the dropdown's markdown cell, index of its code cell)."""
    for i, cell in enumerate(cells[:-1]):
        nxt = cells[i + 1]
        if cell["cell_type"] == "markdown" and DROPDOWN in _text(cell["source"]):
            if nxt["cell_type"] == "code":
                yield i, i + 1


def with_copy(markdown: str, block: str) -> str:
    """``markdown`` with its Solution dropdown ending in ``block``."""
    start = markdown.index(DROPDOWN)
    end = markdown.index("\n:::", start)
    body = markdown[start:end]
    if MARK in body:
        body = body[: body.index(MARK)].rstrip("\n")
    return markdown[:start] + body + "\n\n" + block.rstrip("\n") + markdown[end:]


def problems_in(nb: dict, where: str) -> list[str]:
    problems = []
    for md, code in pairs(nb["cells"]):
        cell = nb["cells"][code]
        tags = cell.get("metadata", {}).get("tags", [])
        if "remove-cell" not in tags:
            problems.append(
                f"{where}: cell {code} (a solution) is not tagged remove-cell"
            )
        expected = copy_block(_text(cell["source"]), _stdout(cell))
        if expected.rstrip("\n") not in _text(nb["cells"][md]["source"]):
            problems.append(
                f"{where}: cell {md}: the dropdown's copy of cell {code} is stale"
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
    """Rewrite the dropdowns (and the tags) of every chapter's .py from its executed
    notebook's solution cells."""
    import jupytext

    changed = []
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        executed = json.loads(path.read_text())
        py = path.with_suffix(".py")
        nb = jupytext.read(py)
        for md, code in pairs(executed["cells"]):
            source = _text(executed["cells"][code]["source"])
            block = copy_block(source, _stdout(executed["cells"][code]))
            nb.cells[md].source = with_copy(nb.cells[md].source, block)
            tags = [
                t for t in nb.cells[code].metadata.get("tags", []) if t != "hide-cell"
            ]
            nb.cells[code].metadata["tags"] = sorted(set(tags) | {"remove-cell"})
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
