"""Progress bars that work in a terminal, in JupyterLab, in Colab and in CI logs.

``tqdm.auto`` picks a widget in a notebook and a text bar elsewhere; nothing
here queries the terminal size. Set ``RESNOTES_PROGRESS=0`` to turn the bars
off (the per-epoch summary lines are printed regardless).
"""

from __future__ import annotations

import os
import warnings
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("RESNOTES_PROGRESS", "1").lower() not in {
        "0",
        "false",
        "no",
        "off",
    }


def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    leave: bool = False,
    **kwargs,
) -> Iterable[T]:
    """Wrap ``iterable`` in a ``tqdm.auto`` bar (or return it as it is when bars are
    off)."""
    if not progress_enabled():
        return iterable
    with warnings.catch_warnings():
        # Without ipywidgets, tqdm.auto falls back to a text bar and warns; the bar
        # still works.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=leave, **kwargs)
