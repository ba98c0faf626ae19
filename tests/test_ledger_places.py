"""Where the ledger is read from and written to, in a checkout and in an installed
package (Colab): the committed records travel in the wheel, and a reader's own runs
land in a folder of their own, never in whatever folder the kernel happens to be."""

import json

import pytest

import resnotes.ledger as ledger
from test_ledger_security import a_record


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package as a wheel installs it: no checkout, the committed ledger beside it."""
    packaged = tmp_path / "site-packages" / "resnotes" / "results"
    packaged.mkdir(parents=True)
    ledger.write_record(a_record(run_id="1111aaaa2222bbbb"), packaged)
    monkeypatch.setattr(ledger, "checkout_folder", lambda: None)
    monkeypatch.setattr(ledger, "packaged_folder", lambda: packaged)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESNOTES_RESULTS", raising=False)
    return packaged


def test_a_checkout_reads_and_writes_its_results_folder():
    folder = ledger.checkout_folder()
    assert folder is not None and folder.name == "results" and (folder / "README.md").is_file()
    assert ledger.yours_folder() == folder and ledger.ledger_folders() == [(folder, "book")]


def test_an_installed_package_reads_the_ledger_it_carries(installed):
    rows = ledger.load_ledger()
    assert [r["origin"] for r in rows] == ["book"] and rows[0]["run_id"] == "1111aaaa2222bbbb"


def test_a_readers_runs_go_to_their_own_folder_and_are_read_beside_the_books(installed, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNOTES_RESULTS", str(tmp_path / "mine"))
    assert ledger.yours_folder() == tmp_path / "mine"
    ledger.write_record(a_record(run_id="3333cccc4444dddd"), ledger.yours_folder())
    rows = ledger.load_ledger()
    assert sorted(r["origin"] for r in rows) == ["book", "yours"]
    monkeypatch.delenv("RESNOTES_RESULTS")
    assert ledger.yours_folder().resolve() == (tmp_path / "results").resolve()


def test_the_packaged_ledger_is_the_committed_one():
    """pyproject.toml maps results/ into the wheel as resnotes/results."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    assert setuptools["package-dir"]["resnotes.results"] == "results"
    assert "resnotes.results" in setuptools["packages"]
    assert "*.json" in setuptools["package-data"]["resnotes.results"]
    assert json.loads(json.dumps(setuptools["packages"]))  # every subpackage is listed:
    from pkgutil import walk_packages

    import resnotes

    found = {m.name for m in walk_packages(resnotes.__path__, "resnotes.") if m.ispkg}
    assert found <= set(setuptools["packages"]), found - set(setuptools["packages"])
