"""oml_fast.utils.misc and misc_torch: OML's helpers, checked against their definitions and scikit-learn."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA

from oml_fast.utils.misc import (
    CompatibilityError,
    adapt_argument_as_kwarg,
    check_if_nonempty_positive_integers,
    compare_dicts_recursively,
    flatten_dict,
    pad_array_right,
    set_global_seed,
    smart_sample,
)
from oml_fast.utils.misc_torch import (
    PCA,
    OnlineAvgDict,
    OnlineSumDict,
    assign_2d,
    cat_two_sorted_tensors_and_keep_it_sorted,
    elementwise_dist,
    get_device,
    is_sorted_tensor,
    normalise,
    pairwise_dist,
    take_2d,
    temporary_setting_model_mode,
    unique_by_ids,
)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return torch.tensor(load_digits().data[:300], dtype=torch.float64)


def test_take_2d_is_row_wise_indexing():
    x = torch.randn(7, 9)
    indices = torch.randint(-9, 9, (7, 5))
    rows = torch.arange(7)[:, None].expand_as(indices)
    assert torch.equal(take_2d(x, indices), x[rows, indices])


def test_assign_2d_is_row_wise_assignment():
    x = torch.randn(6, 8)
    indices = torch.stack([torch.randperm(8)[:3] for _ in range(6)])
    values = torch.randn(6, 3)
    expected = x.clone()
    expected[torch.arange(6)[:, None].expand_as(indices), indices] = values
    out = assign_2d(x, indices, values)
    assert out is x and torch.equal(x, expected)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: take_2d(torch.zeros(3), torch.zeros(3, 1, dtype=torch.long)), "must be 2-D"),
        (lambda: take_2d(torch.zeros(3, 2), torch.zeros(2, 1, dtype=torch.long)), "same number of rows"),
        (lambda: take_2d(torch.zeros(3, 2), torch.zeros(3, 1)), "must hold integers"),
        (
            lambda: assign_2d(torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 2)),
            "same shape",
        ),
    ],
)
def test_2d_helpers_name_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pca_matches_scikit_learn(digits):
    ours = PCA(digits)
    theirs = SklearnPCA().fit(digits.numpy())
    k = 20  # leading components: well separated eigenvalues
    np.testing.assert_allclose(ours.explained_variance[:k].numpy(), theirs.explained_variance_[:k], rtol=1e-8)
    np.testing.assert_allclose(
        ours.explained_variance_ratio[:k].numpy(), theirs.explained_variance_ratio_[:k], rtol=1e-8
    )
    # axes agree up to sign
    np.testing.assert_allclose(np.abs(ours.components[:k].numpy()), np.abs(theirs.components_[:k]), atol=1e-8)
    projected = ours.transform(digits, n_components=k)
    np.testing.assert_allclose(
        np.abs(projected.numpy()), np.abs(theirs.transform(digits.numpy())[:, :k]), atol=1e-8
    )
    assert torch.allclose(ours.inverse_transform(ours.transform(digits)), digits, atol=1e-8)
    with pytest.raises(ValueError, match="at most 64 components"):
        ours.transform(digits, n_components=65)


def test_pca_axes_number_and_signs():
    pca = PCA(torch.eye(4, 10))
    assert pca.calc_principal_axes_number(pcf_variance=(0.5, 1)).tolist() == [2, 5]
    top = pca.components.abs().argmax(dim=1)
    assert (pca.components.gather(1, top[:, None]) >= 0).all()
    with pytest.raises(ValueError, match="at least 2 rows"):
        PCA(torch.ones(1, 3))


def test_distances_and_normalise(digits):
    x, y = digits[:10], digits[10:20]
    assert torch.allclose(elementwise_dist(x, y), torch.diag(torch.cdist(x, y)))
    assert torch.allclose(pairwise_dist(x, digits[:30]), torch.cdist(x, digits[:30]))
    assert torch.allclose(pairwise_dist(x, y, p=1), torch.cdist(x, y, p=1))
    assert torch.allclose(normalise(x).norm(dim=1), torch.ones(10, dtype=x.dtype))


def test_sorted_concat_stays_sorted():
    x1 = torch.tensor([[1.0, 5.0], [0.1, 0.2]])
    x2 = torch.tensor([[2.0, 3.0], [0.5, 0.6]])
    out = cat_two_sorted_tensors_and_keep_it_sorted(x1.clone(), x2)
    assert all(is_sorted_tensor(row) for row in out)
    assert torch.equal(out[1], torch.tensor([0.1, 0.2, 0.5, 0.6]))  # already in order: untouched
    assert not is_sorted_tensor(torch.tensor([1.0, 0.0]))
    assert is_sorted_tensor(torch.tensor([1.0, 1.0 - 1e-9], dtype=torch.float32))


def test_unique_by_ids_keeps_first_record():
    ids, data = unique_by_ids([3, 1, 3, 2], torch.tensor([30, 10, 31, 20]))
    assert ids == [1, 2, 3] and data.tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match="same length"):
        unique_by_ids([1, 2], [1])


def test_model_mode_and_device_helpers():
    model = torch.nn.Linear(2, 2).train()
    with temporary_setting_model_mode(model, set_train=False):
        assert not model.training
    assert model.training
    assert get_device(model) == "cpu" and get_device(torch.nn.Identity()) == "cpu"


def test_online_dicts():
    avg = OnlineAvgDict({"a": [1.0, 2.0]})
    avg.update({"a": torch.tensor(6.0), "b": np.array([4.0, 6.0])})
    assert dict(avg) == {"a": 3.0, "b": 5.0}
    total = OnlineSumDict({"a": 1})
    total.update({"a": [2, 3]})
    assert total.get_dict_with_results() == {"a": 6.0}


def test_set_global_seed_makes_every_generator_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    set_global_seed(7)
    first = draw()
    set_global_seed(7)
    assert draw() == first


def test_small_helpers():
    assert flatten_dict({"a": {"b": 1, "skip": 2}}, ignored_keys=["skip"]) == {"a/b": 1}
    assert adapt_argument_as_kwarg(torch.optim.SGD, ["learning_rate", "lr"], 0.1) == {"lr": 0.1}
    with pytest.raises(CompatibilityError):
        adapt_argument_as_kwarg(torch.optim.SGD, ["nope"], 0.1)
    check_if_nonempty_positive_integers((1, 5), "top_k")
    for bad in ((), (0,), -1, 1.5):
        with pytest.raises(ValueError):
            check_if_nonempty_positive_integers(bad, "top_k")  # type: ignore[arg-type]
    assert compare_dicts_recursively({"a": {"b": torch.ones(2)}}, {"a": {"b": torch.ones(2)}})
    with pytest.raises(AssertionError, match="differ at key b"):
        compare_dicts_recursively({"a": {"b": 1}}, {"a": {"b": 2}})
    assert pad_array_right(np.array([1, 2]), 4, -1).tolist() == [1, 2, -1, -1]
    sample = smart_sample([1, 2, 3], 5)
    assert len(sample) == 5 and set(sample) == {1, 2, 3}
    assert len(set(smart_sample(list(range(10)), 4))) == 4
