"""The ``oml-fast`` command line: the four pipelines (``train``, ``validate``, ``predict``,
``train-postprocessor``), ``demo``, ``make-digits``, ``check-csv``.

Pipelines take a YAML file (or the name of a shipped config, e.g. ``train_digits``) followed by
Hydra overrides (``oml-fast train train_digits max_epochs=3 criterion=arcface``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# Errors that are the user's to fix: printed as one message, no traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    FileNotFoundError,
    ImportError,
    OSError,
    RuntimeError,
)


PIPELINES = (
    ("train", "train an extractor (OML's extractor_training_pipeline)"),
    ("validate", "validate an extractor (OML's extractor_validation_pipeline)"),
    (
        "predict",
        "embed a folder of images, texts or audio to predictions.json (OML's extractor_prediction_pipeline)",
    ),
    ("train-postprocessor", "train a pairwise re-ranker (OML's postprocessor_training_pipeline)"),
)
_EPILOG = """\
pipelines: oml-fast train | validate | predict | train-postprocessor CONFIG [override ...]
  CONFIG: a YAML file or a shipped config (train_digits, validate_digits, predict_digits,
  train_postprocessor_digits); overrides: key=value, group=option, +key=value, ~key.
  Every key, config group and logger: docs/config.md (or oml_fast/pipelines/schema.py).
quick start: oml-fast demo"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("oml-fast")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oml-fast",
        description="Metric learning pipelines of oml_fast (OML's configs and pipelines, compiled ops).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"oml-fast {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in PIPELINES:
        command = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument(
            "config", help="YAML config file, or the name of a shipped config (e.g. train_digits)"
        )
        command.add_argument(
            "overrides", nargs="*", help="Hydra overrides, e.g. max_epochs=5 criterion=arcface"
        )

    demo = sub.add_parser(
        "demo", help="make the digits, train the small CNN, print untrained vs trained metrics"
    )
    demo.add_argument(
        "--root", default="oml_fast_demo", help="folder for data and runs (default: %(default)s)"
    )
    demo.add_argument("overrides", nargs="*", help="key=value overrides of train_digits.yaml")

    digits = sub.add_parser("make-digits", help="write scikit-learn's digits as PNG files + df.csv")
    digits.add_argument("root", nargs="?", default="data/digits", help="output folder (default: %(default)s)")
    digits.add_argument("--train-digits", default="0,1,2,3,4,5", help="digit classes of the train split")
    digits.add_argument("--overwrite", action="store_true", help="rewrite an existing dataset")

    check = sub.add_parser("check-csv", help="report every problem of a dataframe CSV")
    check.add_argument("csv", help="path of the CSV")
    check.add_argument(
        "--dataset-root", default=None, help="folder of relative paths (default: the CSV's folder)"
    )
    check.add_argument("--no-files", action="store_true", help="do not check that image files exist")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from oml_fast.pipelines.demo import run_demo

        result = run_demo(args.root, overrides=args.overrides)
        print("\n" + result.report())
    elif args.command == "make-digits":
        from oml_fast.datasets import make_digits_dataset

        digits = [int(d) for d in args.train_digits.split(",") if d.strip()]
        print(f"wrote {make_digits_dataset(args.root, train_digits=digits, overwrite=args.overwrite)}")
    elif args.command == "check-csv":
        from pathlib import Path

        from oml_fast.datasets import check_retrieval_dataframe_format

        root = args.dataset_root or Path(args.csv).parent
        df = check_retrieval_dataframe_format(args.csv, dataset_root=root, check_files=not args.no_files)
        print(f"{args.csv}: OK ({len(df)} rows)")
    else:  # a pipeline: it prints its own progress and summary (rank 0)
        from oml_fast.pipelines import runs

        pipeline = {
            "train": runs.train,
            "validate": runs.validate,
            "predict": runs.predict,
            "train-postprocessor": runs.train_postprocessor,
        }[args.command]
        pipeline(args.config, args.overrides)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``oml-fast`` console script: user errors print one line and exit with code 2."""
    try:
        return run(argv)
    except _USER_ERRORS as error:
        print(f"oml-fast: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
