"""What a run did, epoch by epoch, and where it ran: ``History``, which serialises
to JSON and gives the book's one definition of a run's speed."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """A training run: where and how it ran (``meta``, ``config``), one record per
    epoch, the epoch with the best validation accuracy, and the test accuracy of
    that epoch's weights."""

    meta: dict[str, Any]
    config: dict[str, Any]
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    test_acc: float | None = None  # of the model with the best validation accuracy
    # which test images that model got right, in test-set order: a hex string of
    # packed bits (evidence.pack_correct), for paired comparisons (evidence.mcnemar)
    test_correct: str | None = None
    seconds: float = 0.0

    def column(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def add(self, record: dict[str, float]) -> bool:
        """Append an epoch's record; True when its validation accuracy is the best so
        far."""
        self.epochs.append(record)
        if self.best_val_acc is None or record["val_acc"] > self.best_val_acc:
            self.best_val_acc, self.best_epoch = record["val_acc"], record["epoch"]
            return True
        return False

    def epoch_line(self, epochs: int) -> str:
        """The last epoch in one line; the time left assumes that the remaining
        epochs take as long as the ones so far."""
        r = self.epochs[-1]
        left = (epochs - r["epoch"]) * self.seconds / len(self.epochs)
        minutes, seconds = divmod(round(left), 60)
        remaining = f"  {minutes}:{seconds:02d} left" if round(left) >= 1 else ""
        return (
            f"epoch {r['epoch']}/{epochs}  loss {r['train_loss']:.3f}  "
            f"train {r['train_acc']:.1%}  val {r['val_acc']:.1%}  "
            f"{r['seconds']:.1f} s  {r['images_per_s']:,.0f} img/s{remaining}"
        )

    def steady(self, key: str) -> float:
        """The median of ``key`` over the epochs after the first (the first pays for
        compilation and autotuning); the first epoch's value when it is the only one.
        This is the book's one definition of seconds per epoch and images/s."""
        values = self.column(key)
        return float(statistics.median(values[1:] or values))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from .files import atomic_write_text

            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> History:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls(**json.loads(text))

    def summary(self) -> str:
        m = self.meta
        return (
            f"{m['model']} ({m['params']:,} params) on {m['dataset']}, "
            f"profile {self.config['profile']!r}, {len(self.epochs)} epochs, "
            f"seed {self.config['seed']}, {m['hardware']}, "
            f"{m.get('precision', 'fp32')}: "
            f"best val {self.best_val_acc:.2%} (epoch {self.best_epoch}), "
            f"test {self.test_acc:.2%}, {self.seconds:.0f} s"
        )
