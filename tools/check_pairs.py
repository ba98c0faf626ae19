"""Check that every notebook in book/ and its py:percent pair hold the same book.

    python tools/check_pairs.py [book/NN_name.ipynb ...]

Both sides are read with the installed Jupytext and compared cell by cell: the
cell's type, its source and the metadata the pair keeps (tags, for instance),
and the notebook metadata the pair's filter keeps. What a tool release writes
of itself is left out of the comparison: the Jupytext version and format
version of the ``.py`` header, the kernelspec (ipykernel names the kernel), and
everything that only the ``.ipynb`` records (``language_info``, cell ids,
execution counts, outputs). So a new release of
jupytext, nbformat or ipykernel cannot fail this check; an edit on one side
that was not synced to the other does.

It prints one line per difference and exits 1 if there is any; ``.ci/run``
runs it. To repair a difference, edit one side and run
``python -m jupytext --sync book/*.ipynb``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Notebook metadata a tool writes about itself, never compared.
TOOL_METADATA = {
    "jupytext": ("text_representation",),
    "top": ("kernelspec", "language_info", "widgets"),
}
# Cell metadata that only the .ipynb keeps, whatever the pair's filter says.
IPYNB_ONLY_CELL_KEYS = {"execution", "collapsed", "scrolled", "ExecuteTime", "id"}


def _normalised(nb) -> tuple[dict, list[tuple[str, str, dict]]]:
    """The notebook metadata and the (type, source, metadata) of each cell, less
    what a tool writes of itself."""
    metadata = {k: v for k, v in nb.metadata.items() if k not in TOOL_METADATA["top"]}
    if "jupytext" in metadata:
        metadata["jupytext"] = {
            k: v
            for k, v in metadata["jupytext"].items()
            if k not in TOOL_METADATA["jupytext"]
        }
    cells = [
        (
            cell.cell_type,
            cell.source.rstrip("\n"),
            {k: v for k, v in cell.metadata.items() if k not in IPYNB_ONLY_CELL_KEYS},
        )
        for cell in nb.cells
    ]
    return metadata, cells


def compare(ipynb: Path) -> list[str]:
    """Every difference between ``ipynb`` and its ``.py`` pair, one line each."""
    import jupytext

    py = ipynb.with_suffix(".py")
    if not py.exists():
        return [f"{ipynb}: no Jupytext pair ({py.name}) beside it"]
    try:
        notebook = jupytext.read(ipynb)
        # The .ipynb as its pair would hold it: written to py:percent and read
        # back, so that both sides pass through the same reader and filter.
        from_ipynb = jupytext.reads(
            jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent"
        )
        from_py = jupytext.read(py)
    except Exception as exc:  # a file Jupytext cannot read is the finding
        return [f"{ipynb}: could not read the pair ({type(exc).__name__}: {exc})"]
    meta_nb, cells_nb = _normalised(from_ipynb)
    meta_py, cells_py = _normalised(from_py)
    problems = []
    for key in sorted(set(meta_nb) | set(meta_py)):
        if meta_nb.get(key) != meta_py.get(key):
            problems.append(
                f"{py}: notebook metadata {key!r} differs from {ipynb.name}'s"
            )
    if len(cells_nb) != len(cells_py):
        problems.append(
            f"{py}: {len(cells_py)} cells, against {len(cells_nb)} in {ipynb.name}"
        )
    for index, (a, b) in enumerate(zip(cells_nb, cells_py)):
        for part, x, y in zip(("type", "source", "metadata"), a, b):
            if x != y:
                problems.append(
                    f"{py}: cell {index}: its {part} differs from {ipynb.name}'s"
                )
                break
        else:
            continue
        if len(problems) >= 20:
            problems.append(f"{py}: (further differences not listed)")
            break
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(Path("book").glob("*.ipynb"))
    problems = [line for path in paths for line in compare(path)]
    for line in problems:
        print(line)
    print(f"checked {len(paths)} pairs: {len(problems)} differences")
    if problems:
        print("edit one side, then run: python -m jupytext --sync book/*.ipynb")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
