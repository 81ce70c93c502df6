"""Retrieval post-processors by name (OML's ``oml.registry.postprocessors``)."""

from __future__ import annotations

from typing import Any

from oml_fast.registry.base import Registry, block_name_args
from oml_fast.registry.models import get_pairwise_model_by_cfg
from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding, PairwiseReranker

POSTPROCESSORS_REGISTRY = Registry(
    "postprocessors",
    {
        "pairwise_reranker": PairwiseReranker,
        "constant_thresholding": ConstantThresholding,
        "adaptive_thresholding": AdaptiveThresholding,
    },
)


def get_postprocessor(name: str, **kwargs: Any) -> Any:
    """``POSTPROCESSORS_REGISTRY[name](**kwargs)``; a ``pairwise_model`` block is built first."""
    constructor = POSTPROCESSORS_REGISTRY[name]
    model = kwargs.get("pairwise_model")
    if model is not None and not hasattr(model, "predict"):
        kwargs["pairwise_model"] = get_pairwise_model_by_cfg(model)
    return constructor(**kwargs)


def get_postprocessor_by_cfg(cfg: Any) -> Any:
    """The post-processor of a ``{name, args}`` block."""
    name, args = block_name_args(cfg)
    return get_postprocessor(name, **args)


__all__ = ["POSTPROCESSORS_REGISTRY", "get_postprocessor", "get_postprocessor_by_cfg"]
