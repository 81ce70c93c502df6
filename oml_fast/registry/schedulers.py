"""Learning-rate schedulers by name (OML's ``oml.registry.schedulers``): the ``torch.optim.lr_scheduler`` classes."""

from __future__ import annotations

from typing import Any

from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    MultiplicativeLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)

from oml_fast.registry.base import Registry, block_name_args


class ReduceLROnPlateauPatch(ReduceLROnPlateau):
    """``ReduceLROnPlateau`` with ``get_last_lr`` (loggers of the learning rate call it)."""

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        return [group["lr"] for group in self.optimizer.param_groups]


SCHEDULERS_REGISTRY = Registry(
    "schedulers",
    {
        "lambda": LambdaLR,
        "multiplicative": MultiplicativeLR,
        "step": StepLR,
        "multi_step": MultiStepLR,
        "exponential": ExponentialLR,
        "cosine_annealing": CosineAnnealingLR,
        "cyclic": CyclicLR,
        "one_cycle": OneCycleLR,
        "reduce_on_plateau": ReduceLROnPlateauPatch,
    },
)


def get_scheduler(name: str, **kwargs: Any) -> Any:
    """``SCHEDULERS_REGISTRY[name](**kwargs)`` (``optimizer`` among ``kwargs``)."""
    return SCHEDULERS_REGISTRY[name](**kwargs)


def get_scheduler_by_cfg(cfg: Any, **kwargs_runtime: Any) -> Any:
    """The scheduler of a ``{name, args}`` block; pass ``optimizer=...`` at runtime."""
    name, args = block_name_args(cfg, **kwargs_runtime)
    return get_scheduler(name, **args)


__all__ = ["SCHEDULERS_REGISTRY", "ReduceLROnPlateauPatch", "get_scheduler", "get_scheduler_by_cfg"]
