"""The book as a reader builds it from a checkout: with a virtual environment inside
the checkout (the README's own set-up), strictly, and with pages that need no
network for their mathematics or their badges."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("jupyter_book")


def tracked_copy(tmp_path: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "checkout"
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.mark.slow
def test_the_strict_build_ignores_a_venv_in_the_checkout_and_needs_no_network(tmp_path):
    copy = tracked_copy(tmp_path)
    # What `python -m venv .venv` and a pip install leave: third-party READMEs and
    # notebooks, which Sphinx would otherwise render as pages of the book.
    package = copy / ".venv" / "lib" / "python3.11" / "site-packages" / "somepackage"
    package.mkdir(parents=True)
    (package / "README.md").write_text("# somepackage\n\nzqxinstall the zqxlicense\n")
    shutil.copy2(ROOT / "book" / "intro.md", package / "page.md")
    (copy / "venv" / "share").mkdir(parents=True)
    (copy / "venv" / "share" / "README.md").write_text("# another environment\n")
    done = subprocess.run(
        [shutil.which("jupyter-book") or "jupyter-book", "build", ".", "--warningiserror", "--keep-going"],
        cwd=copy, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = copy / "_build" / "html"
    assert not list(html.rglob("*venv*")), "a page of the virtual environment was built"
    assert "zqxlicense" not in (html / "searchindex.js").read_text()
    pages = sorted(html.rglob("*.html"))
    assert len(pages) >= 8
    remote = re.compile(r'<(?:script|img)[^>]+src="(https?://[^"]+)"')
    for page in pages:
        found = remote.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(html)} loads {found}"
    chapter = (html / "book" / "01_residual_unit.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-chtml.js"' in chapter
    assert 'src="../_static/colab-badge.svg"' in chapter
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html / "_static" / "colab-badge.svg").is_file()
