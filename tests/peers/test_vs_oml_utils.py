"""oml_fast.utils and oml_fast.inference agree with OML 4.0's: the mock dataset passes OML's own format
check, the tensor helpers give OML's results, the inference helpers OML's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from random_cases import seeded

CASES = range(20)


@pytest.fixture(scope="module")
def mock_root(tmp_path_factory) -> Path:
    from oml_fast.utils import get_mock_images_dataset

    root = tmp_path_factory.mktemp("mock")
    get_mock_images_dataset(root)
    return root


@pytest.mark.parametrize(
    "df_name", ["df.csv", "df_with_bboxes.csv", "df_with_category.csv", "df_with_sequence.csv"]
)
def test_mock_dataset_passes_omls_format_check(mock_root, df_name):
    from oml.utils.dataframe_format import check_retrieval_dataframe_format as oml_check

    from oml_fast.utils import get_mock_images_dataset

    oml_check(mock_root / df_name, dataset_root=mock_root)
    for part in get_mock_images_dataset(mock_root, df_name=df_name, global_paths=True):
        oml_check(part)


def test_format_checks_reject_the_same_dataframes(mock_root):
    from oml.utils.dataframe_format import check_retrieval_dataframe_format as oml_check

    from oml_fast.utils.dataframe_format import check_retrieval_dataframe_format

    good = pd.read_csv(mock_root / "df_with_bboxes.csv")
    broken = {
        "split": good.assign(split=["test"] + ["train"] * (len(good) - 1)),
        "labels": good.assign(label=good["label"].astype(float) + 0.5),
        "is_query on train": good.assign(is_query=True),
        "box order": good.assign(x_1=good["x_2"]),
        "missing file": good.assign(path=["nope.png"] * len(good)),
    }
    for df in broken.values():
        with pytest.raises(AssertionError):
            oml_check(df, dataset_root=mock_root)
        with pytest.raises(AssertionError):  # ours: also a ValueError
            check_retrieval_dataframe_format(df, dataset_root=mock_root)


@pytest.mark.parametrize("seed", CASES)
def test_pca_and_row_helpers(seed):
    from oml.utils import misc_torch as theirs

    from oml_fast.utils import misc_torch as ours

    rng = seeded(seed)
    n, dim = int(rng.randint(2, 40)), int(rng.randint(1, 12))
    x = torch.from_numpy(rng.randn(n, dim)).double()
    pca_theirs, pca_ours = theirs.PCA(x), ours.PCA(x)
    for attribute in ("explained_variance_ratio", "singular_values", "mean"):
        torch.testing.assert_close(getattr(pca_ours, attribute), getattr(pca_theirs, attribute))
    k = min(n, dim)
    torch.testing.assert_close(pca_ours.components[:k].abs(), pca_theirs.components[:k].abs())
    variance = tuple(sorted(rng.rand(3).tolist()))
    assert torch.equal(
        pca_ours.calc_principal_axes_number(variance), pca_theirs.calc_principal_axes_number(variance)
    )

    indices = torch.from_numpy(rng.randint(0, dim, size=(n, int(rng.randint(1, 5)))))
    assert torch.equal(ours.take_2d(x, indices), theirs.take_2d(x, indices))
    values = torch.from_numpy(rng.randn(*indices.shape))
    unique_rows = torch.stack([torch.from_numpy(rng.permutation(dim)[: indices.shape[1]]) for _ in range(n)])
    if unique_rows.shape[1] == indices.shape[1]:
        assert torch.equal(
            ours.assign_2d(x.clone(), unique_rows, values), theirs.assign_2d(x.clone(), unique_rows, values)
        )
    torch.testing.assert_close(ours.normalise(x), theirs.normalise(x))
    torch.testing.assert_close(ours.elementwise_dist(x, x.flip(0)), theirs.elementwise_dist(x, x.flip(0)))
    ids = rng.randint(0, n, size=n).tolist()
    ours_ids, ours_data = ours.unique_by_ids(ids, x)
    theirs_ids, theirs_data = theirs.unique_by_ids(ids, x)
    assert ours_ids == theirs_ids and torch.equal(ours_data, theirs_data)
    head = torch.sort(torch.from_numpy(rng.rand(n, 3)), dim=1).values
    tail = torch.sort(torch.from_numpy(rng.rand(n, 2)), dim=1).values
    torch.testing.assert_close(
        ours.cat_two_sorted_tensors_and_keep_it_sorted(head.clone(), tail),
        theirs.cat_two_sorted_tensors_and_keep_it_sorted(head.clone(), tail),
    )


def test_inference_helpers_give_omls_outputs():
    from oml.inference import inference as oml_inference
    from oml.inference import pairwise_inference as oml_pairwise_inference
    from oml.models import LinearTrivialDistanceSiamese as OmlSiamese

    from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    from oml_fast.inference import inference, pairwise_inference
    from oml_fast.models import LinearTrivialDistanceSiamese

    rng = seeded(0)
    features = torch.from_numpy(rng.randn(23, 5)).float()
    dataset = InMemoryQueryGalleryDataset(labels=np.arange(23), input_tensors=features)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4)).train()
    ours = inference(model, dataset, batch_size=4)
    theirs = oml_inference(model, dataset, batch_size=4)
    torch.testing.assert_close(ours, theirs)

    pairs = [(int(i), int(j)) for i, j in rng.randint(0, 23, size=(17, 2))]
    ours_pairs = pairwise_inference(
        LinearTrivialDistanceSiamese(5, identity_init=True), dataset, pairs, 0, 4, verbose=False
    )
    theirs_pairs = oml_pairwise_inference(
        OmlSiamese(5, identity_init=True), dataset, pairs, 0, 4, verbose=False
    )
    torch.testing.assert_close(ours_pairs, theirs_pairs)
