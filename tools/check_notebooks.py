"""Check the committed notebooks the way a reader and CI see them.

    python tools/check_notebooks.py [book/*.ipynb ...]

For every notebook (all of book/ when none is named) it checks that:

- no output holds an absolute local path, a user name or a host name;
- no output is an error or a traceback;
- some output states the run's profile, its hardware and its dataset
  (the banner every chapter prints, and the data description);
- a Jupytext pair (.py beside the .ipynb) exists;
- no line of code, and no line a cell prints (stdout, or a plain-text result
  without a richer form), is longer than 88 characters, the width of the
  book's column.

It prints one line per problem and exits 1 if there is any. ``.ci/run`` runs
it, and ``tools/check_pairs.py`` checks the pairs' content.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
import sys
from pathlib import Path

# An absolute path with at least two components (/home/x, /work/main/...),
# not part of a URL, and Windows drive paths.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w:/.$])(/(?:home|root|Users|work|tmp|var|opt|usr|mnt|srv|data)/[\w.-]+|[A-Za-z]:\\\\[\w.-]+)"
)
PROVENANCE = {
    "profile": re.compile(r"profile '(smoke|demo|fast|paper)'"),
    "hardware": re.compile(r"hardware: |on (CPU|NVIDIA|Apple|cuda)"),
    "dataset": re.compile(r"CIFAR-10|CIFAR-100"),
}


def _identity_words() -> list[str]:
    """This machine's user and host names, where they are distinctive enough to
    search for."""
    words = set()
    user, host = getpass.getuser(), socket.gethostname()
    if len(user) >= 4 and user not in {"root", "user", "jovyan", "runner", "admin"}:
        words.add(user)
    if len(host) >= 6 and re.search(r"[\d.-]", host) and host != "localhost":
        words.add(host)
    return sorted(words)


def output_texts(nb: dict):
    """(cell index, output) pairs with the text of every output."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            parts = [
                output.get("text", ""),
                output.get("ename", ""),
                output.get("evalue", ""),
            ]
            for key, value in output.get("data", {}).items():
                if key.startswith("text/") or key == "application/json":
                    parts.append(
                        value
                        if isinstance(value, str)
                        else "".join(value)
                        if isinstance(value, list)
                        else json.dumps(value)
                    )
            text = "".join("".join(p) if isinstance(p, list) else p for p in parts)
            yield index, output, text


MAX_LINE = 88  # characters: what the book's column shows without scrolling


def long_lines(nb: dict):
    """(cell index, 'code' or 'output', length, line) for every line over
    ``MAX_LINE``."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        for line in (
            "".join(source) if isinstance(source, list) else source
        ).splitlines():
            if len(line) > MAX_LINE:
                yield index, "code", len(line), line
        for output in cell.get("outputs", []):
            texts = []
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                texts.append(output.get("text", ""))
            data = output.get("data", {})
            rich = any(
                key in data
                for key in ("text/markdown", "text/html", "image/png", "image/svg+xml")
            )
            if "text/plain" in data and not rich:
                texts.append(data["text/plain"])
            for text in texts:
                for line in (
                    "".join(text) if isinstance(text, list) else text
                ).splitlines():
                    if len(line) > MAX_LINE:
                        yield index, "output", len(line), line


def check_notebook(path: Path, identity_words: list[str] | None = None) -> list[str]:
    """Every problem found in the notebook at ``path``, one line each."""
    problems = []
    identity_words = _identity_words() if identity_words is None else identity_words
    try:
        nb = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{path}: not a readable notebook ({type(exc).__name__})"]
    seen = {key: False for key in PROVENANCE}
    any_output = False
    for index, output, text in output_texts(nb):
        any_output = True
        where = f"{path}: cell {index}"
        if (
            output.get("output_type") == "error"
            or "Traceback (most recent call last)" in text
        ):
            problems.append(
                f"{where}: an error output ({output.get('ename', 'traceback')})"
            )
        match = ABSOLUTE_PATH.search(text)
        if match:
            problems.append(
                f"{where}: an output shows a local path ({match.group(1)}...)"
            )
        for word in identity_words:
            if re.search(rf"\b{re.escape(word)}\b", text):
                problems.append(
                    f"{where}: an output shows the user or host name {word!r}"
                )
        for key, pattern in PROVENANCE.items():
            seen[key] = seen[key] or bool(pattern.search(text))
    if not any_output:
        problems.append(
            f"{path}: no outputs at all; commit it with the outputs of a real run"
        )
    else:
        missing = [key for key, found in seen.items() if not found]
        if missing:
            problems.append(
                f"{path}: no output states the run's {' or '.join(missing)}"
            )
    for index, kind, length, line in long_lines(nb):
        problems.append(
            f"{path}: cell {index}: {'an' if kind == 'output' else 'a'} {kind} line of "
            f"{length} characters (at most {MAX_LINE}): {line[:40]}..."
        )
    if not path.with_suffix(".py").exists():
        problems.append(
            f"{path}: no Jupytext pair ({path.with_suffix('.py').name}) beside it"
        )
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(p for p in Path("book").glob("*.ipynb"))
    problems = [line for path in paths for line in check_notebook(path)]
    for line in problems:
        print(line)
    print(f"checked {len(paths)} notebooks: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
