"""Image datasets: items, boxes (mixed with no boxes), cache, read errors, visualize; the digits dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from oml_fast.datasets import (
    ImageLabeledDataset,
    ImageNormalisation,
    ImageQueryGalleryLabeledDataset,
    ImageReadError,
    get_retrieval_images_datasets,
    make_digits_dataset,
)


@pytest.fixture
def dataset_root(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    df = pd.DataFrame(
        {
            "label": [0, 0, 1, 1],
            "path": [f"{i}.png" for i in range(4)],
            "split": ["validation"] * 4,
            "is_query": [True, False, True, True],
            "is_gallery": [True, True, False, True],
            "category": ["a", "a", "b", "b"],
            "sequence": [0, 1, 2, 3],
            # rows 0 and 2 have boxes, rows 1 and 3 do not (OML crashes on this mix)
            "x_1": [2, None, 0, None],
            "y_1": [1, None, 0, None],
            "x_2": [10, None, 4, None],
            "y_2": [9, None, 4, None],
        }
    )
    return tmp_path, df


def test_query_gallery_protocol_and_items(dataset_root):
    root, df = dataset_root
    ds = ImageQueryGalleryLabeledDataset(df, dataset_root=root, transform=ImageNormalisation(im_size=8))
    assert len(ds) == 4
    assert ds.get_labels().dtype == np.int64 and ds.get_labels().tolist() == [0, 0, 1, 1]
    assert ds.get_query_ids().tolist() == [0, 2, 3] and ds.get_query_ids().dtype == torch.long
    assert ds.get_gallery_ids().tolist() == [0, 1, 3]
    assert ds.extra_data["category"].tolist() == ["a", "a", "b", "b"]
    item = ds[2]
    assert item["input_tensors"].shape == (3, 8, 8)
    assert (item["idx"], item["labels"], item["is_query"], item["is_gallery"]) == (2, 1, True, False)
    assert (item["category"], item["sequence"]) == ("b", 2)


def test_mixed_boxes_crop_only_rows_with_boxes(dataset_root):
    root, df = dataset_root
    ds = ImageLabeledDataset(df, dataset_root=root, transform=lambda image: torch.tensor(image.size))
    assert ds[0]["input_tensors"].tolist() == [8, 8]  # cropped to the 8x8 box
    assert ds[1]["input_tensors"].tolist() == [16, 12]  # the whole image
    assert (ds[1]["x1"], ds[1]["y1"], ds[1]["x2"], ds[1]["y2"]) == (0, 0, 16, 12)
    assert (ds[0]["x1"], ds[0]["y1"], ds[0]["x2"], ds[0]["y2"]) == (2, 1, 10, 9)


def test_cache_returns_same_tensors(dataset_root):
    root, df = dataset_root
    ds = ImageLabeledDataset(df, dataset_root=root, transform=ImageNormalisation(im_size=8), cache_size=10)
    assert torch.equal(ds[1]["input_tensors"], ds[1]["input_tensors"])
    assert ds._read_cropped.cache_info().hits == 1


def test_unreadable_image_names_the_file(dataset_root):
    root, df = dataset_root
    (root / "1.png").write_bytes(b"this is not a png")
    ds = ImageLabeledDataset(df, dataset_root=root)
    with pytest.raises(ImageReadError, match=r"cannot read image '.*1\.png'"):
        ds[1]


def test_visualize_draws_a_colored_frame(dataset_root):
    root, df = dataset_root
    ds = ImageQueryGalleryLabeledDataset(df, dataset_root=root)
    image = ds.visualize(1, color=(0, 0, 255))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image[0, 0].tolist() == [0, 0, 255] and image[-1, -1].tolist() == [0, 0, 255]


def test_digits_dataset(tmp_path):
    csv = make_digits_dataset(tmp_path, train_digits=(0, 1, 2, 3, 4, 5))
    train, valid = get_retrieval_images_datasets(tmp_path, ImageNormalisation(8), ImageNormalisation(8))
    assert len(train) + len(valid) == 1797
    assert set(train.get_labels().tolist()) == {0, 1, 2, 3, 4, 5}
    assert set(valid.get_labels().tolist()) == {6, 7, 8, 9}
    assert len(valid.get_query_ids()) == len(valid.get_gallery_ids()) == len(valid)
    image = np.asarray(Image.open(tmp_path / pd.read_csv(csv).path[0]))
    assert image.shape == (8, 8) and image.max() > 200  # real 8-bit digits, not blank
    assert make_digits_dataset(tmp_path) == csv  # reused, not rewritten


def test_retrieval_datasets_use_the_split_readers_and_report_sizes(tmp_path, capsys):
    make_digits_dataset(tmp_path, train_digits=(0, 1, 2, 3, 4, 5))
    seen: dict[str, int] = {"train": 0, "val": 0}

    def reader(split):
        def read(path):
            seen[split] += 1
            return Image.open(path).convert("RGB")

        return read

    train, valid = get_retrieval_images_datasets(
        tmp_path, ImageNormalisation(8), ImageNormalisation(8), reader("train"), reader("val")
    )
    _ = train[0], valid[0], valid[1]
    assert seen == {"train": 1, "val": 2}
    assert f"train {len(train)} images, validation {len(valid)} images" in capsys.readouterr().out
    get_retrieval_images_datasets(tmp_path, None, None, verbose=False)
    assert capsys.readouterr().out == ""


def test_digits_rejects_bad_split(tmp_path):
    with pytest.raises(ValueError, match="train_digits"):
        make_digits_dataset(tmp_path, train_digits=range(10))


def test_oml_2_names_are_the_image_datasets(digits_root):
    """``oml_fast.datasets.base`` (OML's backward-compatible names) builds the same items as the datasets."""
    from oml_fast.datasets.base import DatasetQueryGallery, DatasetWithLabels

    df = pd.read_csv(digits_root / "df.csv")
    train = df[df.split == "train"].head(5).reset_index(drop=True)
    valid = df[df.split == "validation"].head(5).reset_index(drop=True)
    old, new = (
        DatasetWithLabels(train, dataset_root=digits_root),
        ImageLabeledDataset(train, dataset_root=digits_root),
    )
    assert isinstance(old, ImageLabeledDataset) and torch.equal(
        old[3]["input_tensors"], new[3]["input_tensors"]
    )
    assert old.get_labels().tolist() == train["label"].tolist()
    qg = DatasetQueryGallery(valid, dataset_root=digits_root)
    assert (
        isinstance(qg, ImageQueryGalleryLabeledDataset) and len(qg.get_query_ids()) == valid["is_query"].sum()
    )
