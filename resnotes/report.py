"""Small pieces for showing results in a chapter: a table that renders as
Markdown in the book and as aligned text in a terminal, and the banner every
chapter prints to say what produced its numbers."""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

from .runtime import hardware_description, pick_device, pick_precision


class Markdown(str):
    """A table cell that is trusted Markdown written by the book's own code (a link, say), shown as markup.

    Every other cell, header and caption is text: ``Table`` escapes it. Only
    ``|`` and line breaks are still escaped in a ``Markdown`` cell, so that it
    stays one cell. Never wrap data (a ledger record, a file) in it."""


class Table:
    """Rows under headers; ``_repr_markdown_`` for the book, ``str`` for plain text.

    The Markdown shows every header, cell and caption as text, whatever it
    holds: HTML, table pipes, line breaks and Markdown/MyST markup are escaped
    (``markdown_text``). Two kinds of cell keep their markup: a ``Markdown``
    cell, and a cell that is one inline code span of plain characters, such as
    ``"`python -m resnotes.train --model x`"``, which renders as code.
    """

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = ""):
        self.headers = [str(h) for h in headers]
        self.rows = [[_fmt(v) for v in row] for row in rows]
        self.caption = caption
        if any(len(r) != len(self.headers) for r in self.rows):
            raise ValueError("every row needs one value per header")

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(map(_markdown_cell, self.headers)) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(map(_markdown_cell, row)) + " |" for row in self.rows]
        if self.caption:
            lines = [f"**{markdown_text(self.caption).strip()}**", ""] + lines
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [max(len(x) for x in col) for col in zip(self.headers, *self.rows)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [line(self.headers), line(["-" * w for w in widths])] + [line(r) for r in self.rows]
        return "\n".join(([self.caption] if self.caption else []) + out)

    __repr__ = __str__


# Characters that start Markdown or MyST markup inside a line: the backslash itself, code spans,
# emphasis, links and images, roles and substitutions ({...}), dollar math, strikethrough and
# headings. A backslash before ASCII punctuation makes it a literal character in CommonMark.
# An underscore between two letters or digits ("preact_resnet20") cannot start or end emphasis,
# so it is left as it is. (Raw HTML, autolinks and entities are handled by HTML-escaping & < >;
# the block syntax that needs the start of a line cannot occur, as every line starts with "| "
# or "**".)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]{}$~#]|(?<![^\W_])_|_(?![^\W_]))")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_CODE_SPAN = re.compile(r"`[^`<>&|\\\r\n]+`")


def markdown_text(value: Any) -> str:
    """``value`` as Markdown that renders as exactly its text on one line.

    HTML-escapes ``& < >``, turns line breaks into spaces and drops other
    control characters, writes ``|`` as ``\\|`` (a GFM table would take it for a
    column break) and puts a backslash before every character that could
    start Markdown or MyST markup."""
    text = _LINE_BREAKS.sub(" ", str(value).replace("\t", " "))
    text = _CONTROL.sub("", text)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return html.escape(text, quote=False).replace("|", "\\|")


def _markdown_cell(value: str) -> str:
    if isinstance(value, Markdown):
        return _LINE_BREAKS.sub(" ", str(value)).replace("\\|", "|").replace("|", "\\|")
    if _CODE_SPAN.fullmatch(value) and value.isprintable():
        return value  # one code span: shown as code, nothing inside it is markup
    return markdown_text(value)


def _fmt(value: Any) -> str:
    if isinstance(value, Markdown):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def banner(profile, data=None) -> str:
    """'Profile ..., hardware ..., dataset ...': the provenance line every result carries."""
    import torch

    device = pick_device()
    parts = [str(profile), f"hardware: {hardware_description(device)}, training in {pick_precision(device)}",
             f"torch {torch.__version__}"]  # fmt: skip
    if data is not None:
        parts.append(f"data: {data.describe()}")
    return "\n".join(parts)


def results_table(runs, extra: dict[str, dict[str, Any]] | None = None) -> Table:
    """One row per training run, with the provenance every result carries as its caption.

    ``runs`` maps a name to a ``History``; ``extra`` adds columns, ``{column: {run name: value}}``.
    The time per epoch is ``History.steady``: the median over the epochs after the
    first, which ignores one-off start-up costs.
    """
    extra = extra or {}
    first = next(iter(runs.values()))
    headers = ["network", "parameters", "best val accuracy", "test accuracy", "time per epoch (median)", *extra]
    rows = [
        [name, h.meta["params"], f"{h.best_val_acc:.2%}", f"{h.test_acc:.2%}", f"{h.steady('seconds'):.1f} s",
         *(extra[col].get(name, "") for col in extra)]
        for name, h in runs.items()
    ]  # fmt: skip
    caption = (
        f"{first.meta['dataset']}, {first.meta['data_source']}; profile {first.config['profile']!r}, "
        f"{first.config['epochs']} epochs, seed {first.config['seed']}; {first.meta['hardware']}, "
        f"{first.meta.get('precision', 'fp32')}"
    )
    return Table(headers, rows, caption=caption)
