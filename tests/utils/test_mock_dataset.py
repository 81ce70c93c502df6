"""oml_fast.utils: the mock images dataset (scikit-learn digits laid out as OML's mock dataset) and the
dataframe check with OML's arguments."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oml_fast.const import BBOXES_COLUMNS, MOCK_DATASET_PATH
from oml_fast.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml_fast.datasets.dataframe import DataFrameFormatError
from oml_fast.utils import download_mock_dataset, get_mock_images_dataset
from oml_fast.utils.dataframe_format import check_retrieval_dataframe_format
from oml_fast.utils.download_mock_dataset import MOCK_DATASET_FILES

BASE_COLUMNS = ["label", "path", "split", "is_query", "is_gallery"]
EXTRA_COLUMNS = {
    "df.csv": [],
    "df_with_bboxes.csv": ["x_1", "x_2", "y_1", "y_2"],
    "df_with_category.csv": ["category"],
    "df_with_sequence.csv": ["sequence"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mock")
    get_mock_images_dataset(root)
    return root


def test_default_root_is_ours_not_omls():
    # OML's own cache (.../oml/mock_dataset) holds OML's files: ours must never overwrite them.
    assert MOCK_DATASET_PATH.parent.name == "oml_fast"


def test_folder_has_omls_files(root):
    assert sorted(p.name for p in root.iterdir()) == sorted([*MOCK_DATASET_FILES, "images"])
    df = pd.read_csv(root / "df.csv")
    assert all((root / p).is_file() for p in df["path"])
    assert len(list((root / "images").iterdir())) == len(df)


@pytest.mark.parametrize("df_name", MOCK_DATASET_FILES)
def test_tables_have_omls_columns_and_splits(root, df_name):
    df_train, df_val = get_mock_images_dataset(root, df_name=df_name)
    for df in (df_train, df_val):
        assert list(df.columns) == BASE_COLUMNS + EXTRA_COLUMNS[df_name]
        assert list(df.index) == list(range(len(df)))
    assert set(df_train["split"]) == {"train"} and set(df_val["split"]) == {"validation"}
    assert df_train["is_query"].isna().all() and df_train["is_gallery"].isna().all()
    assert df_val["is_query"].dtype == bool and df_val["is_gallery"].dtype == bool
    assert df_val["is_query"].all() and df_val["is_gallery"].all()
    # zero-shot: validation labels are never trained on
    assert not set(df_train["label"]) & set(df_val["label"])
    full = pd.read_csv(root / df_name)
    check_retrieval_dataframe_format(full, dataset_root=root)


def test_categories_and_sequences_have_structure(root):
    df_train, df_val = get_mock_images_dataset(root, df_name="df_with_category.csv")
    for df in (df_train, df_val):  # each category holds several labels, a label one category
        assert df.groupby("category")["label"].nunique().min() >= 2
        assert df.groupby("label")["category"].nunique().max() == 1
    _, df_val = get_mock_images_dataset(root, df_name="df_with_sequence.csv")
    assert df_val.groupby("sequence")["label"].nunique().max() == 1
    assert df_val.groupby("sequence").size().min() >= 2


def test_boxes_hold_the_ink_and_some_are_missing(root):
    df, _ = get_mock_images_dataset(root, df_name="df_with_bboxes.csv")
    boxed = df.dropna(subset=BBOXES_COLUMNS)
    assert 0 < len(boxed) < len(df)
    for row in boxed.head(10).itertuples():
        image = np.asarray(Image.open(root / row.path).convert("L"))
        x_1, x_2, y_1, y_2 = (int(v) for v in (row.x_1, row.x_2, row.y_1, row.y_2))
        outside = image.copy()
        outside[y_1:y_2, x_1:x_2] = 255
        assert (outside == 255).all() and (image[y_1:y_2, x_1:x_2] < 255).any()


def test_datasets_read_it(root):
    df_train, df_val = get_mock_images_dataset(root, df_name="df_with_bboxes.csv", global_paths=True)
    assert all(Path(p).is_absolute() for p in df_train["path"])
    train = ImageLabeledDataset(df_train)
    val = ImageQueryGalleryLabeledDataset(df_val)
    assert train[0]["input_tensors"].shape[0] == 3
    assert len(val.get_query_ids()) == len(df_val)


def test_intact_dataset_is_reused_and_damage_repaired(tmp_path):
    get_mock_images_dataset(tmp_path)
    image_path = tmp_path / pd.read_csv(tmp_path / "df.csv")["path"][0]
    Image.new("RGB", (32, 32)).save(image_path)  # a damaged image
    stamp = (tmp_path / "df.csv").stat().st_mtime_ns
    get_mock_images_dataset(tmp_path, check_md5=False)  # presence only: kept as is
    assert np.asarray(Image.open(image_path)).max() == 0
    get_mock_images_dataset(tmp_path)  # content checked: rewritten
    assert np.asarray(Image.open(image_path)).max() == 255
    (tmp_path / "df_with_sequence.csv").unlink()
    get_mock_images_dataset(tmp_path, check_md5=False)
    assert (tmp_path / "df_with_sequence.csv").is_file() and (tmp_path / "df.csv").stat().st_mtime_ns >= stamp


def test_download_mock_dataset_is_the_same(root):
    for ours, theirs in zip(
        download_mock_dataset(root, True, "df_with_category.csv"),
        get_mock_images_dataset(root, "df_with_category.csv"),
    ):
        pd.testing.assert_frame_equal(ours, theirs)


def test_unknown_table_is_named(root):
    with pytest.raises(ValueError, match="`df_name` must be one of"):
        get_mock_images_dataset(root, df_name="df_full.csv")


def test_check_format_raises_for_both_except_clauses(root, tmp_path):
    df = pd.read_csv(root / "df.csv")
    df.loc[3, "split"] = "test"
    for error_type in (AssertionError, ValueError, DataFrameFormatError):
        with pytest.raises(error_type, match="column 'split'"):
            check_retrieval_dataframe_format(df, dataset_root=root)
    df = pd.read_csv(root / "df.csv")
    df.to_csv(tmp_path / "semicolon.csv", sep=";", index=False)
    check_retrieval_dataframe_format(tmp_path / "semicolon.csv", dataset_root=root, sep=";")
    with pytest.raises(AssertionError, match="file not found"):  # relative paths, no root
        check_retrieval_dataframe_format(str(root / "df.csv"))


def test_check_format_warns_on_labels_with_several_categories(root):
    df = pd.read_csv(root / "df_with_category.csv")
    df.loc[0, "category"] = "odd"  # label 0 is even elsewhere
    with pytest.warns(UserWarning, match=r"labels \[0\]"):
        check_retrieval_dataframe_format(df, dataset_root=root)
    check_retrieval_dataframe_format(df, dataset_root=root, verbose=False)


def test_missing_extra_is_named(tmp_path, monkeypatch):
    from oml_fast.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    with pytest.raises(
        MissingExtraError,
        match=r"get_mock_images_dataset needs `(sklearn|scikit-learn)`.*oml_fast\[pipeline\]",
    ):
        get_mock_images_dataset(tmp_path)
