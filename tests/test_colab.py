"""The Colab openings of the chapters agree with the one repository setting.

Fast: these tests read files (and, once, run `jupytext --sync` on copies); they
execute no notebook.
"""

import re
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402


def copy_project(tmp_path: Path) -> Path:
    """The files tools/colab.py reads, copied into tmp_path."""
    for name in ("_config.yml", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book").mkdir()
    for path in (ROOT / "book").iterdir():
        if path.suffix in {".py", ".ipynb", ".md"}:
            shutil.copy(path, tmp_path / "book" / path.name)
    return tmp_path


def move_repository(root: Path, url: str) -> None:
    config = root / "_config.yml"
    text = config.read_text()
    settings = colab.load_settings(root)
    old = f"url: https://github.com/{settings.owner}/{settings.repo}\n"
    assert old in text
    config.write_text(text.replace(old, f"url: {url}\n"))


def test_the_book_agrees_with_the_repository_setting():
    problems = colab.check(ROOT)
    assert problems == [], "\n".join(["run python tools/colab.py --write, then jupytext --sync:", *problems])


def test_the_settings_come_from_config_and_pyproject():
    settings = colab.load_settings(ROOT)
    assert settings.requirement == f"resnotes=={settings.version}"
    assert f'%pip install -q "{settings.requirement}"' in settings.install_cell
    assert "/blob/main/book/01_residual_unit.ipynb" in settings.colab_url("book/01_residual_unit.ipynb")
    for line in settings.install_cell.splitlines():
        assert len(line) + 2 <= colab.MAX_CODE_LINE  # "# " before the magic in the .py


def test_every_chapter_has_the_opening_and_the_runtime():
    for py in colab.chapters(ROOT):
        nb = json.loads(py.with_suffix(".ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert colab.INSTALL_MARK in "".join(code[0]["source"]), py.name
        assert code[0]["outputs"] == [], f"{py.name}: the install cell must print nothing outside Colab"
        wants_gpu = py.stem not in colab.CPU_CHAPTERS
        assert (nb["metadata"].get("accelerator") == "GPU") == wants_gpu, py.name
        assert (nb["metadata"].get("colab", {}).get("gpuType") == "T4") == wants_gpu, py.name


def test_a_moved_repository_is_reported_for_every_badge(tmp_path):
    root = copy_project(tmp_path)
    move_repository(root, "https://github.com/someone/residual-book")
    problems = colab.check(root)
    for py in colab.chapters(root):
        for suffix in (".py", ".ipynb"):
            where = f"book/{py.stem}{suffix}"
            assert any(p.startswith(f"{where}: the title's Colab badge should open") for p in problems), where
    assert colab.main(["--check", "--root", str(root)]) == 1


def test_a_new_version_is_reported(tmp_path):
    root = copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    bumped = re.sub(r'^version = "[^"]+"', 'version = "98.7.6"', text, count=1, flags=re.M)
    assert bumped != text
    pyproject.write_text(bumped)
    problems = colab.check(root)
    for py in colab.chapters(root):
        assert f"book/{py.stem}.py: the install cell should install resnotes==98.7.6" in problems


def test_an_install_of_anything_but_the_release_is_reported(tmp_path):
    root = copy_project(tmp_path)
    readme = root / "README.md"
    extra = "\npip install git+https://github.com/elsewhere/fork@main\npip install resnotes==0.1.0\n"
    readme.write_text(readme.read_text() + extra)
    problems = colab.check(root)
    assert any(p.startswith("README.md: a git install of git+https://github.com/elsewhere/fork@main") for p in problems)
    assert any(p.startswith("README.md: resnotes==0.1.0 pinned") for p in problems)


def test_the_release_pin_at_the_end_of_a_sentence_is_not_reported(tmp_path):
    """The full stop after `pip install resnotes==0.3.0.` is not part of the pin."""
    root = copy_project(tmp_path)
    readme = root / "README.md"
    version = colab.load_settings(root).version
    readme.write_text(readme.read_text() + f"\nThen run pip install resnotes=={version}.\n")
    assert colab.check(root) == []


def test_a_bad_repository_url_is_an_error(tmp_path):
    root = copy_project(tmp_path)
    move_repository(root, "https://gitlab.com/someone/book")
    assert any("repository.url must be https://github.com/OWNER/REPO" in p for p in colab.check(root))


def test_write_then_sync_follows_the_setting_and_keeps_the_outputs(tmp_path):
    jupytext_cli = pytest.importorskip("jupytext.cli")
    root = copy_project(tmp_path)
    move_repository(root, "https://github.com/someone/residual-book")
    before = {p.name: json.loads(p.read_text()) for p in (root / "book").glob("*.ipynb")}
    assert colab.write(root)  # every .py changes
    assert not [p for p in colab.check(root) if ".py:" in p]
    jupytext_cli.jupytext(["--sync", "--quiet", *map(str, sorted((root / "book").glob("*.ipynb")))])
    assert colab.check(root) == []
    assert colab.write(root) == []  # a second write changes nothing
    for name, old in before.items():
        new = json.loads((root / "book" / name).read_text())
        assert [c.get("outputs") for c in new["cells"]] == [c.get("outputs") for c in old["cells"]], name
        assert new["metadata"] == old["metadata"], name
        assert "someone/residual-book" in "".join(new["cells"][0]["source"])
