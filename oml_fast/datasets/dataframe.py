"""OML's dataframe (CSV) format for retrieval datasets, and a validator that reports every problem.

Columns (one row per item: an image, an audio file or a text):

============== ======== =====================================================================
column         required meaning
============== ======== =====================================================================
``label``      yes      integer class / identity id
``path``       yes [*]_ image or audio path, absolute or relative to ``dataset_root``
``text``       yes [*]_ the text of the item (texts); never empty
``split``      yes      ``train`` or ``validation``
``is_query``   yes      bool for validation rows, empty for train rows
``is_gallery`` yes      bool for validation rows, empty for train rows
``category``   no       any hashable value; metrics are also reported per category
``sequence``   no       group id; gallery items of the query's sequence are excluded
``x_1`` ...    no       bounding box ``x_1, y_1, x_2, y_2`` in pixels (all four columns or
                        none); a row may leave all four empty to use the whole image
``start_time`` no       audio: where the item starts in its file, seconds >= 0 (empty: 0)
============== ======== =====================================================================

.. [*] one of ``path`` and ``text``.

Rows are reported by their 0-based position in the dataframe and by the CSV line they come
from (line 1 is the header), so that a user can jump straight to them in an editor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..const import (  # noqa: F401  (the column names are part of this module's API)
    BBOX_COLUMNS,
    CATEGORIES_COLUMN,
    IS_GALLERY_COLUMN,
    IS_QUERY_COLUMN,
    LABELS_COLUMN,
    OBLIGATORY_COLUMNS,
    OPTIONAL_COLUMNS,
    PATHS_COLUMN,
    REQUIRED_COLUMNS,
    SEQUENCE_COLUMN,
    SPLIT_COLUMN,
    START_TIME_COLUMN,
    TEXTS_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    X1_COLUMN,
    X2_COLUMN,
    Y1_COLUMN,
    Y2_COLUMN,
)

_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}
# How many offending rows one problem line lists before it says "and N more".
_MAX_ROWS_LISTED = 10


class DataFrameFormatError(ValueError):
    """A dataframe breaks the format; ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: list[str], source: str = "dataframe"):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{listing}")


def _rows(positions: Iterable[int | np.integer]) -> str:
    positions = list(positions)
    shown = ", ".join(f"{i} (line {i + 2})" for i in positions[:_MAX_ROWS_LISTED])
    more = f" and {len(positions) - _MAX_ROWS_LISTED} more" if len(positions) > _MAX_ROWS_LISTED else ""
    return f"row{'s' if len(positions) > 1 else ''} {shown}{more}"


