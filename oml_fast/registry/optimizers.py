"""Optimizers by name (OML's ``oml.registry.optimizers``): the ``torch.optim`` classes."""

from __future__ import annotations

from typing import Any

import torch.optim as opt

from oml_fast.registry.base import Registry, block_name_args

OPTIMIZERS_REGISTRY = Registry(
    "optimizers",
    {
        "adadelta": opt.Adadelta,
        "adagrad": opt.Adagrad,
        "adam": opt.Adam,
        "adamw": opt.AdamW,
        "adamax": opt.Adamax,
        "asgd": opt.ASGD,
        "lbfgs": opt.LBFGS,
        "rmsprop": opt.RMSprop,
        "rprop": opt.Rprop,
        "sgd": opt.SGD,
    },
)


def get_optimizer(name: str, **kwargs: Any) -> opt.Optimizer:
    """``OPTIMIZERS_REGISTRY[name](**kwargs)`` (``params`` among ``kwargs``)."""
    return OPTIMIZERS_REGISTRY[name](**kwargs)


def get_optimizer_by_cfg(cfg: Any, **kwargs_runtime: Any) -> opt.Optimizer:
    """The optimizer of a ``{name, args}`` block; pass ``params=...`` as a runtime argument."""
    name, args = block_name_args(cfg, **kwargs_runtime)
    return get_optimizer(name, **args)


__all__ = ["OPTIMIZERS_REGISTRY", "get_optimizer", "get_optimizer_by_cfg"]
