"""Triplet miners by name (OML's ``oml.registry.miners``)."""

from __future__ import annotations

from typing import Any

from oml_fast.miners import (
    AllTripletsMiner,
    HardClusterMiner,
    HardTripletsMiner,
    MinerWithBank,
    NHardTripletsMiner,
    TripletMinerWithMemory,
)
from oml_fast.registry.base import Registry, block_name_args

MINERS_REGISTRY = Registry(
    "miners",
    {
        "all_triplets": AllTripletsMiner,
        "hard_cluster": HardClusterMiner,
        "hard_triplets": HardTripletsMiner,
        "triplets_with_memory": TripletMinerWithMemory,
        "miner_with_bank": MinerWithBank,
        "n_hard_triplets": NHardTripletsMiner,
    },
)


def get_miner(name: str, **kwargs: Any) -> Any:
    """``MINERS_REGISTRY[name](**kwargs)``; a nested ``miner`` block (``miner_with_bank``) is built first."""
    if "miner" in kwargs and not hasattr(kwargs["miner"], "sample"):
        kwargs["miner"] = get_miner_by_cfg(kwargs["miner"])
    return MINERS_REGISTRY[name](**kwargs)


def get_miner_by_cfg(cfg: Any) -> Any:
    """The miner of a ``{name, args}`` block."""
    name, args = block_name_args(cfg)
    return get_miner(name, **args)


__all__ = ["MINERS_REGISTRY", "get_miner", "get_miner_by_cfg"]
