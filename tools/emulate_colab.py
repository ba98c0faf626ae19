"""Run every chapter as a reader does from its Colab badge, offline, on this machine.

    python tools/emulate_colab.py [--work DIR] [--keep]
    [book/01_residual_unit.ipynb ...]

What differs between "my checkout" and "Colab", emulated one by one:

- **The package comes from a release, not the checkout.** The wheel is built
  from the checkout into a local wheelhouse, and the kernel runs in a fresh
  virtual environment where ``resnotes`` is not installed: the chapter's own
  install cell must install it, with ``pip`` pointed at the wheelhouse
  (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``), so the pin must resolve. torch and
  the other dependencies are taken from this Python's site-packages, as Colab
  has them preinstalled. What this cannot show: the wheel is built from the
  checkout, whose version the pin is generated from, so the pin always finds it
  here. Whether that version is on the package index, and is this checkout, only
  a release can tell (CONTRIBUTING.md, "Releasing").
- **Colab is detected as Colab.** A stand-in ``google.colab`` module is imported
  at start-up, as Colab imports its own.
- **The notebook is alone in an empty folder**, as ``/content`` is: a chapter
  that reads a file of the checkout fails.
- **No network, and none of this machine's settings.** The kernel gets a minimal
  environment (no ``RESNOTES_DATA``, no ``RESNOTES_RESULTS``, no virtual
  environment of ours). Where Colab's first chapter would download CIFAR-10
  into ``./data``, the offline copy named by ``RESNOTES_DATA`` is linked there,
  so the chapter finds it where a download would have put it. One departure,
  for speed: every chapter shares one decoded-image cache.

Every chapter then runs under the ``smoke`` profile; any error fails. Chapter 6
must show the committed ledger (from the wheel), and every chapter must have
imported ``resnotes`` from the virtual environment. Exit status 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = '"""A stand-in for Colab\'s own module (tools/emulate_colab.py)."""\n'
CHECK_CELL = "import resnotes\nprint('resnotes from', resnotes.__file__)\n"


def source_copy(target: Path) -> Path:
    """The checkout's files that git would commit (tracked, or new and not ignored)
    copied into ``target``. A wheel built in the checkout itself reuses its
    ``build/`` folder, which keeps files deleted since: an old ledger record would
    travel in the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def build_wheel(wheelhouse: Path) -> Path:
    """The release's wheel, built from a clean copy of the checkout, and beside it
    what else Colab would fetch from the package index to install it (a recent
    setuptools, which torch asks for and which this machine's Python may lack)."""
    pip = [sys.executable, "-m", "pip"]
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    source = source_copy(wheelhouse.parent / "source")
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(wheelhouse), str(source)],
        **quiet,
    )
    setuptools = "setuptools>=77.0.3"
    subprocess.run(
        [*pip, "download", "--no-deps", "-q", "-d", str(wheelhouse), setuptools],
        **quiet,
    )
    (wheel,) = wheelhouse.glob("resnotes-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {
            Path(n).name
            for n in archive.namelist()
            if n.startswith("resnotes/results/")
        }
    committed = {p.name for p in (ROOT / "results").glob("*.json")}
    if packaged - {"README.md"} != committed:
        raise SystemExit(
            f"the wheel's ledger differs from results/: "
            f"{sorted(packaged - committed - {'README.md'})[:3]} extra, "
            f"{sorted(committed - packaged)[:3]} missing"
        )
    return wheel


def preinstalled(shadow: Path) -> list[Path]:
    """This Python's packages, as Colab has its own preinstalled: a folder of links to
    everything in site-packages but resnotes itself (a checkout's editable install
    would make pip believe the release is installed already)."""
    shadow.mkdir(parents=True)
    for folder in (Path(p) for p in site.getsitepackages() if Path(p).is_dir()):
        for entry in folder.iterdir():
            name = entry.name.lower()
            if (
                name.startswith(("resnotes", "__editable__"))
                or (shadow / entry.name).exists()
            ):
                continue
            (shadow / entry.name).symlink_to(entry)
    return [shadow]