def _is_empty(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def parse_bool(value: object) -> bool | None:
    """``True``/``False`` for bool-like values (bools, 0/1, "true"/"false"), ``None`` otherwise.

    >>> parse_bool("True"), parse_bool(0), parse_bool(1.0), parse_bool("maybe")
    (True, False, True, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer, float, np.floating)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _as_int(value: object) -> int | None:
    """The integer value of ``value`` if it is integral (``3``, ``3.0``, ``"3"``), else ``None``.

    Integers and integer strings are read exactly (not through a float, which rounds above 2**53).
    """
    if isinstance(value, (bool, np.bool_)) or _is_empty(value):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(as_float) if np.isfinite(as_float) and as_float == int(as_float) else None


def _fits_int64(value: int | None) -> bool:
    return value is None or -(2**63) <= value < 2**63


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except Exception:
        return None


def find_dataframe_problems(
    df: pd.DataFrame, dataset_root: str | Path | None = None, check_files: bool = True
) -> list[str]:
    """Every format problem of ``df``, one human-readable line each (empty list: the dataframe is fine).

    Checks: required columns; integer labels; split values; ``is_query`` / ``is_gallery`` empty on
    train rows and bool on validation rows; every query label present among gallery items;
    bounding boxes (all four columns or none, each row all four values or none, integers,
    ``0 <= x_1 < x_2``, ``0 <= y_1 < y_2``, inside the image); with ``check_files``, that every
    ``path`` exists (relative paths are joined to ``dataset_root``).

    >>> df = pd.DataFrame({"label": [0, 1.5], "path": ["a.png", "b.png"], "split": ["train", "test"],
    ...                    "is_query": [None, True], "is_gallery": [None, True]})
    >>> for problem in find_dataframe_problems(df, check_files=False):
    ...     print(problem)
    column 'label': not an integer at row 1 (line 3)
    column 'split': value not in ['train', 'validation'] at row 1 (line 3)
    """
    problems: list[str] = []
    missing = [c for c in OBLIGATORY_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"missing required column(s) {missing}; the columns found are {list(df.columns)}")
    if PATHS_COLUMN not in df.columns and TEXTS_COLUMN not in df.columns:
        problems.append(
            f"missing column '{PATHS_COLUMN}' (images, audio) or '{TEXTS_COLUMN}' (texts); "
            f"the columns found are {list(df.columns)}"
        )
    if len(df) == 0:
        problems.append("the dataframe has no rows")
        return problems
    df = df.reset_index(drop=True)

    if LABELS_COLUMN in df.columns:
        labels = [_as_int(v) for v in df[LABELS_COLUMN]]
        bad = [i for i, v in enumerate(labels) if v is None]
        if bad:
            problems.append(f"column 'label': not an integer at {_rows(bad)}")
        too_large = [i for i, v in enumerate(labels) if not _fits_int64(v)]
        if too_large:
            problems.append(f"column 'label': outside the int64 range [-2**63, 2**63) at {_rows(too_large)}")

    is_train = np.zeros(len(df), dtype=bool)
    is_valid = np.zeros(len(df), dtype=bool)
    if SPLIT_COLUMN in df.columns:
        splits = df[SPLIT_COLUMN].astype(str).str.strip()
        is_train, is_valid = (splits == TRAIN_SPLIT).to_numpy(), (splits == VALIDATION_SPLIT).to_numpy()
        bad_split = np.flatnonzero(~is_train & ~is_valid)
        if len(bad_split):
            problems.append(
                f"column 'split': value not in {[TRAIN_SPLIT, VALIDATION_SPLIT]} at {_rows(bad_split)}"
            )

    flags: dict[str, list[bool | None]] = {}
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        if column not in df.columns:
            continue
        values = df[column].tolist()
        flags[column] = [parse_bool(v) for v in values]
        set_on_train = [i for i in np.flatnonzero(is_train) if not _is_empty(values[i])]
        if set_on_train:
            problems.append(
                f"column '{column}': must be empty for train rows, but is set at {_rows(set_on_train)}"
            )
        not_bool = [i for i in np.flatnonzero(is_valid) if flags[column][i] is None]
        if not_bool:
            problems.append(f"column '{column}': not a bool (True/False/1/0) at {_rows(not_bool)}")

    if len(flags) == 2 and LABELS_COLUMN in df.columns:
        labels = [_as_int(v) for v in df[LABELS_COLUMN]]
        valid_rows = np.flatnonzero(is_valid)
        gallery_labels = {labels[i] for i in valid_rows if flags[IS_GALLERY_COLUMN][i]}
        orphan = [i for i in valid_rows if flags[IS_QUERY_COLUMN][i] and labels[i] not in gallery_labels]
        if orphan:
            problems.append(f"query label(s) absent from the gallery at {_rows(orphan)}")
        if len(valid_rows) and not any(flags[IS_QUERY_COLUMN][i] for i in valid_rows):
            problems.append("the validation split has no query (no row with is_query=True)")

    for column in (CATEGORIES_COLUMN, SEQUENCE_COLUMN):
        if column in df.columns:
            empty = [i for i in np.flatnonzero(is_valid) if _is_empty(df[column].iloc[i])]
            if empty:
                problems.append(f"column '{column}': empty on validation rows at {_rows(empty)}")

    if TEXTS_COLUMN in df.columns:
        empty_texts = [i for i, v in enumerate(df[TEXTS_COLUMN]) if not isinstance(v, str) or not v.strip()]
        if empty_texts:
            problems.append(f"column '{TEXTS_COLUMN}': empty or not a string at {_rows(empty_texts)}")
    if START_TIME_COLUMN in df.columns:
        bad_start = [i for i, v in enumerate(df[START_TIME_COLUMN]) if not _is_start_time(v)]
        if bad_start:
            problems.append(
                f"column '{START_TIME_COLUMN}': not a number of seconds >= 0 (or empty) at {_rows(bad_start)}"
            )

    problems += _bbox_problems(df, dataset_root, check_files)

    if check_files and PATHS_COLUMN in df.columns:
        missing_files = [
            i
            for i, p in enumerate(df[PATHS_COLUMN])
            if _is_empty(p) or not resolve_path(p, dataset_root).is_file()
        ]
        if missing_files:
            example = resolve_path(df[PATHS_COLUMN].iloc[missing_files[0]], dataset_root)
            problems.append(f"column 'path': file not found at {_rows(missing_files)} (first: {example})")
    return problems


def _is_start_time(value: object) -> bool:
    if _is_empty(value):
        return True  # an empty start time means the start of the file
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(seconds) and seconds >= 0)


def _bbox_problems(df: pd.DataFrame, dataset_root: str | Path | None, check_files: bool) -> list[str]:
    present = [c for c in BBOX_COLUMNS if c in df.columns]
    if not present:
        return []
    if len(present) != 4:
        missing = [c for c in BBOX_COLUMNS if c not in df.columns]
        return [f"bounding boxes need all four columns {list(BBOX_COLUMNS)}; missing {missing}"]
    problems = []
    partial, not_int, bad_order, outside = [], [], [], []
    for i, raw in enumerate(df[list(BBOX_COLUMNS)].itertuples(index=False)):
        empty = [_is_empty(v) for v in raw]
        if all(empty):
            continue  # a row without a box uses the whole image
        if any(empty):
            partial.append(i)
            continue
        box = [b for b in (_as_int(v) for v in raw) if b is not None and _fits_int64(b)]
        if len(box) != len(BBOX_COLUMNS):  # some value is not an integer (in int64)
            not_int.append(i)
            continue
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 and 0 <= y1 < y2):
            bad_order.append(i)
            continue
        if check_files and PATHS_COLUMN in df.columns:
            size = _image_size(resolve_path(df[PATHS_COLUMN].iloc[i], dataset_root))
            if size is not None and (x2 > size[0] or y2 > size[1]):
                outside.append(i)
    if partial:
        problems.append(
            f"bounding box: some but not all of {list(BBOX_COLUMNS)} are empty at {_rows(partial)}"
        )
    if not_int:
        problems.append(f"bounding box: coordinates are not integers in int64 at {_rows(not_int)}")
    if bad_order:
        problems.append(f"bounding box: expected 0 <= x_1 < x_2 and 0 <= y_1 < y_2 at {_rows(bad_order)}")
    if outside:
        problems.append(
            f"bounding box: extends beyond the image (x_2 > width or y_2 > height) at {_rows(outside)}"
        )
    return problems


def resolve_path(path: object, dataset_root: str | Path | None) -> Path:
    """``path`` joined to ``dataset_root`` when it is relative (and a root is given)."""
    resolved = Path(str(path))
    return resolved if resolved.is_absolute() or dataset_root is None else Path(dataset_root) / resolved


def check_retrieval_dataframe_format(
    df: pd.DataFrame | str | Path, dataset_root: str | Path | None = None, check_files: bool = True
) -> pd.DataFrame:
    """Reads (if a path) and validates a dataframe; raises :class:`DataFrameFormatError` listing every problem.

    Returns the dataframe with normalised dtypes: ``label`` int64, ``is_query`` / ``is_gallery``
    as bool on validation rows (``NaN`` on train rows, as in OML), box columns as nullable Int64.

    >>> df = pd.DataFrame({"label": [0], "path": ["a.png"], "split": ["validation"],
    ...                    "is_query": ["True"], "is_gallery": ["True"]})
    >>> check_retrieval_dataframe_format(df, check_files=False)["is_query"].tolist()
    [True]
    """
    source = "dataframe"
    if not isinstance(df, pd.DataFrame):
        source = f"CSV file {df}"
        try:
            df = pd.read_csv(df, index_col=False)
        except Exception as error:
            raise DataFrameFormatError([f"cannot be read as CSV: {error}"], source) from error
    problems = find_dataframe_problems(df, dataset_root=dataset_root, check_files=check_files)
    if problems:
        raise DataFrameFormatError(problems, source)
    return normalise_dataframe(df)


def normalise_dataframe(df: pd.DataFrame) -> pd.DataFrame:
    """Casts a (valid) dataframe's columns to their canonical dtypes; see :func:`check_retrieval_dataframe_format`."""
    df = df.reset_index(drop=True).copy()
    df[LABELS_COLUMN] = df[LABELS_COLUMN].map(_as_int).astype("int64")
    df[SPLIT_COLUMN] = df[SPLIT_COLUMN].astype(str).str.strip()
    for column in (IS_QUERY_COLUMN, IS_GALLERY_COLUMN):
        df[column] = [
            parse_bool(v) if s == VALIDATION_SPLIT else None for v, s in zip(df[column], df[SPLIT_COLUMN])
        ]
    if all(c in df.columns for c in BBOX_COLUMNS):
        for column in BBOX_COLUMNS:
            df[column] = pd.array([_as_int(v) for v in df[column]], dtype="Int64")
    return df


def read_retrieval_splits(
    dataset_root: str | Path,
    dataframe_name: str = "df.csv",
    check_files: bool = True,
    splits=("train", "validation"),
) -> dict[str, pd.DataFrame]:
    """Reads and validates ``dataset_root / dataframe_name`` and returns its ``splits`` (fresh indices each).

    Raises :class:`DataFrameFormatError` listing every problem of the CSV, and ``ValueError`` naming the
    file when a requested split has no rows.
    """
    dataset_root = Path(dataset_root)
    df = check_retrieval_dataframe_format(
        dataset_root / dataframe_name, dataset_root=dataset_root, check_files=check_files
    )
    parts = {name: df[df[SPLIT_COLUMN] == name].reset_index(drop=True) for name in splits}
    for name, part in parts.items():
        if len(part) == 0:
            raise ValueError(f"{dataset_root / dataframe_name} has no rows with split == '{name}'")
    return parts


# OML keeps its dataframe-backed dataset bases in this module: the same names, importable from here
# (defined in df_datasets, which uses the checks above; imported last so that they exist by then).
from oml_fast.datasets.df_datasets import (  # noqa: E402
    DFLabeledDataset,
    DFQueryGalleryDataset,
    DFQueryGalleryLabeledDataset,
)

__all__ = [
    "DataFrameFormatError",
    "DFLabeledDataset",
    "DFQueryGalleryDataset",
    "DFQueryGalleryLabeledDataset",
    "check_retrieval_dataframe_format",
    "find_dataframe_problems",
    "normalise_dataframe",
    "parse_bool",
    "read_retrieval_splits",
    "resolve_path",
]
