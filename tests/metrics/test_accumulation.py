"""Accumulator (OML's ``oml.metrics.accumulation``): order by indices, duplicates, types, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.errors import InvalidInputError
from oml_fast.metrics.accumulation import Accumulator


def test_tensors_arrays_and_lists_are_ordered_by_index_and_deduplicated():
    acc = Accumulator(keys_to_accumulate=("x", "paths", "scores"))
    acc.refresh(num_samples=5)
    acc.update_data(
        {"x": torch.tensor([[3.0], [1.0]]), "paths": ["c", "a"], "scores": np.array([3, 1])}, [3, 1]
    )
    # index 1 again (DDP padding): the first occurrence wins
    acc.update_data(
        {"x": torch.tensor([[0.0], [2.0], [9.0]]), "paths": ["z", "b", "dup"], "scores": np.array([0, 2, 9])},
        [0, 2, 1],
    )
    assert acc.is_storage_full() and acc.collected_samples == 5
    synced = acc.sync()
    assert synced.storage["x"].flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert synced.storage["paths"] == ["z", "a", "b", "c"]
    assert synced.storage["scores"].tolist() == [0, 1, 2, 3]
    assert synced.storage["__element_indices"] == [0, 1, 2, 3]


def test_without_indices_sync_is_the_same_object():
    acc = Accumulator(("x",))
    acc.refresh(2)
    acc.update_data({"x": torch.ones(2, 3)})
    assert acc.sync() is acc and acc.storage["x"].device.type == "cpu"


def test_errors():
    with pytest.raises(AssertionError, match="unique"):
        Accumulator(("x", "x"))
    acc = Accumulator(("x",))
    with pytest.raises(ValueError, match="refresh"):
        acc.update_data({"x": torch.ones(1, 2)})
    with pytest.raises(InvalidInputError, match="num_samples"):
        acc.refresh(0)
    acc.refresh(3)
    with pytest.raises(InvalidInputError, match="Lengths"):
        acc.update_data({"x": torch.ones(2, 2)}, indices=[0])
    acc.update_data({"x": torch.ones(2, 2)}, indices=[0, 1])
    with pytest.raises(InvalidInputError, match="tracking ids"):
        acc.update_data({"x": torch.ones(1, 2)})
    with pytest.raises(InvalidInputError, match="refreshed for 3 items"):
        acc.update_data({"x": torch.ones(2, 2)}, indices=[2, 3])
    with pytest.raises(ValueError, match="Cannot sync"):
        acc.sync()
    with pytest.raises(TypeError, match="not available"):
        acc.update_data({"x": 5}, indices=[2])
