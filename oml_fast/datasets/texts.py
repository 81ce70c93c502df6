"""Text datasets in OML's dataframe format: a ``text`` column instead of ``path`` (OML's ``oml.datasets.texts``).

Items are dicts with ``input_tensors`` = ``{"input_ids": LongTensor[max_length], "attention_mask":
LongTensor[max_length]}`` (the tokenizer's output, padded / truncated to ``max_length``), ``idx``,
and, per dataset, ``labels`` / ``is_query`` / ``is_gallery`` / ``extra_data`` values. Batches of
them (PyTorch's default collate) hold ``LongTensor[B, max_length]`` under each key, the input of
:class:`oml_fast.models.HFWrapper`.

The tokenizer is any callable with the Hugging Face tokenizer call signature (``transformers``
``PreTrainedTokenizer(Fast)``, e.g. ``AutoTokenizer.from_pretrained(...)``); this module imports
no ``transformers`` itself (extra ``texts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oml_fast.const import (
    INDEX_KEY,
    INPUT_TENSORS_KEY,
    LABELS_KEY,
    TEXTS_COLUMN,
    TRAIN_SPLIT,
    VALIDATION_SPLIT,
    TColor,
)
from oml_fast.datasets.dataframe import _rows, read_retrieval_splits
from oml_fast.datasets.df_datasets import (
    DFLabeledDataset,
    DFQueryGalleryDataset,
    DFQueryGalleryLabeledDataset,
    _require_columns,
    check_extra_data,
    check_index,
    put_extra_data,
)
from oml_fast.errors import require_extra
from oml_fast.interfaces.datasets import IBaseDataset, IHTMLVisualizableDataset, IVisualizableDataset
from oml_fast.visualization import text_as_html, visualize_text

TTokenizer = Any  # a Hugging Face tokenizer, or any callable with its call signature


def _check_tokenizer(tokenizer: TTokenizer, owner: str) -> None:
    if tokenizer is None:
        raise TypeError(
            f"{owner} needs a `tokenizer`, got None: pass a Hugging Face tokenizer, e.g. "
            "`transformers.AutoTokenizer.from_pretrained(<model name or local folder>)` "
            "(extra `texts`: pip install 'oml-fast[texts]')"
        )
    if not callable(tokenizer):
        raise TypeError(
            f"{owner}: `tokenizer` must be callable like a Hugging Face tokenizer, got {tokenizer!r}"
        )


def _check_texts(texts: Sequence[Any], owner: str) -> list[str]:
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if bad:
        example = texts[bad[0]]
        raise ValueError(
            f"{owner}: empty or non-string text at {_rows(bad)} (first: {example!r}); "
            "every item needs a non-empty text"
        )
    return texts


class TextBaseDataset(IBaseDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Texts tokenised on access.

    Args:
        texts: one non-empty string per item.
        tokenizer: a Hugging Face tokenizer (called with ``truncation=True, padding="max_length",
            max_length=max_length, return_tensors="pt"``); it must have a padding token.
        max_length: number of tokens per item (longer texts are truncated, shorter ones padded).
        extra_data: per-item records (each of length N) added to the items under their key.
    """

    def __init__(
        self,
        texts: Sequence[str],
        tokenizer: TTokenizer,
        max_length: int = 128,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
    ):
        owner = type(self).__name__
        _check_tokenizer(tokenizer, owner)
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise ValueError(f"{owner}: `max_length` must be a positive int, got {max_length!r}")
        self._texts = _check_texts(texts, owner)
        self.extra_data = check_extra_data(extra_data, len(self._texts), "texts")
        self._tokenizer = tokenizer
        self._max_length = int(max_length)
        self.input_tensors_key, self.index_key = input_tensors_key, index_key

    def __len__(self) -> int:
        return len(self._texts)

    @property
    def texts(self) -> list[str]:
        return list(self._texts)

    def tokenize(self, item: int) -> dict[str, Any]:
        """``{"input_ids": LongTensor[max_length], "attention_mask": LongTensor[max_length]}`` of ``item``."""
        text = self._texts[item]
        try:
            encoded = self._tokenizer(
                text,
                truncation=True,
                padding="max_length",
                max_length=self._max_length,
                return_tensors="pt",
                add_special_tokens=True,
            )
            tokens = {key: encoded[key].reshape(-1) for key in ("input_ids", "attention_mask")}
        except Exception as error:
            raise ValueError(
                f"cannot tokenize the text of item {item} ({text[:60]!r}) with {type(self._tokenizer).__name__}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if tokens["input_ids"].numel() != self._max_length:
            raise ValueError(
                f"the tokenizer gave {tokens['input_ids'].numel()} tokens for item {item}, expected "
                f"max_length={self._max_length}: it must pad and truncate (padding='max_length', truncation=True)"
            )
        return tokens

    def __getitem__(self, item: int) -> dict[str, Any]:
        item = check_index(item, len(self))
        data: dict[str, Any] = {self.input_tensors_key: self.tokenize(item), self.index_key: item}
        return put_extra_data(data, self.extra_data, item)

    def visualize(self, item: int, color: TColor) -> np.ndarray:
        """The text of ``item`` drawn as uint8 [256, 256, 3] in a frame of ``color``."""
        return visualize_text(self._texts[item], color=color)

    def visualize_as_html(self, item: int, title: str, color: TColor) -> str:
        """The text of ``item`` as an HTML block under ``title``, framed with ``color``."""
        return text_as_html(self._texts[item], title=title, color=color)


def _base(df: pd.DataFrame, tokenizer: TTokenizer, max_length: int, keys: tuple[str, str], owner: str):
    _require_columns(df, (TEXTS_COLUMN,), owner)
    _check_tokenizer(tokenizer, owner)
    try:
        return TextBaseDataset(
            texts=df[TEXTS_COLUMN].tolist(),
            tokenizer=tokenizer,
            max_length=max_length,
            input_tensors_key=keys[0],
            index_key=keys[1],
        )
    except ValueError as error:
        raise ValueError(str(error).replace(TextBaseDataset.__name__, owner, 1)) from None


class TextLabeledDataset(DFLabeledDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Labeled texts (a train set): rows of an OML dataframe with ``label`` and ``text``."""

    _dataset: TextBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        tokenizer: TTokenizer,
        max_length: int = 128,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        labels_key: str = LABELS_KEY,
        index_key: str = INDEX_KEY,
    ):
        base = _base(df, tokenizer, max_length, (input_tensors_key, index_key), type(self).__name__)
        super().__init__(dataset=base, df=df, extra_data=extra_data, labels_key=labels_key)


class TextQueryGalleryLabeledDataset(
    DFQueryGalleryLabeledDataset, IVisualizableDataset, IHTMLVisualizableDataset
):  # type: ignore[misc]
    """Labeled texts with ``is_query`` / ``is_gallery`` flags (a validation set); an item may be both."""

    _dataset: TextBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        tokenizer: TTokenizer,
        max_length: int = 128,
        extra_data: dict[str, Any] | None = None,
        labels_key: str = LABELS_KEY,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
    ):
        base = _base(df, tokenizer, max_length, (input_tensors_key, index_key), type(self).__name__)
        super().__init__(dataset=base, df=df, extra_data=extra_data, labels_key=labels_key)


class TextQueryGalleryDataset(DFQueryGalleryDataset, IVisualizableDataset, IHTMLVisualizableDataset):
    """Texts with ``is_query`` / ``is_gallery`` flags and no labels (retrieval without ground truth)."""

    _dataset: TextBaseDataset

    def __init__(
        self,
        df: pd.DataFrame,
        tokenizer: TTokenizer,
        max_length: int = 128,
        extra_data: dict[str, Any] | None = None,
        input_tensors_key: str = INPUT_TENSORS_KEY,
        index_key: str = INDEX_KEY,
    ):
        base = _base(df, tokenizer, max_length, (input_tensors_key, index_key), type(self).__name__)
        super().__init__(dataset=base, df=df, extra_data=extra_data)


def load_tokenizer(tokenizer: TTokenizer) -> TTokenizer:
    """``tokenizer`` itself, or, for a string / path, ``transformers.AutoTokenizer.from_pretrained(tokenizer)``
    (a local folder works offline); the error names the extra ``texts`` when ``transformers`` is absent."""
    if not isinstance(tokenizer, (str, Path)):
        return tokenizer
    transformers = require_extra("transformers", "loading a tokenizer by name")
    try:
        return transformers.AutoTokenizer.from_pretrained(str(tokenizer))
    except Exception as error:
        raise ValueError(
            f"cannot load the tokenizer '{tokenizer}': {type(error).__name__}: {error}"
        ) from error


def get_retrieval_texts_datasets(
    dataset_root: str | Path,
    tokenizer: TTokenizer,
    max_length: int = 128,
    dataframe_name: str = "df.csv",
) -> tuple[TextLabeledDataset, TextQueryGalleryLabeledDataset]:
    """The train and validation splits of ``dataset_root / dataframe_name`` (validated first; a ``text``
    column) as text datasets. ``tokenizer``: a tokenizer object, or a name / folder for :func:`load_tokenizer`."""
    parts = read_retrieval_splits(dataset_root, dataframe_name, check_files=False)
    tokenizer = load_tokenizer(tokenizer)
    return (
        TextLabeledDataset(parts[TRAIN_SPLIT], tokenizer, max_length),
        TextQueryGalleryLabeledDataset(parts[VALIDATION_SPLIT], tokenizer, max_length),
    )


def get_validation_texts_dataset(
    dataset_root: str | Path, tokenizer: TTokenizer, max_length: int = 128, dataframe_name: str = "df.csv"
) -> TextQueryGalleryLabeledDataset:
    """The validation split of ``dataset_root / dataframe_name`` (validated first) as a text dataset."""
    parts = read_retrieval_splits(dataset_root, dataframe_name, check_files=False, splits=(VALIDATION_SPLIT,))
    return TextQueryGalleryLabeledDataset(parts[VALIDATION_SPLIT], load_tokenizer(tokenizer), max_length)


__all__ = [
    "get_retrieval_texts_datasets",
    "get_validation_texts_dataset",
    "load_tokenizer",
    "TextBaseDataset",
    "TextLabeledDataset",
    "TextQueryGalleryDataset",
    "TextQueryGalleryLabeledDataset",
]
