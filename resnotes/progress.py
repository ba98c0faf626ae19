"""Progress bars that work in a terminal, in JupyterLab, in Colab and in CI logs.

``tqdm.auto`` picks a widget in a notebook and a text bar elsewhere; nothing
here queries the terminal size. With output redirected to a file or a pipe
there are no bars (``RESNOTES_PROGRESS=1`` asks for them anyway); set
``RESNOTES_PROGRESS=0`` to turn them off everywhere. The per-epoch summary lines
are printed regardless.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Iterable, TypeVar

T = TypeVar("T")


def _interactive() -> bool:
    """A notebook kernel, or a terminal on stderr (where tqdm writes)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def progress_enabled() -> bool:
    """Bars in a notebook and in a terminal; none when the output goes to a file or
    a pipe (a log would fill with them), unless ``RESNOTES_PROGRESS=1`` asks for
    them; never with ``RESNOTES_PROGRESS=0``."""
    value = os.environ.get("RESNOTES_PROGRESS", "").strip().lower()
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    return _interactive()


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
