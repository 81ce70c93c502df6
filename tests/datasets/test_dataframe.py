"""The CSV validator: every problem is reported, with row numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oml_fast.datasets import DataFrameFormatError, check_retrieval_dataframe_format, find_dataframe_problems


@pytest.fixture
def image_root(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / name)  # 20 wide, 10 high
    return tmp_path


def _good_df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [0, 1, 2, 2],
            "path": ["a.png", "b.png", "c.png", "d.png"],
            "split": ["train", "train", "validation", "validation"],
            "is_query": [None, None, True, True],
            "is_gallery": [None, None, True, True],
        }
    )


def test_good_dataframe_passes_and_is_normalised(image_root):
    df = _good_df()
    df.to_csv(image_root / "df.csv", index=False)
    out = check_retrieval_dataframe_format(image_root / "df.csv", dataset_root=image_root)
    assert out["label"].dtype == np.int64
    assert out["is_query"].tolist()[2:] == [True, True]
    assert pd.isna(out["is_query"].iloc[0])


def test_missing_columns_are_listed():
    df = _good_df().drop(columns=["split", "is_gallery"])
    problems = find_dataframe_problems(df, check_files=False)
    assert any("missing required column(s) ['split', 'is_gallery']" in p for p in problems)


def test_every_problem_is_reported_with_rows(image_root):
    df = _good_df().astype(object)
    df.loc[0, "label"] = "cat"  # bad type
    df.loc[1, "split"] = "test"  # bad split
    df.loc[0, "is_query"] = True  # set on a train row
    df.loc[2, "is_gallery"] = "maybe"  # not a bool
    df.loc[3, "path"] = "missing.png"  # missing file
    with pytest.raises(DataFrameFormatError) as info:
        check_retrieval_dataframe_format(df, dataset_root=image_root)
    problems = info.value.problems
    text = str(info.value)
    assert "column 'label': not an integer at row 0 (line 2)" in text
    assert "column 'split': value not in ['train', 'validation'] at row 1 (line 3)" in text
    assert "column 'is_query': must be empty for train rows, but is set at row 0 (line 2)" in text
    assert "column 'is_gallery': not a bool (True/False/1/0) at row 2 (line 4)" in text
    assert "column 'path': file not found at row 3 (line 5)" in text and "missing.png" in text
    assert len(problems) == 5, problems


def test_query_label_absent_from_gallery():
    df = _good_df().astype(object)
    df.loc[3, "label"] = 7
    df.loc[3, "is_gallery"] = False  # label 7 is only a query
    problems = find_dataframe_problems(df, check_files=False)
    assert problems == ["query label(s) absent from the gallery at row 3 (line 5)"]


@pytest.mark.parametrize(
    "box, expected",
    [
        ((1, 1, 5, None), "some but not all"),
        ((1.5, 1, 5, 5), "not integers"),
        ((5, 1, 2, 5), "0 <= x_1 < x_2"),
        ((-1, 1, 5, 5), "0 <= x_1 < x_2"),
        ((0, 0, 25, 5), "beyond the image"),  # the images are 20 wide
    ],
)
def test_bad_boxes(image_root, box, expected):
    df = _good_df()
    for column in ("x_1", "y_1", "x_2", "y_2"):
        df[column] = [None] * len(df)
    df[["x_1", "y_1", "x_2", "y_2"]] = df[["x_1", "y_1", "x_2", "y_2"]].astype(object)
    df.loc[2, ["x_1", "y_1", "x_2", "y_2"]] = list(box)
    problems = find_dataframe_problems(df, dataset_root=image_root)
    assert len(problems) == 1 and expected in problems[0] and "row 2 (line 4)" in problems[0], problems


def test_box_columns_must_come_together():
    df = _good_df().assign(x_1=0, y_1=0)
    problems = find_dataframe_problems(df, check_files=False)
    assert problems == [
        "bounding boxes need all four columns ['x_1', 'y_1', 'x_2', 'y_2']; missing ['x_2', 'y_2']"
    ]


def test_many_rows_are_abbreviated():
    df = pd.concat([_good_df()] * 10, ignore_index=True)
    df["split"] = "bad"
    (problem,) = [p for p in find_dataframe_problems(df, check_files=False) if "split" in p]
    assert "and 30 more" in problem


def test_unreadable_csv(tmp_path):
    with pytest.raises(DataFrameFormatError, match="cannot be read as CSV"):
        check_retrieval_dataframe_format(tmp_path / "nope.csv")
