"""OML's ``oml.utils.dataframe_format.check_retrieval_dataframe_format``, on our validator.

The checks are those of :func:`oml_fast.datasets.dataframe.find_dataframe_problems` (every problem is
listed at once, with its rows and CSV lines). OML asserts, so the error raised here is both a
:class:`~oml_fast.datasets.dataframe.DataFrameFormatError` (a ``ValueError``) and an ``AssertionError``:
``except`` clauses written for either keep working.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from oml_fast.const import CATEGORIES_COLUMN, LABELS_COLUMN
from oml_fast.datasets.dataframe import DataFrameFormatError, find_dataframe_problems
from oml_fast.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd


class RetrievalDataFrameFormatError(DataFrameFormatError, InvalidInputError):
    """A dataframe breaks OML's format (a ``ValueError`` and an ``AssertionError``); ``problems`` lists them."""


def check_retrieval_dataframe_format(
    df: Path | str | pd.DataFrame, dataset_root: Path | None = None, sep: str = ",", verbose: bool = True
) -> None:
    """Checks that ``df`` is in OML's retrieval format; returns ``None`` or raises listing every problem.

    Args:
        df: a dataframe, or the path of a CSV file.
        dataset_root: the folder that relative ``path`` values are relative to (``None``: the working
            directory, or absolute paths). Every image must exist.
        sep: the CSV separator (when ``df`` is a path).
        verbose: warn when some label has several categories (OML then picks one per label).

    Raises:
        RetrievalDataFrameFormatError: the problems, one per line.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": [0], "path": ["missing.png"], "split": ["train"],
    ...                    "is_query": [None], "is_gallery": [None]})
    >>> try:
    ...     check_retrieval_dataframe_format(df)
    ... except AssertionError as error:
    ...     print(error.problems[0])
    column 'path': file not found at row 0 (line 2) (first: missing.png)
    """
    import pandas as pd

    source = "dataframe"
    if not isinstance(df, pd.DataFrame):
        source = f"CSV file {df}"
        df = pd.read_csv(df, sep=sep, index_col=None)
    problems = find_dataframe_problems(df, dataset_root=dataset_root, check_files=True)
    if problems:
        raise RetrievalDataFrameFormatError(problems, source)
    if verbose and CATEGORIES_COLUMN in df.columns:
        n_categories = df.groupby(LABELS_COLUMN)[CATEGORIES_COLUMN].nunique()
        several = n_categories[n_categories > 1]
        if len(several):
            warnings.warn(
                f"The mapping from labels to categories is not a function: labels {several.index.tolist()} have "
                "several categories; training and validation use one category per label.",
                stacklevel=2,
            )


__all__ = ["check_retrieval_dataframe_format", "RetrievalDataFrameFormatError"]
