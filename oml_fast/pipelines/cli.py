"""The ``oml-fast`` command line: ``demo``, ``make-digits``, ``check-csv``, ``train``, ``validate``, ``predict``.

Config-driven commands take a YAML file (or the name of a shipped config, e.g. ``train_digits``)
followed by ``key=value`` overrides (``oml-fast train train_digits max_epochs=3``).
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oml-fast", description="Metric learning pipelines of oml_fast.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    for name, text in (
        ("train", "train an extractor"),
        ("validate", "validate an extractor (set checkpoint=PATH)"),
        ("predict", "embed a folder of images (set data_dir=..., save_path=...)"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument(
            "config", help="YAML config file, or the name of a shipped config (e.g. train_digits)"
        )
        command.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_epochs=5")
    return parser


def _print_metrics(flat: dict[str, float]) -> None:
    for key, value in sorted(flat.items()):
        print(f"  {key:<28} {value:.4f}")


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
    elif args.command == "train":
        from oml_fast.pipelines.runs import train

        train_result = train(args.config, args.overrides)
        print(
            f"best checkpoint: {train_result.best_checkpoint}\nrun folder: {train_result.run_dir}\n"
            "metrics of the best epoch:"
        )
        _print_metrics(train_result.flat_metrics)
    elif args.command == "validate":
        from oml_fast.pipelines.runs import validate

        validate_result = validate(args.config, args.overrides)
        print(f"run folder: {validate_result.run_dir}\nmetrics:")
        _print_metrics(validate_result.flat_metrics)
    elif args.command == "predict":
        from oml_fast.pipelines.runs import predict

        print(f"embeddings written to {predict(args.config, args.overrides)}")
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
