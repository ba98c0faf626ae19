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


def seed_evidence(evidence, title: str | None = None):
    """A chapter's comparisons over seeds, one row of two panels each: the two
    networks' test accuracy in every seed, joined by seed; and the paired
    difference of each seed with its McNemar interval, then their mean with the
    t interval over seeds.

    ``evidence`` is what ``replicates.chapter_evidence`` returns."""
    rows = [e for e in evidence if e[2] is not None]
    if not rows:
        raise ValueError(
            "no comparison has runs of both networks on a shared seed in the ledger: "
            "train them with python -m resnotes.replicates"
        )
    fig, axes = plt.subplots(
        len(rows),
        2,
        figsize=(BOOK_WIDTH, 2.9 * len(rows) + 0.5),
        constrained_layout=True,
        squeeze=False,
    )
    some = None
    for (first, second, result, runs_a, runs_b), (left, right) in zip(rows, axes):
        for seed in result.seeds:
            pair = [100 * runs_a[seed]["test_acc"], 100 * runs_b[seed]["test_acc"]]
            left.plot([0, 1], pair, marker="o", color="tab:grey", lw=1)
            left.annotate(
                f"seed {seed}", (1, pair[1]), xytext=(6, 0), textcoords="offset points",
                va="center", fontsize=8,
            )  # fmt: skip
            some = runs_a[seed]
        left.set_xticks([0, 1], [first, second], fontsize=8)
        left.set_xlim(-0.3, 1.45)
        left.set_ylabel("test accuracy (%)")
        left.grid(alpha=0.3)
        for index, r in enumerate(result.per_seed):
            d = 100 * r.difference
            err = [[d - 100 * r.low], [100 * r.high - d]]
            right.errorbar(index, d, yerr=err, fmt="o", color="tab:blue", capsize=3)
        k = len(result.seeds)
        labels = [f"seed {s}" for s in result.seeds]
        if k >= 2:
            mean = 100 * result.mean
            err = [[mean - 100 * result.low], [100 * result.high - mean]]
            right.errorbar(k + 0.4, mean, yerr=err, fmt="s", color="black", capsize=4)
            labels.append("mean (t)")
        ticks = list(range(k)) + ([k + 0.4] if k >= 2 else [])
        right.set_xticks(ticks, labels, fontsize=8)
        right.axhline(0, color="black", lw=0.8)
        right.set_ylabel(f"{first}\nminus {second} (points)", fontsize=8)
        right.grid(alpha=0.3)
    if title is None:
        title = (
            f"{some['dataset']}, {some['test_images']:,} test images, profile "
            f"{some['profile']!r}, {some['hardware']['device']}\n"
            "left: each seed's runs; right: paired differences (McNemar intervals) "
            "and their mean (t interval)"
        )
    fig.suptitle(title, fontsize=9)
    return fig
