"""Losses by name (OML's ``oml.registry.losses``); ``contrastive`` is an oml_fast addition."""

from __future__ import annotations

from typing import Any

from torch import nn

from oml_fast.losses import (
    ArcFaceLoss,
    ArcFaceLossWithMLP,
    ContrastiveLoss,
    SurrogatePrecision,
    TripletLoss,
    TripletLossPlain,
    TripletLossWithMiner,
)
from oml_fast.registry.base import Registry, accepted_kwargs, block_name_args
from oml_fast.registry.miners import get_miner_by_cfg

LOSSES_REGISTRY = Registry(
    "losses",
    {
        "triplet": TripletLoss,
        "triplet_plain": TripletLossPlain,
        "triplet_with_miner": TripletLossWithMiner,
        "surrogate_precision": SurrogatePrecision,
        "arcface": ArcFaceLoss,
        "mlp_arcface": ArcFaceLossWithMLP,
        "contrastive": ContrastiveLoss,
    },
)


def get_criterion(name: str, **kwargs: Any) -> nn.Module:
    """``LOSSES_REGISTRY[name](**kwargs)``; a ``miner`` given as a ``{name, args}`` block is built first, and
    arguments the loss does not take are dropped (as OML does: runtime arguments are offered to every loss)."""
    constructor = LOSSES_REGISTRY[name]
    if "miner" in kwargs and not hasattr(kwargs["miner"], "sample"):
        kwargs["miner"] = get_miner_by_cfg(kwargs["miner"])
    return constructor(**accepted_kwargs(constructor, kwargs))


def get_criterion_by_cfg(cfg: Any, **kwargs_runtime: Any) -> nn.Module:
    """The loss of a ``{name, args}`` block (a dict or an OmegaConf config), ``kwargs_runtime`` added to ``args``."""
    name, args = block_name_args(cfg, **kwargs_runtime)
    return get_criterion(name, **args)


__all__ = ["LOSSES_REGISTRY", "get_criterion", "get_criterion_by_cfg"]
