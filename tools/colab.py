"""Keep every chapter's Colab opening in step with one setting.

    python tools/colab.py --check   # exit 1 and list every mismatch (the default)
    python tools/colab.py --write   # rewrite book/*.py, then:
    python -m jupytext --sync book/*.ipynb

The single source is ``repository.url`` in ``_config.yml`` (with
``repository.branch`` and ``path_to_book``): the keys Jupyter Book already uses
for the repository button and its own Colab launch button. The package's name
and version come from ``[project]`` in ``pyproject.toml``; the install cell pins
that release, ``pip install resnotes==<version>``, which resolves once the
release is published on the package index (CONTRIBUTING.md's "Releasing").

From these, for every chapter ``book/NN_*.py`` and its notebook, it derives and
checks (``--write`` rewrites the ``.py`` side):

- the *Open in Colab* badge in the title cell, which opens the notebook on the
  branch the book is built from, like the launch button of the same page;
- the install cell, the first code cell, which installs that release in Colab
  (``google.colab`` is importable there) and does nothing, and prints nothing,
  anywhere else;
- the notebook metadata Colab reads to choose the runtime: ``accelerator: GPU``
  and ``colab.gpuType: T4``, except for the chapters in ``CPU_CHAPTERS``, and a
  Jupytext ``notebook_metadata_filter`` that keeps those keys in the py:percent
  header, so that ``jupytext --sync`` round-trips them, and drops the Jupytext
  version from it, so that a new Jupytext release rewrites no header.

``--check`` also reports a missing "Running this chapter" note (written by hand:
it states measured times), any Colab link in ``book/``, ``README.md`` or
``book/intro.md`` that names another repository, and any ``resnotes==`` pin or
``git+https://github.com`` install there that is not the release's.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_LINE = re.compile(
    r"^\[!\[Open in Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\((?P<target>[^)]*)\)$"
)
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'>\]]+")
GIT_INSTALL = re.compile(r"git\+https://github\.com/[^\s)\"'>\]]+")
PIN = re.compile(r"\bresnotes==[0-9][\w.+-]*[\w+]")  # not a full stop after it
INSTALL_MARK = '"google.colab" in sys.modules'
NOTE_MARK = "> **Running this chapter.**"
# Chapters that train nothing: any Colab runtime will do, so they do not ask for a
# GPU (which would spend the reader's GPU quota on a page of tables).
CPU_CHAPTERS = {"07_reproducing"}
GPU_METADATA = {"accelerator": "GPU", "gpuType": "T4"}
# The keys the py:percent header keeps, and the one it drops: the Jupytext
# version, so that a new Jupytext release does not rewrite every header.
METADATA_FILTER_KEYS = (
    "accelerator",
    "colab",
    "-jupytext.text_representation.jupytext_version",
)
MAX_CODE_LINE = 88


@dataclass(frozen=True)
class Settings:
    owner: str
    repo: str
    branch: str
    path_to_book: str
    package: str
    version: str

    @property
    def requirement(self) -> str:
        """What the install cell asks pip for: this release from the package index."""
        return f"{self.package}=={self.version}"

    def colab_url(self, notebook: str) -> str:
        """The Colab address of ``notebook`` (a path relative to the book's root)."""
        path = "/".join(p for p in (self.path_to_book.strip("/"), notebook) if p)
        return f"https://colab.research.google.com/github/{self.owner}/{self.repo}/blob/{self.branch}/{path}"

    def badge(self, notebook: str) -> str:
        return f"[![Open in Colab]({BADGE_IMAGE})]({self.colab_url(notebook)})"

    @property
    def install_cell(self) -> str:
        """The install cell's source, as the notebook holds it (Jupytext comments the
        magic out in the .py)."""
        return (
            "import sys\n"
            "\n"
            f"if {INSTALL_MARK}:\n"
            f'    %pip install -q "{self.requirement}"\n'
            "    pass"
        )


def _project_table(text: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the two keys we need
        table = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        body = table.group(1) if table else ""
        return {
            k: v for k, v in re.findall(r'^(name|version)\s*=\s*"([^"]*)"', body, re.M)
        }
    return tomllib.loads(text).get("project", {})


def load_settings(root: Path = ROOT) -> Settings:
    """The repository, branch, package and version the openings are derived from."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    repository = config.get("repository") or {}
    url = str(repository.get("url", "")).strip()
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise ValueError(
            f"_config.yml: repository.url must be https://github.com/OWNER/REPO, got "
            f"{url!r}"
        )
    project = _project_table((root / "pyproject.toml").read_text())
    if not project.get("name") or not project.get("version"):
        raise ValueError("pyproject.toml: [project] needs a name and a version")
    return Settings(
        owner=match.group(1),
        repo=match.group(2),
        branch=str(repository.get("branch") or "main"),
        path_to_book=str(repository.get("path_to_book") or ""),
        package=project["name"],
        version=project["version"],
    )


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapters' py:percent files, book/NN_*.py."""
    return sorted((root / "book").glob("[0-9][0-9]_*.py"))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _read(path: Path) -> dict:
    """A notebook as a plain dict: the .ipynb as stored, the .py as Jupytext reads
    it."""
    if path.suffix == ".ipynb":
        return json.loads(path.read_text())
    import jupytext

    return json.loads(json.dumps(jupytext.read(path)))


def check_notebook(nb: dict, name: str, where: str, settings: Settings) -> list[str]:
    """Every way the opening of ``nb`` (chapter ``name``) differs from what
    ``settings`` give."""
    problems = []
    cells = nb.get("cells", [])
    notebook = f"book/{name}.ipynb"
    title = (
        _source(cells[0]) if cells and cells[0].get("cell_type") == "markdown" else ""
    )
    badges = [line for line in title.splitlines() if BADGE_LINE.match(line.strip())]
    if badges != [settings.badge(notebook)]:
        found = (
            BADGE_LINE.match(badges[0].strip()).group("target") if badges else "none"
        )
        problems.append(
            f"{where}: the title's Colab badge should open "
            f"{settings.colab_url(notebook)} (found: {found})"
        )
    code = [c for c in cells if c.get("cell_type") == "code"]
    if not code or INSTALL_MARK not in _source(code[0]):
        problems.append(f"{where}: the first code cell is not the install cell")
    else:
        if _source(code[0]) != settings.install_cell:
            problems.append(
                f"{where}: the install cell should install {settings.requirement}"
            )
        if code[0].get("outputs"):
            problems.append(
                f"{where}: the install cell has outputs; it must print nothing outside "
                f"Colab"
            )
        for line in settings.install_cell.splitlines():
            if len(line) + 2 > MAX_CODE_LINE:  # + 2: "# " before the magic in the .py
                problems.append(
                    f"{where}: the install cell's line is over {MAX_CODE_LINE} "
                    f"characters: {line.strip()}"
                )
    if not any(
        _source(c).startswith(NOTE_MARK)
        for c in cells[1:3]
        if c.get("cell_type") == "markdown"
    ):
        problems.append(
            f"{where}: no '{NOTE_MARK}' note (runtime and measured times) after the "
            f"title cell"
        )
    metadata = nb.get("metadata", {})
    colab = metadata.get("colab") or {}
    if name in CPU_CHAPTERS:
        if "accelerator" in metadata or "gpuType" in colab:
            problems.append(
                f"{where}: asks Colab for a GPU, but {name} trains nothing (see "
                f"CPU_CHAPTERS)"
            )
    elif (
        metadata.get("accelerator") != GPU_METADATA["accelerator"]
        or colab.get("gpuType") != GPU_METADATA["gpuType"]
    ):
        problems.append(
            f"{where}: the notebook metadata should ask Colab for a T4 GPU "
            f"(accelerator, colab.gpuType)"
        )
    kept = str(
        (metadata.get("jupytext") or {}).get("notebook_metadata_filter", "")
    ).split(",")
    missing = [key for key in METADATA_FILTER_KEYS if key not in kept]
    if missing:
        problems.append(
            f"{where}: jupytext.notebook_metadata_filter lacks {', '.join(missing)}"
        )
    return problems


def check_links(
    text: str, where: str, settings: Settings, allowed_colab: set[str]
) -> list[str]:
    """Colab links and git installs in ``text`` that name another repository, branch
    or tag."""
    problems = []
    placeholder = re.compile(
        r"github(?:\.com)?/OWNER/REPO\b"
    )  # documentation's stand-in, allowed
    for url in COLAB_LINK.findall(text):
        if placeholder.search(url):
            continue
        if url not in allowed_colab:
            problems.append(
                f"{where}: a Colab link to none of this book's notebooks on "
                f"{settings.branch}: {url}"
            )
    for url in GIT_INSTALL.findall(text):
        if not placeholder.search(url):
            problems.append(
                f"{where}: a git install of {url}, not {settings.requirement}"
            )
    for pin in PIN.findall(text):
        if pin != settings.requirement:
            problems.append(
                f"{where}: {pin} pinned, not the release {settings.requirement}"
            )
    return problems


def check(root: Path = ROOT) -> list[str]:
    """Every mismatch between the repository setting and the chapters, one line each."""
    try:
        settings = load_settings(root)
    except (OSError, ValueError) as exc:
        return [str(exc)]
    problems = []
    init = root / settings.package / "__init__.py"
    if init.exists():
        declared = re.search(r'^__version__\s*=\s*"([^"]*)"', init.read_text(), re.M)
        if declared and declared.group(1) != settings.version:
            where = init.relative_to(root)
            problems.append(
                f"{where}: __version__ {declared.group(1)} is not pyproject's "
                f"{settings.version}"
            )
    paths = chapters(root)
    if not paths:
        problems.append(f"{root / 'book'}: no chapters (NN_*.py)")
    allowed_colab = {settings.colab_url(f"book/{p.stem}.ipynb") for p in paths}
    for py in paths:
        for path in (py, py.with_suffix(".ipynb")):
            where = str(path.relative_to(root))
            if not path.exists():
                problems.append(
                    f"{where}: missing (run python -m jupytext --sync "
                    f"book/{py.stem}.ipynb)"
                )
                continue
            nb = _read(path)
            problems += check_notebook(nb, py.stem, where, settings)
            text = "\n".join(_source(c) for c in nb.get("cells", []))
            problems += check_links(text, where, settings, allowed_colab)
    for extra in (
        root / "README.md",
        root / "CONTRIBUTING.md",
        root / "book" / "intro.md",
    ):
        if extra.exists():
            problems += check_links(
                extra.read_text(), str(extra.relative_to(root)), settings, allowed_colab
            )
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite the opening of every chapter's .py from the settings; return the files
    changed."""
    import jupytext
    import nbformat

    settings = load_settings(root)
    changed = []
    for py in chapters(root):
        nb = jupytext.read(py)
        notebook = f"book/{py.stem}.ipynb"
        # The badge: replace it, or put it under the title's first line.
        title = nb.cells[0]
        lines = title.source.split("\n")
        badge_at = [i for i, line in enumerate(lines) if BADGE_LINE.match(line.strip())]
        if badge_at:
            lines[badge_at[0]] = settings.badge(notebook)
            lines = [line for i, line in enumerate(lines) if i not in badge_at[1:]]
        else:
            lines[1:1] = ["", settings.badge(notebook)]
        title.source = "\n".join(lines)
        # The install cell: replace the first code cell if it is one, or insert one
        # before it.
        first_code = next(
            (i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells)
        )
        if first_code < len(nb.cells) and INSTALL_MARK in nb.cells[first_code].source:
            nb.cells[first_code].source = settings.install_cell
        else:
            nb.cells.insert(
                first_code, nbformat.v4.new_code_cell(settings.install_cell)
            )
        # The runtime Colab opens, and a Jupytext filter that keeps it in the .py
        # header.
        colab = dict(nb.metadata.get("colab") or {})
        if py.stem in CPU_CHAPTERS:
            nb.metadata.pop("accelerator", None)
            colab.pop("gpuType", None)
        else:
            nb.metadata["accelerator"] = GPU_METADATA["accelerator"]
            colab["gpuType"] = GPU_METADATA["gpuType"]
            colab.setdefault("provenance", [])
        if colab:
            nb.metadata["colab"] = colab
        else:
            nb.metadata.pop("colab", None)
        jupytext_meta = nb.metadata.setdefault("jupytext", {})
        kept = [
            k
            for k in str(jupytext_meta.get("notebook_metadata_filter", "")).split(",")
            if k
        ]
        jupytext_meta["notebook_metadata_filter"] = ",".join(
            kept + [k for k in METADATA_FILTER_KEYS if k not in kept]
        )
        text = jupytext.writes(nb, fmt="py:percent")
        if text != py.read_text():
            py.write_text(text)
            changed.append(py)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="list every mismatch and exit 1 if any (the default)",
    )
    mode.add_argument(
        "--write",
        action="store_true",
        help="rewrite the openings of book/*.py from the settings",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.root)
        for path in changed:
            print(f"rewrote {path.relative_to(args.root)}")
        print(
            f"{len(changed)} files rewritten; now run: python -m jupytext --sync "
            f"book/*.ipynb"
        )
        return 0
    problems = check(args.root)
    try:
        settings = load_settings(args.root)
    except (OSError, ValueError):
        settings = None
    for line in problems:
        print(line)
    if settings:
        s = settings
        print(
            f"repository {s.owner}/{s.repo}, badges on {s.branch}, install pinned to "
            f"{s.requirement}"
        )
    print(f"checked {len(chapters(args.root))} chapters: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
