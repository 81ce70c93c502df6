"""oml_fast.ddp: OML's DDP helpers, in one process and on 2 real gloo processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from oml_fast.ddp import (
    DDPSamplerWrapper,
    WarningDDP,
    check_loaders_is_patched,
    merge_list_of_dicts,
    patch_dataloader_to_ddp,
    sync_dicts_ddp,
)
from oml_fast.distributed import run_on_local_processes
from tests.ddp import ddp_helpers


def test_single_process_is_a_no_op():
    loader = DataLoader(list(range(5)), batch_size=2)
    with pytest.warns(WarningDDP):
        assert patch_dataloader_to_ddp(loader) is loader
    assert not check_loaders_is_patched(loader)
    data = {"x": torch.ones(2)}
    with pytest.warns(WarningDDP):
        assert sync_dicts_ddp(data, world_size=2) is data
    assert sorted(DDPSamplerWrapper(range(6), shuffle_samples_between_gpus=True)) == list(range(6))


def test_merge_list_of_dicts_checks_types():
    with pytest.raises(ValueError, match="same keys"):
        merge_list_of_dicts([{"a": [1]}, {"b": [1]}])
    with pytest.raises(TypeError, match="can be merged"):
        merge_list_of_dicts([{"a": 1}])


@pytest.fixture(scope="module")
def two_ranks():
    return run_on_local_processes(ddp_helpers.ddp_utils, world_size=2)


def test_helpers_on_two_ranks(two_ranks):
    assert [r["flags"] for r in two_ranks] == [(True, 2, 0, True), (True, 2, 1, False)]
    assert all(r["patched"] for r in two_ranks)


def test_patched_loaders_split_the_data(two_ranks):
    # 11 items, padded to 12, dealt out one by one, then batched by 2 on each rank
    plain = [sum(r["plain"], []) for r in two_ranks]
    assert plain == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 0]]
    # whole batches of the batch sampler (3 per epoch, padded to 4): 2 per rank, 4 items each, the
    # same epoch on both ranks (the padding batch of rank 1 is the first batch, rank 0's)
    batches = [r["batches"] for r in two_ranks]
    assert len(batches[0]) == len(batches[1]) == 2
    assert all(len(b) == 4 for rank in batches for b in rank)
    assert batches[1][1] == batches[0][0]
    assert len({tuple(b) for b in [*batches[0], batches[1][0]]}) == 3


def test_sync_dicts(two_ranks):
    for r in two_ranks:
        assert r["synced"]["ids"] == [0, 1]
        assert r["synced"]["x"].tolist() == [0.0, 1.0]
        assert np.array_equal(r["synced"]["a"], [0, 1])
