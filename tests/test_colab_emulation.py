"""Every chapter as a reader runs it from its Colab badge: from the released wheel,
alone in an empty folder, offline, under the smoke profile (tools/emulate_colab.py).

It fails when the install cell's pin does not resolve, when the wheel lacks a file
a chapter reads, when a chapter reads a file of the checkout, and when chapter 6
does not show the committed ledger."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import emulate_colab  # noqa: E402

from conftest import real_cifar10_available  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("RESNOTES_DATA"), reason="needs RESNOTES_DATA: the emulation is offline")
def test_every_chapter_runs_from_the_wheel_in_an_empty_folder(tmp_path):
    assert real_cifar10_available(), "RESNOTES_DATA holds no CIFAR-10 copy that load_cifar can read"
    notebooks = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    problems = emulate_colab.emulate(notebooks, tmp_path)
    assert problems == [], "\n".join(problems)
