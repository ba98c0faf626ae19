"""Small pieces for showing results in a chapter: a table that renders as
Markdown in the book and as aligned text in a terminal, and the banner every
chapter prints to say what produced its numbers."""

from __future__ import annotations

import html
import math
import re
import textwrap
import time
from typing import Any, Sequence

from .runtime import hardware_description, pick_device, pick_precision


class Markdown(str):
    """A table cell that is trusted Markdown written by the book's own code (a link,
    say), shown as markup.

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

    def __init__(
        self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = ""
    ):
        self.headers = [str(h) for h in headers]
        self.rows = [[_fmt(v) for v in row] for row in rows]
        self.caption = caption
        if any(len(r) != len(self.headers) for r in self.rows):
            raise ValueError("every row needs one value per header")

    def _repr_markdown_(self) -> str:
        lines = [
            "| " + " | ".join(map(_markdown_cell, self.headers)) + " |",
            "|" + "---|" * len(self.headers),
        ]
        lines += [
            "| " + " | ".join(map(_markdown_cell, row)) + " |" for row in self.rows
        ]
        if self.caption:
            lines = [f"**{markdown_text(self.caption).strip()}**", ""] + lines
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [max(len(x) for x in col) for col in zip(self.headers, *self.rows)]
        line = lambda cells: "  ".join(
            c.ljust(w) for c, w in zip(cells, widths)
        ).rstrip()  # noqa: E731
        out = [line(self.headers), line(["-" * w for w in widths])] + [
            line(r) for r in self.rows
        ]
        return "\n".join(([self.caption] if self.caption else []) + out)

    __repr__ = __str__


# Characters that start Markdown or MyST markup inside a line: the backslash itself,
# code spans,
# emphasis, links and images, roles and substitutions ({...}), dollar math,
# strikethrough and
# headings. A backslash before ASCII punctuation makes it a literal character in
# CommonMark.
# An underscore between two letters or digits ("preact_resnet20") cannot start or end
# emphasis,
# so it is left as it is. (Raw HTML, autolinks and entities are handled by HTML-escaping
# & < >;
# the block syntax that needs the start of a line cannot occur, as every line starts
# with "| "
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


LINE_WIDTH = 88  # characters: the book's column


def wrap(text: str, width: int = LINE_WIDTH) -> str:
    """``text`` with every line longer than ``width`` broken at spaces; a continuation
    is indented 4 more spaces than its line, so that a log stays readable."""
    lines = []
    for line in str(text).splitlines() or [""]:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        lines.append(
            textwrap.fill(
                line,
                width,
                subsequent_indent=indent + "    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            if len(line) > width
            else line
        )
    return "\n".join(lines)


def banner(profile, data=None) -> str:
    """'Profile ..., hardware ..., dataset ...': the provenance line every result
    carries."""
    import torch

    device = pick_device()
    parts = [
        str(profile),
        f"hardware: {hardware_description(device)}, training in "
        f"{pick_precision(device)}",
        f"torch {torch.__version__}"
        + (
            " (a CUDA build; this machine runs it on the CPU)"
            if device.type == "cpu" and torch.version.cuda
            else ""
        ),
    ]
    if data is not None:
        parts.append(f"data: {data.describe()}")
    return wrap("\n".join(parts))


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval (``z`` = 1.96) of an accuracy measured on ``n``
    images.

    It is the test set's sampling error alone: it says how far the accuracy of
    the *same* trained network could move on another ``n`` images from the same
    distribution, not how far another seed would land."""
    if n <= 0:
        raise ValueError(f"an interval needs at least one test image, got n={n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy}")
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = (
        z
        / (1 + z * z / n)
        * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_with_interval(accuracy: float, n: int | None) -> str:
    """'57.1% (54.0–60.1)': a test accuracy on ``n`` images and its 95% Wilson
    interval."""
    if n is None:
        return f"{accuracy:.1%} (test images not recorded)"
    low, high = wilson_interval(accuracy, n)
    return f"{accuracy:.1%} ({100 * low:.1f}–{100 * high:.1f})"


def results_table(runs, extra: dict[str, dict[str, Any]] | None = None) -> Table:
    """One row per training run, with the provenance every result carries as its
    caption.

    ``runs`` maps a name to a ``History``; ``extra`` adds columns, ``{column: {run
    name: value}}``.
    The test accuracy comes with its 95% Wilson interval (``wilson_interval``).
    The time per epoch is ``History.steady``: the median over the epochs after the
    first, which ignores one-off start-up costs.
    """
    extra = extra or {}
    first = next(iter(runs.values()))
    headers = [
        "network",
        "parameters",
        "best val accuracy",
        "test accuracy (95% interval)",
        "time per epoch (median)",
        *extra,
    ]
    rows = [
        [
            name,
            h.meta["params"],
            f"{h.best_val_acc:.1%}",
            accuracy_with_interval(h.test_acc, h.meta["test_images"]),
            f"{h.steady('seconds'):.1f} s",
            *(extra[col].get(name, "") for col in extra),
        ]
        for name, h in runs.items()
    ]
    caption = (
        f"{first.meta['dataset']}, {first.meta['data_source']}; "
        f"{first.meta['test_images']:,} test images; "
        f"profile {first.config['profile']!r}, {first.config['epochs']} epochs, seed "
        f"{first.config['seed']}; "
        f"{first.meta['hardware']}, {first.meta.get('precision', 'fp32')}"
    )
    return Table(headers, rows, caption=caption)


def paper_table(
    names: Sequence[str],
    columns: dict[str, Any] | None = None,
    flops: bool = True,
    caption: str = "",
) -> Table:
    """Our parameter count beside the paper's figures, one row per registered model.

    The paper's figures come from each registry entry's ``paper`` field, the one
    place they are written. With ``flops``, a column gives our forward FLOPs for
    one 32×32 image (a multiply-add counts as 2). ``columns`` adds columns:
    ``{header: function(name) -> value}``."""
    from .models import count_flops, count_parameters, create_model, get_spec

    columns = columns or {}
    headers = [
        "paper's row",
        "our params",
        "paper's params",
        "gap",
        *(["GFLOPs"] if flops else []),
        "C10 error (%)",
        "C100 error (%)",
        *columns,
    ]
    rows = []
    for name in names:
        figures = get_spec(name).paper
        model = create_model(name)
        ours = count_parameters(model)
        cost = [f"{count_flops(model) / 1e9:.2f}"] if flops else []
        paper_params = figures.params if figures else None
        gap = f"{ours / paper_params - 1:+.1%}" if paper_params else ""
        rows.append(
            [
                figures.label if figures else name,
                f"{ours / 1e6:.2f}M",
                f"{paper_params / 1e6:.1f}M" if paper_params else "",
                gap,
                *cost,
                _error(figures.cifar10_error if figures else None),
                _error(figures.cifar100_error if figures else None),
                *(column(name) for column in columns.values()),
            ]
        )
    sources = sorted(
        {get_spec(name).paper.source for name in names if get_spec(name).paper}
    )
    return Table(
        headers, rows, caption=caption or "The paper's figures: " + "; ".join(sources)
    )


def _error(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


class Stopwatch:
    """The wall-clock time of a whole chapter, started by ``resnotes.start_chapter``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __str__(self) -> str:
        minutes, seconds = divmod(round(time.perf_counter() - self.start), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
