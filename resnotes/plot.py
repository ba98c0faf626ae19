"""Figures from real runs, and the book's figure style.

The book shows a figure in a column about 750 pixels wide. ``use_book_style``
draws figures at most 7.5 inches wide, with text of at least 9 points, and
sends them to the notebook at twice the resolution (``retina``), so that the
displayed text is at least 9 points and sharp.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt

from .history import History

BOOK_WIDTH = (
    7.5  # inches: the widest figure that shows at full size in the book's column
)

BOOK_STYLE = {
    "figure.figsize": (BOOK_WIDTH, 3.4),
    "figure.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 10.5,
}


def use_book_style() -> None:
    """Set the book's figure sizes and text sizes, and double-resolution figures in a
    notebook."""
    plt.rcParams.update(BOOK_STYLE)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except ImportError:  # not in a notebook kernel: nothing to configure
        pass


def learning_curves(
    runs: Mapping[str, History], title: str | None = None, figsize=(BOOK_WIDTH, 3.0)
):
    """Train loss, train accuracy and validation accuracy per epoch, one colour per
    run."""
    fig, axes = plt.subplots(1, 3, figsize=figsize, constrained_layout=True)
    panels = [
        ("train_loss", "training loss"),
        ("train_acc", "training accuracy"),
        ("val_acc", "validation accuracy"),
    ]
    for (key, label), ax in zip(panels, axes):
        for name, history in runs.items():
            ax.plot(
                history.column("epoch"),
                history.column(key),
                marker="o",
                markersize=3,
                label=name,
            )
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if key.endswith("acc"):
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    # One legend for the three panels, below them: inside a panel it covered the
    # end of a curve.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
    if title is None:
        first = next(iter(runs.values()))
        title = (
            f"{first.meta['dataset']}, {first.meta['train_images']:,} training images, "
            f"profile {first.config['profile']!r}\n{first.meta['hardware']}"
        )
    fig.suptitle(title)
    return fig
