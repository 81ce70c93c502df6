"""OML's mock images dataset, laid out locally from scikit-learn's bundled handwritten digits (no download).

``get_mock_images_dataset`` / ``download_mock_dataset`` take OML's arguments and return what OML's return:
``(df_train, df_val)`` read from one of the CSV files of the dataset folder. The folder holds the same files
as OML's mock dataset, with the same columns:

- ``df.csv``: ``label, path, split, is_query, is_gallery``;
- ``df_with_bboxes.csv``: the same plus ``x_1, x_2, y_1, y_2`` (the box around the ink; empty on every
  fourth image: boxes may be partial, as OML's format allows);
- ``df_with_category.csv``: plus ``category`` (``"even"`` / ``"odd"`` digits);
- ``df_with_sequence.csv``: plus ``sequence`` (an integer id shared by runs of four images of a digit);
- ``images/``: ``MOCK_IMAGES_PER_DIGIT`` images per digit, 32 x 32 RGB PNG (the 8 x 8 digits scaled 4x).

Splits as in OML's: ``train`` rows (digits 0-5) have empty ``is_query`` / ``is_gallery``; ``validation``
rows (digits 6-9, never seen in training) are all queries and gallery items (``1 vs rest``).
Labels are the digits; each category holds several labels in both splits.

The images are real (not random noise), so a model trained on the train split gets better on the
validation split. pandas, Pillow and scikit-learn (``pipeline`` extra) are imported when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oml_fast.const import (
    BBOXES_COLUMNS,
    CATEGORIES_COLUMN,
    IS_GALLERY_COLUMN,
    IS_QUERY_COLUMN,
    LABELS_COLUMN,
    MOCK_DATASET_DEFAULT_CSV,
    MOCK_DATASET_PATH,
    PATHS_COLUMN,
    SEQUENCE_COLUMN,
    SPLIT_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    X1_COLUMN,
    X2_COLUMN,
    Y1_COLUMN,
    Y2_COLUMN,
)
from oml_fast.errors import InvalidInputError, require_extra

if TYPE_CHECKING:
    import pandas as pd

MOCK_IMAGES_PER_DIGIT = 20
MOCK_TRAIN_DIGITS = (0, 1, 2, 3, 4, 5)
MOCK_IMAGE_SCALE = 4  # 8 x 8 digits -> 32 x 32 pixels
MOCK_SEQUENCE_LENGTH = 4
MOCK_DATASET_FILES = ("df.csv", "df_with_bboxes.csv", "df_with_category.csv", "df_with_sequence.csv")
IMAGES_FOLDER = "images"


@lru_cache(maxsize=1)
def _mock_images() -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """The first ``MOCK_IMAGES_PER_DIGIT`` digits of each class (in scikit-learn's order), as uint8 RGB
    ``[32, 32, 3]`` arrays (read-only: they are cached), and their labels; ordered by label, then by position."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = [], []
    for label in range(10):
        positions = np.flatnonzero(digits.target == label)[:MOCK_IMAGES_PER_DIGIT]
        for position in positions:
            # Pixel values are ink intensities 0..16: scaled to 8-bit grey, ink dark on white paper.
            grey = 255 - np.clip(np.rint(digits.images[position] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
            big = np.kron(grey, np.ones((MOCK_IMAGE_SCALE, MOCK_IMAGE_SCALE), dtype=np.uint8))
            rgb = np.repeat(big[:, :, None], 3, axis=2)
            rgb.flags.writeable = False
            images.append(rgb)
            labels.append(label)
    return tuple(images), tuple(labels)


def _ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(x_1, x_2, y_1, y_2)``: the smallest box (right / bottom edges exclusive) holding every inked pixel."""
    rows = np.flatnonzero((image[:, :, 0] < 255).any(axis=1))
    cols = np.flatnonzero((image[:, :, 0] < 255).any(axis=0))
    return int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1


def _mock_dataframes(images: Sequence[np.ndarray], labels: Sequence[int]) -> dict[str, pd.DataFrame]:
    """The four CSV tables of the mock dataset, by file name."""
    import pandas as pd

    rows = []
    sequence_ids: dict[tuple[int, int], int] = {}
    for index, (image, label) in enumerate(zip(images, labels)):
        is_train = label in MOCK_TRAIN_DIGITS
        position_in_class = index - labels.index(label)
        run = (label, position_in_class // MOCK_SEQUENCE_LENGTH)
        box = _ink_box(image) if index % 4 != 3 else (None, None, None, None)
        rows.append(
            {
                LABELS_COLUMN: label,
                PATHS_COLUMN: f"{IMAGES_FOLDER}/digit{label}_{position_in_class:02d}.png",
                SPLIT_COLUMN: TRAIN_SPLIT if is_train else VALIDATION_SPLIT,
                IS_QUERY_COLUMN: None if is_train else True,
                IS_GALLERY_COLUMN: None if is_train else True,
                **dict(zip((X1_COLUMN, X2_COLUMN, Y1_COLUMN, Y2_COLUMN), box)),
                CATEGORIES_COLUMN: "even" if label % 2 == 0 else "odd",
                SEQUENCE_COLUMN: sequence_ids.setdefault(run, len(sequence_ids)),
            }
        )
    full = pd.DataFrame(rows)
    for column in BBOXES_COLUMNS:
        full[column] = full[column].astype("Int64")
    base = [LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN, IS_QUERY_COLUMN, IS_GALLERY_COLUMN]
    return {
        "df.csv": full[base],
        "df_with_bboxes.csv": full[base + BBOXES_COLUMNS],
        "df_with_category.csv": full[[*base, CATEGORIES_COLUMN]],
        "df_with_sequence.csv": full[[*base, SEQUENCE_COLUMN]],
    }


def _layout_is_intact(
    root: Path, tables: dict[str, str], images: dict[str, np.ndarray], check_md5: bool
) -> bool:
    """Whether ``root`` already holds the mock dataset: every file present and, with ``check_md5``, every CSV
    identical and every image decoding to the expected pixels (our stand-in for OML's checksum)."""
    if not all((root / name).is_file() for name in tables) or not all((root / p).is_file() for p in images):
        return False
    if not check_md5:
        return True
    from PIL import Image

    if any((root / name).read_text() != text for name, text in tables.items()):
        return False
    for path, expected in images.items():
        with Image.open(root / path) as image:
            if not np.array_equal(np.asarray(image.convert("RGB")), expected):
                return False
    return True


def _lay_out_mock_dataset(root: Path, check_md5: bool) -> None:
    """Writes (or keeps, if intact) the CSV files and ``images/`` of the mock dataset in ``root``."""
    from PIL import Image

    images, labels = _mock_images()
    frames = _mock_dataframes(images, labels)
    tables = {name: frame.to_csv(index=False) for name, frame in frames.items()}
    by_path = dict(zip(frames["df.csv"][PATHS_COLUMN], images))
    if _layout_is_intact(root, tables, by_path, check_md5):
        return
    (root / IMAGES_FOLDER).mkdir(parents=True, exist_ok=True)
    for path, image in by_path.items():
        Image.fromarray(image, mode="RGB").save(root / path)
    for name, text in tables.items():
        (root / name).write_text(text)


def get_mock_images_dataset(
    dataset_root: str | Path = MOCK_DATASET_PATH,
    df_name: str = MOCK_DATASET_DEFAULT_CSV,
    check_md5: bool = True,
    global_paths: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lays out the mock images dataset in ``dataset_root`` (no network) and reads one of its tables.

    Args:
        dataset_root: the dataset folder (created; an intact dataset already there is reused).
        df_name: the CSV to read: ``df.csv``, ``df_with_bboxes.csv``, ``df_with_category.csv`` or
            ``df_with_sequence.csv``.
        check_md5: verify the content of a dataset found in ``dataset_root`` (every CSV and image) and
            rewrite it if anything differs; with ``False`` only the files' presence is checked.
        global_paths: make ``path`` absolute (joined to ``dataset_root``).

    Returns:
        ``(df_train, df_val)``: the ``train`` and ``validation`` rows, each with a fresh index; ``df_val``'s
        ``is_query`` / ``is_gallery`` are bool.

    >>> import tempfile
    >>> df_train, df_val = get_mock_images_dataset(tempfile.mkdtemp(), df_name="df_with_category.csv")
    >>> len(df_train), len(df_val), sorted(df_val["label"].unique().tolist()), list(df_val.columns)
    (120, 80, [6, 7, 8, 9], ['label', 'path', 'split', 'is_query', 'is_gallery', 'category'])
    """
    if df_name not in MOCK_DATASET_FILES:
        raise InvalidInputError(f"`df_name` must be one of {list(MOCK_DATASET_FILES)}, got {df_name!r}")
    for module in ("pandas", "PIL", "sklearn"):  # a missing one is named with the extra that brings it
        require_extra(module, "get_mock_images_dataset")
    import pandas as pd

    root = Path(dataset_root)
    _lay_out_mock_dataset(root, check_md5=check_md5)
    df = pd.read_csv(root / df_name)
    if global_paths:
        df[PATHS_COLUMN] = [str(root / path) for path in df[PATHS_COLUMN]]
    df_train = df[df[SPLIT_COLUMN] == TRAIN_SPLIT].reset_index(drop=True)
    df_val = df[df[SPLIT_COLUMN] == VALIDATION_SPLIT].reset_index(drop=True)
    df_val = df_val.astype({IS_QUERY_COLUMN: bool, IS_GALLERY_COLUMN: bool})
    return df_train, df_val


def download_mock_dataset(
    dataset_root: str | Path = MOCK_DATASET_PATH,
    check_md5: bool = True,
    df_name: str = "df.csv",
    global_paths: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OML's older name of :func:`get_mock_images_dataset` (note its argument order); nothing is downloaded."""
    return get_mock_images_dataset(
        dataset_root=dataset_root, df_name=df_name, check_md5=check_md5, global_paths=global_paths
    )


# The texts and audio mock datasets are made by oml_fast.datasets.mock (the audio one synthesises its files).
from oml_fast.datasets.mock import get_mock_audios_dataset, get_mock_texts_dataset  # noqa: E402

__all__ = [
    "get_mock_images_dataset",
    "get_mock_texts_dataset",
    "get_mock_audios_dataset",
    "download_mock_dataset",
    "MOCK_DATASET_FILES",
]
