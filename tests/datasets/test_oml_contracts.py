"""Image datasets with OML's contracts: interfaces, positional order, f_imread, extra_data, pairs."""

from __future__ import annotations

import pandas as pd
import torch

from oml_fast.datasets import (
    ImageLabeledDataset,
    ImageQueryGalleryDataset,
    ImageQueryGalleryLabeledDataset,
    PairDataset,
)
from oml_fast.interfaces import ILabeledDataset, IQueryGalleryDataset, IQueryGalleryLabeledDataset
from oml_fast.transforms import get_normalisation_resize_torch, imread_pillow


def test_contracts(digits_root):
    df = pd.read_csv(digits_root / "df.csv")
    valid = df[df.split == "validation"].head(10).reset_index(drop=True)
    reads = []

    def f_imread(path):
        reads.append(path)
        return imread_pillow(path)

    transform = get_normalisation_resize_torch(im_size=4)
    # OML's positional order: df, extra_data, dataset_root, transform, f_imread
    labeled = ImageQueryGalleryLabeledDataset(
        valid, {"note": list("abcdefghij")}, digits_root, transform, f_imread
    )
    assert isinstance(labeled, IQueryGalleryLabeledDataset)
    item = labeled[3]
    assert (
        reads
        and item["note"] == "d"
        and item["category"] == "digits"
        and item["input_tensors"].shape == (3, 4, 4)
    )
    assert labeled.get_query_ids().tolist() == list(range(10))

    unlabeled = ImageQueryGalleryDataset(valid.drop(columns=["label"]), None, digits_root, transform)
    assert isinstance(unlabeled, IQueryGalleryDataset) and not isinstance(unlabeled, ILabeledDataset)
    assert "labels" not in unlabeled[0]

    train = ImageLabeledDataset(df[df.split == "train"].head(4), None, digits_root)
    assert isinstance(train, ILabeledDataset)
    assert train[0]["input_tensors"].shape == (3, 8, 8)  # OML's default: normalisation, no resizing

    pairs = PairDataset(labeled, pair_ids=[(0, 1), (2, 3)])
    assert len(pairs) == 2 and torch.equal(pairs[1]["input_tensors_2"], labeled[3]["input_tensors"])
