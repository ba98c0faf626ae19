"""Tidy a chapter after a real run, before committing it.

    python tools/finish_notebook.py book/01_residual_unit.ipynb [...]

- drops the stderr streams (progress bars and warnings: the book does not render
  them, nbval does not compare them, and warnings carry local file paths);
- merges consecutive stdout streams, so that a training log reads as one block;
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
        if cell["cell_type"] != "code":
            continue
        outputs = []
        for o in cell["outputs"]:
            if o["output_type"] == "stream" and o["name"] == "stderr":
                continue
            previous = outputs[-1] if outputs else None
            if (
                o["output_type"] == "stream"
                and previous
                and previous["output_type"] == "stream"
                and previous["name"] == o["name"]
            ):
                previous["text"] = "".join(previous["text"]) + "".join(o["text"])
            else:
                outputs.append(o)
        cell["outputs"] = outputs
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        finish(Path(arg))
        print(f"finished {arg}")
