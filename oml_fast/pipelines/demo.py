"""The quick-start job: digits dataset -> validate untrained -> train -> validate trained -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from oml_fast.pipelines.config import load_config
from oml_fast.pipelines.console import relative
from oml_fast.pipelines.runs import RunResult, train, validate

REPORTED = (("CMC@1", "OVERALL/cmc/1"), ("Precision@5", "OVERALL/precision/5"), ("mAP@5", "OVERALL/map/5"))


@dataclass
class DemoResult:
    untrained: RunResult
    training: RunResult
    trained: RunResult
    dataset_csv: Path
    seconds: float

    def report(self) -> str:
        """A table of the untrained vs trained metrics and where the outputs are."""
        before, after = self.untrained.flat_metrics, self.trained.flat_metrics
        lines = [f"{'metric':<12} {'untrained':>10} {'trained':>10}"]
        for title, key in REPORTED:
            lines.append(
                f"{title:<12} {before.get(key, float('nan')):>10.4f} {after.get(key, float('nan')):>10.4f}"
            )
        pictures = [p for p in (self.untrained.pictures[-1:] + self.trained.pictures[-1:])]
        run = relative(self.training.run_dir)
        lines += [
            "",
            f"dataset:      {relative(self.dataset_csv)} (scikit-learn's digits; train: 0-5, validation: 6-9)",
            f"checkpoint:   {relative(self.training.best_checkpoint)}",
            f"logs:         {run}/csv/metrics.csv, tensorboard --logdir {run}",
            "pictures:     worst queries, untrained and trained:",
            *[f"              {relative(p)}" for p in pictures],
            f"time:         {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def run_demo(
    root: str | Path = "oml_fast_demo", overrides: list[str] | None = None, progress_bar: bool = True
) -> DemoResult:
    """Makes the digits dataset in ``root/data/digits``, validates the untrained small CNN, trains it with
    the shipped ``train_digits.yaml`` (plus ``overrides``), validates the best checkpoint, and returns
    the numbers. Outputs go to ``root/runs/{untrained,train,trained}``.
    """
    from oml_fast.datasets import make_digits_dataset

    start = time.perf_counter()
    root = Path(root)
    csv = make_digits_dataset(root / "data" / "digits")
    base = [
        f"dataset_root={csv.parent}",
        f"logs_root={root / 'runs'}",
        f"progress_bar={str(progress_bar).lower()}",
    ]
    base += list(overrides or [])
    untrained = validate(
        load_config("train_digits", [*base, "logs_folder=untrained", "allow_untrained=true"])
    )
    training = train(load_config("train_digits", [*base, "logs_folder=train"]))
    trained = validate(
        load_config("train_digits", [*base, "logs_folder=trained", f"checkpoint={training.best_checkpoint}"])
    )
    return DemoResult(untrained, training, trained, csv, time.perf_counter() - start)
