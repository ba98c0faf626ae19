"""A Sphinx extension for the book's build: the built pages show the "Open in
Colab" badge from a copy in ``_static`` instead of Colab's server, so that a
reader of the pages offline, or behind a firewall, sees no broken image.

The notebooks keep the server's address (JupyterLab, Colab and GitHub show it);
only the built HTML changes, after the build, by replacing that one address.
"""

from __future__ import annotations

import os
from pathlib import Path

REMOTE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL = "_static/colab-badge.svg"


def use_local_badge(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if REMOTE in text:
            relative = os.path.relpath(out / LOCAL, page.parent).replace(os.sep, "/")
            page.write_text(text.replace(REMOTE, relative), encoding="utf-8")


def setup(app):
    app.connect("build-finished", use_local_badge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
