"""Tidy a chapter after a real run, before committing it.

    python tools/finish_notebook.py book/01_residual_unit.ipynb [...]

- drops the stderr streams (progress bars and warnings: the book does not render
  them, nbval does not compare them, and warnings carry local file paths);
- drops the per-cell execution timestamps;
- keeps every other output exactly as the run produced it.
"""

import json
import sys
from pathlib import Path


def finish(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = [o for o in cell["outputs"] if not (o["output_type"] == "stream" and o["name"] == "stderr")]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        finish(Path(arg))
        print(f"finished {arg}")
