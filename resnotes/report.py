"""Small pieces for showing results in a chapter: a table that renders as
Markdown in the book and as aligned text in a terminal, and the banner every
chapter prints to say what produced its numbers."""

from __future__ import annotations

from typing import Any, Sequence

from .runtime import hardware_description, pick_device


class Table:
    """Rows under headers; ``_repr_markdown_`` for the book, ``str`` for plain text."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = ""):
        self.headers = [str(h) for h in headers]
        self.rows = [[_fmt(v) for v in row] for row in rows]
        self.caption = caption
        if any(len(r) != len(self.headers) for r in self.rows):
            raise ValueError("every row needs one value per header")

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.caption:
            lines = [f"**{self.caption}**", ""] + lines
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [max(len(x) for x in col) for col in zip(self.headers, *self.rows)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [line(self.headers), line(["-" * w for w in widths])] + [line(r) for r in self.rows]
        return "\n".join(([self.caption] if self.caption else []) + out)

    __repr__ = __str__


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def banner(profile, data=None) -> str:
    """'Profile ..., hardware ..., dataset ...': the provenance line every result carries."""
    import torch

    device = pick_device()
    parts = [str(profile), f"hardware: {hardware_description(device)}", f"torch {torch.__version__}"]
    if data is not None:
        parts.append(f"data: {data.describe()}")
    return "\n".join(parts)


def results_table(runs, extra: dict[str, dict[str, Any]] | None = None) -> Table:
    """One row per training run, with the provenance every result carries as its caption.

    ``runs`` maps a name to a ``History``; ``extra`` adds columns, ``{column: {run name: value}}``.
    The time per epoch is the median over epochs, which ignores one-off start-up costs.
    """
    import statistics

    extra = extra or {}
    first = next(iter(runs.values()))
    headers = ["network", "parameters", "best val accuracy", "test accuracy", "time per epoch (median)", *extra]
    rows = [
        [name, h.meta["params"], f"{h.best_val_acc:.2%}", f"{h.test_acc:.2%}", f"{statistics.median(h.column('seconds')):.1f} s",
         *(extra[col].get(name, "") for col in extra)]
        for name, h in runs.items()
    ]  # fmt: skip
    caption = (
        f"{first.meta['dataset']}, {first.meta['data_source']}; profile {first.config['profile']!r}, "
        f"{first.config['epochs']} epochs, seed {first.config['seed']}; {first.meta['hardware']}"
    )
    return Table(headers, rows, caption=caption)
