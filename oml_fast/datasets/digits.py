"""The built-in real dataset: scikit-learn's handwritten digits (1797 8x8 images), written in OML's format.

No network: the images ship with scikit-learn. The train split holds some digit classes and the
validation split the others (zero-shot retrieval: the model never sees the validation classes),
every validation item being both a query and a gallery item.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_TRAIN_DIGITS = (0, 1, 2, 3, 4, 5)
DIGITS_DATAFRAME_NAME = "df.csv"


def make_digits_dataset(
    root: str | Path,
    train_digits: Sequence[int] = DEFAULT_TRAIN_DIGITS,
    dataframe_name: str = DIGITS_DATAFRAME_NAME,
    overwrite: bool = False,
) -> Path:
    """Writes the digits as ``root/images/<digit>/<index>.png`` (8x8 grayscale) plus ``root/<dataframe_name>``.

    Args:
        root: output folder (created).
        train_digits: digit classes of the train split; the other classes form the validation split.
        dataframe_name: name of the CSV written in ``root``.
        overwrite: rewrite the files even if the CSV already exists (otherwise an existing, complete
            dataset is reused as is).

    Returns:
        The path of the CSV. Columns: ``label`` (the digit), ``path`` (relative to ``root``), ``split``,
        ``is_query``, ``is_gallery`` (empty on train rows), ``category`` (``"digits"``).

    >>> import tempfile
    >>> csv = make_digits_dataset(tempfile.mkdtemp(), train_digits=range(5))
    >>> df = pd.read_csv(csv)
    >>> len(df), sorted(df[df.split == "validation"].label.unique().tolist())
    (1797, [5, 6, 7, 8, 9])
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    train_digits = sorted({int(d) for d in train_digits})
    if not train_digits or not set(train_digits) < set(range(10)):
        raise ValueError(f"`train_digits` must be a non-empty proper subset of 0..9, got {train_digits}")
    root = Path(root)
    csv_path = root / dataframe_name
    if csv_path.is_file() and not overwrite:
        existing = pd.read_csv(csv_path)
        same_split = (
            sorted(existing.loc[existing.split == "train", "label"].unique().tolist()) == train_digits
        )
        if same_split and len(existing) == 1797 and all((root / p).is_file() for p in existing.path):
            return csv_path

    digits = load_digits()
    # Pixel values are 0..16 (ink intensity); scale them to 8-bit grey.
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    rows = []
    for index, (image, label) in enumerate(zip(images, digits.target)):
        relative = Path("images") / str(label) / f"{index:04d}.png"
        (root / relative.parent).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(root / relative)
        is_train = int(label) in train_digits
        rows.append(
            {
                "label": int(label),
                "path": relative.as_posix(),
                "split": "train" if is_train else "validation",
                "is_query": None if is_train else True,
                "is_gallery": None if is_train else True,
                "category": "digits",
            }
        )
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    return csv_path
