"""What the pipelines print: a metric table row per validation, a summary at the end, and no
third-party tips or deprecation notes. Printed by rank 0 only.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only

# Messages of Lightning and its dependencies that say nothing about the user's run.
_NOISE = (
    r".*does not have many workers.*",
    r".*LeafSpec.*",
    r".*litlogger.*",
    r".*tensorboardX.*",
    r".*The number of training batches.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*sync_dist=True.*",
    r".*pkg_resources.*",
    r".*is deprecated.*",
    r".*infer the `batch_size`.*",
)


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silences Lightning's start-up notes (devices, tips) and known harmless warnings inside the block."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def relative(path: str | Path | None) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute (both can be pasted)."""
    if path is None:
        return "-"
    absolute = Path(path).resolve()
    try:
        inside = os.path.relpath(absolute, Path.cwd())
    except ValueError:  # another drive
        return str(absolute)
    return str(absolute) if inside.startswith("..") else inside


def _short(name: str) -> str:
    # "OVERALL/cmc/1" -> "cmc@1"; per-category keys keep their category.
    parts = name.split("/")
    if len(parts) == 3:
        category, metric, k = parts
        return f"{metric}@{k}" if category == "OVERALL" else f"{category}:{metric}@{k}"
    return name


class MetricsTable(pl.Callback):
    """Prints one line per validation (epoch, loss, the metrics) under a header printed once.

    Args:
        flat_metrics: ``() -> {"OVERALL/cmc/1": 0.9, ...}`` of the last validation.
        monitor: the metric of checkpointing, marked with ``*`` where it is the best so far.
        mode: ``"max"`` or ``"min"``.
    """

    def __init__(
        self, flat_metrics: Any, monitor: str | None = None, mode: str = "max", max_columns: int = 6
    ):
        self.flat_metrics = flat_metrics
        self.monitor, self.mode, self.max_columns = monitor, mode, max_columns
        self.columns: list[str] = []
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.pending: dict[str, float] | None = None

    def _columns(self, flat: Mapping[str, float]) -> list[str]:
        names = [n for n in flat if n.startswith("OVERALL/")] or list(flat)
        if self.monitor in names:
            names.remove(self.monitor)
            names.insert(0, self.monitor)
        return names[: self.max_columns]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run: "best so far" includes the epochs before the resume.
        callback = trainer.checkpoint_callback
        score = getattr(callback, "best_model_score", None)
        if score is not None and self.best is None:
            self.best = float(score)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The row is printed at the end of the training epoch, when the epoch's loss is known.
        self.pending = None if trainer.sanity_checking else dict(self.flat_metrics())

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        flat, self.pending = self.pending, None
        if not flat:
            return
        if not self.columns:
            self.columns = self._columns(flat)
            header = f"{'epoch':>5} {'loss':>8} " + " ".join(f"{_short(c):>12}" for c in self.columns)
            print("\n" + header + "\n" + "-" * len(header), flush=True)
        loss = trainer.callback_metrics.get("loss_epoch")
        value = flat.get(self.monitor or "")
        mark = ""
        if value is not None and (
            self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        ):
            self.best, self.best_epoch, mark = value, trainer.current_epoch, " *"
        loss_text = f"{float(loss):8.4f}" if loss is not None else f"{'-':>8}"
        cells = " ".join(f"{flat[c]:12.4f}" if c in flat else f"{'-':>12}" for c in self.columns)
        print(f"{trainer.current_epoch:>5} {loss_text} {cells}{mark}", flush=True)


@rank_zero_only
def print_summary(lines: Mapping[str, Any]) -> None:
    """``key: value`` lines, aligned."""
    width = max(len(k) for k in lines) + 1
    print("\n".join(f"{k + ':':<{width}} {v}" for k, v in lines.items()), flush=True)


@rank_zero_only
def print_metrics(flat: Mapping[str, float]) -> None:
    for key, value in flat.items():
        print(f"  {key:<28} {value:.4f}", flush=True)


__all__ = ["MetricsTable", "print_metrics", "print_summary", "quiet_third_party", "relative"]
