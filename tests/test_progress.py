"""Progress bars: in a notebook and a terminal, never in a log file unless asked."""

import io
import sys

from resnotes import progress


class FakeStream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_bars_follow_the_output_unless_asked(monkeypatch):
    monkeypatch.delenv("RESNOTES_PROGRESS", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=False))
    assert progress.progress_enabled() is False  # redirected to a file: no bars
    items = [1, 2]
    assert progress.progress(items) is items
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=True))
    assert progress.progress_enabled() is True  # a terminal
    monkeypatch.setattr(sys, "stderr", FakeStream(tty=False))
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    assert progress.progress_enabled() is True  # a notebook kernel
    monkeypatch.setenv("RESNOTES_PROGRESS", "0")
    assert progress.progress_enabled() is False
    monkeypatch.delitem(sys.modules, "ipykernel")
    monkeypatch.setenv("RESNOTES_PROGRESS", "1")
    assert progress.progress_enabled() is True  # asked for, even into a file


def test_importing_resnotes_before_torch_makes_openmp_wait_passively():
    """Spinning OpenMP threads halved the pace of two runs sharing 2 cores."""
    import os
    import subprocess

    code = "import resnotes, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a reader's own setting wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
