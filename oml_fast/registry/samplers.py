"""Batch samplers by name (OML's ``oml.registry.samplers``)."""

from __future__ import annotations

from typing import Any

from oml_fast.registry.base import Registry, accepted_kwargs, block_name_args
from oml_fast.samplers import BalanceSampler, CategoryBalanceSampler, DistinctCategoryBalanceSampler

SAMPLERS_CATEGORIES_BASED = Registry(
    "category samplers",
    {"category_balance": CategoryBalanceSampler, "distinct_category_balance": DistinctCategoryBalanceSampler},
)

SAMPLERS_REGISTRY = Registry("samplers", {**SAMPLERS_CATEGORIES_BASED, "balance": BalanceSampler})


def get_sampler(name: str, **kwargs: Any) -> Any:
    """``SAMPLERS_REGISTRY[name](**kwargs)``, arguments the sampler does not take dropped (``label2category``
    reaches only the category samplers)."""
    constructor = SAMPLERS_REGISTRY[name]
    return constructor(**accepted_kwargs(constructor, kwargs))


def get_sampler_by_cfg(cfg: Any, **kwargs_runtime: Any) -> Any:
    """The sampler of a ``{name, args}`` block; pass ``labels=...`` (and ``label2category``) at runtime."""
    name, args = block_name_args(cfg, **kwargs_runtime)
    return get_sampler(name, **args)


__all__ = ["SAMPLERS_REGISTRY", "SAMPLERS_CATEGORIES_BASED", "get_sampler", "get_sampler_by_cfg"]
