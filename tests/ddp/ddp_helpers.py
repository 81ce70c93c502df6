"""Functions run on each rank of a real gloo group by tests/ddp (imported by name in the spawned processes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from oml_fast.ddp import (
    check_loaders_is_patched,
    get_rank_safe,
    get_world_size_safe,
    is_ddp,
    is_main_process,
    patch_dataloader_to_ddp,
    sync_dicts_ddp,
)
from oml_fast.samplers import BalanceSampler


def ddp_utils(rank: int, world_size: int) -> dict[str, Any]:
    """What each rank sees of the helpers, its share of patched loaders, and the synced dicts."""
    labels = np.repeat(np.arange(6), 4)
    plain = patch_dataloader_to_ddp(DataLoader(list(range(11)), batch_size=2))
    batches = patch_dataloader_to_ddp(
        DataLoader(list(range(len(labels))), batch_sampler=BalanceSampler(labels, n_labels=2, n_instances=2))
    )
    synced = sync_dicts_ddp(
        {"ids": [rank], "x": torch.tensor([float(rank)]), "a": np.array([rank])}, world_size=world_size
    )
    return {
        "flags": (is_ddp(), get_world_size_safe(), get_rank_safe(), is_main_process()),
        "patched": check_loaders_is_patched([plain, batches]),
        "plain": [b.tolist() for b in plain],
        "batches": [b.tolist() for b in batches],
        "synced": synced,
    }
