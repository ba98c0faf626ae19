"""Figures from real runs: learning curves, and accuracy against parameters."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from .train import History


def learning_curves(runs: Mapping[str, History], title: str | None = None, figsize=(11, 3.6)):
    """Train loss, train accuracy and validation accuracy per epoch, one colour per run."""
    fig, axes = plt.subplots(1, 3, figsize=figsize, constrained_layout=True)
    panels = [("train_loss", "training loss"), ("train_acc", "training accuracy"), ("val_acc", "validation accuracy")]
    for (key, label), ax in zip(panels, axes):
        for name, history in runs.items():
            ax.plot(history.column("epoch"), history.column(key), marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if key.endswith("acc"):
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    axes[0].legend()
    if title is None:
        first = next(iter(runs.values()))
        title = f"{first.meta['dataset']} ({first.meta['train_images']:,} training images), profile {first.config['profile']!r}, {first.meta['hardware']}"
    fig.suptitle(title, fontsize=10)
    return fig


def accuracy_vs_params(
    names: Sequence[str],
    params: Sequence[int],
    accuracies: Sequence[float],
    title: str = "",
    ax=None,
):
    """Test accuracy against parameter count (log scale), one labelled point per model."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    ax.scatter(params, accuracies)
    for name, x, y in zip(names, params, accuracies):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return ax