def make_venv(venv: Path) -> Path:
    """A virtual environment without resnotes, which sees this Python's other
    packages through a .pth path (whose own .pth files do not run)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    found = subprocess.run(
        [str(python), "-c", where], check=True, capture_output=True, text=True
    )
    venv_site = Path(found.stdout.strip())
    system = preinstalled(venv.parent / "preinstalled")
    (venv_site / "preinstalled.pth").write_text("\n".join(map(str, system)) + "\n")
    colab = venv_site / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text(STAND_IN)
    (venv_site / "colab_runtime.pth").write_text("import google.colab\n")
    found = subprocess.run(
        [str(python), "-c", "import resnotes"], capture_output=True, cwd=venv
    )
    if found.returncode == 0:
        raise SystemExit(
            "resnotes is importable in the fresh environment: the emulation would lie"
        )
    return python


def kernel_spec(jupyter_path: Path, python: Path) -> str:
    spec = jupyter_path / "kernels" / "colab-emulation"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps(
            {"argv": argv, "display_name": "Colab emulation", "language": "python"}
        )
    )
    return "colab-emulation"


def run_chapter(notebook: Path, work: Path, kernel: str, env: dict, data: Path) -> dict:
    """Execute ``notebook`` alone in an empty folder, with ``data`` linked as its
    ``./data``; what it showed."""
    import nbformat
    from nbclient import NotebookClient

    folder = work / "content" / notebook.stem
    folder.mkdir(parents=True)
    copy = folder / notebook.name
    shutil.copy(notebook, copy)
    (folder / "data").symlink_to(data, target_is_directory=True)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    start = time.monotonic()
    try:
        NotebookClient(
            nb,
            kernel_name=kernel,
            timeout=900,
            resources={"metadata": {"path": str(folder)}},
        ).execute(env=env)  # the kernel's whole environment
    finally:
        (work / "executed").mkdir(exist_ok=True)
        nbformat.write(nb, work / "executed" / notebook.name)
    text = "\n".join(
        "".join(out.get("text", ""))
        + "".join(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    others = [p.name for p in folder.iterdir() if p.name not in (notebook.name, "data")]
    return {
        "seconds": round(time.monotonic() - start, 1),
        "text": text,
        "files": others,
    }


def emulate(notebooks: list[Path], work: Path) -> list[str]:
    """Run ``notebooks`` Colab-style; the problems found (an empty list: all good)."""
    wheelhouse = work / "wheelhouse"
    wheel = build_wheel(wheelhouse)
    python = make_venv(work / "venv")
    kernel = kernel_spec(work / "jupyter", python)
    data = os.environ.get("RESNOTES_DATA")
    if not data:
        raise SystemExit(
            "set RESNOTES_DATA to an offline CIFAR-10 copy: the emulation has no "
            "network"
        )
    # The kernel's whole environment: what a shell needs, and what Colab would set.
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in kept if k in os.environ}
    env.update(
        {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "RESNOTES_PROFILE": "smoke",
            "RESNOTES_PROGRESS": "0",
            "RESNOTES_CACHE_DIR": str(work / "cache"),
        }
    )
    committed = len(list((ROOT / "results").glob("*.json")))
    print(
        f"wheel {wheel.name}; environment {work / 'venv'}; {committed} committed "
        f"records"
    )
    problems = []
    for notebook in notebooks:
        try:
            # JUPYTER_PATH: where this process (nbclient) finds the kernel's spec
            with mock.patch.dict(os.environ, {"JUPYTER_PATH": str(work / "jupyter")}):
                seen = run_chapter(notebook, work, kernel, env, Path(data))
        except Exception as exc:  # noqa: BLE001 - report every chapter
            problems.append(
                f"{notebook.name}: {type(exc).__name__}: {str(exc)[-1500:]}"
            )
            print(f"{notebook.name}: FAILED")
            continue
        where = [
            line
            for line in seen["text"].splitlines()
            if line.startswith("resnotes from")
        ]
        if not where or str(work / "venv") not in where[-1]:
            problems.append(
                f"{notebook.name}: resnotes was not imported from the installed wheel: "
                f"{where}"
            )
        if (
            notebook.stem.startswith("06")
            and f"results ledger: {committed} records" not in seen["text"]
        ):
            problems.append(
                f"{notebook.name}: the committed ledger ({committed} records) was not "
                f"shown"
            )
        print(
            f"{notebook.name}: ran in {seen['seconds']} s; files left beside it: "
            f"{seen['files']}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="a folder for the run (default: temporary)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    work = args.work or Path(tempfile.mkdtemp(prefix="colab-emulation-"))
    try:
        problems = emulate([n.resolve() for n in notebooks], work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for line in problems:
        print(line)
    print(f"Colab emulation: {len(notebooks)} chapters, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
