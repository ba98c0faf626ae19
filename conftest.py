"""Test-wide settings for `pytest` at the project root.

- Every chapter runs under the ``smoke`` profile, and so do the unit tests, with
  the reference solutions (``RESNOTES_SOLUTIONS=1``).
- nbval compares every cell's outputs except stderr (warnings and progress
  bars) and the cells tagged ``nbval-ignore-output``.
"""

import os

os.environ["RESNOTES_PROFILE"] = "smoke"
os.environ.setdefault("RESNOTES_PROGRESS", "0")
# The chapters' reference solutions run (and nbval compares their outputs); in a
# reader's "Run all" they do not (resnotes.run_solutions).
os.environ["RESNOTES_SOLUTIONS"] = "1"


def pytest_collection_modifyitems(items):
    for item in items:
        parent = getattr(item, "parent", None)
        skip = getattr(parent, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            parent.skip_compare = (*skip, "stderr")
