"""Extractors and pairwise models by name (OML's ``oml.registry.models``); ``small_cnn``, ``hf_wrapper`` (texts)
and ``ecapa_tdnn`` (audio) are oml_fast additions."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from oml_fast.models import (
    ConcatSiamese,
    ECAPATDNNExtractor,
    ExtractorWithMLP,
    LinearTrivialDistanceSiamese,
    ResnetExtractor,
    SmallCNNExtractor,
    TrivialDistanceSiamese,
    ViTCLIPExtractor,
    ViTExtractor,
    ViTUnicomExtractor,
)
from oml_fast.models.texts import hf_wrapper
from oml_fast.registry.base import Registry, block_name_args, to_plain_dict

EXTRACTORS_REGISTRY = Registry(
    "extractors",
    {
        "resnet": ResnetExtractor,
        "vit": ViTExtractor,
        "vit_clip": ViTCLIPExtractor,
        "vit_unicom": ViTUnicomExtractor,
        "extractor_with_mlp": ExtractorWithMLP,
        "small_cnn": SmallCNNExtractor,
        # texts and audio (oml_fast's names; OML's pipelines build image extractors only)
        "hf_wrapper": hf_wrapper,
        "ecapa_tdnn": ECAPATDNNExtractor,
    },
)

PAIRWISE_MODELS_REGISTRY = Registry(
    "pairwise models",
    {
        "linear_siamese": LinearTrivialDistanceSiamese,
        "concat_siamese": ConcatSiamese,
        "trivial_distance_siamese": TrivialDistanceSiamese,
    },
)


def _get_model(model_name: str, registry: Registry, **kwargs: Any) -> nn.Module:
    extractor_cfg = kwargs.get("extractor")
    if extractor_cfg is not None and not isinstance(extractor_cfg, nn.Module):
        extractor_cfg = to_plain_dict(extractor_cfg)
        kwargs["extractor"] = get_extractor_by_cfg(extractor_cfg)
        inner_weights = (extractor_cfg.get("args") or {}).get("weights")
        if inner_weights and kwargs.get("weights"):
            raise ValueError(f"give weights either to {model_name} or to its inner extractor, not to both")
        if kwargs.get("weights"):
            warnings.warn(
                f"the weights given to {model_name} overwrite those of its inner extractor", stacklevel=3
            )
    return registry[model_name](**kwargs)


def get_extractor(model_name: str, **kwargs: Any) -> nn.Module:
    """``EXTRACTORS_REGISTRY[model_name](**kwargs)``; a nested ``extractor`` block is built first."""
    return _get_model(model_name, EXTRACTORS_REGISTRY, **kwargs)


def get_extractor_by_cfg(cfg: Any) -> nn.Module:
    """The extractor of a ``{name, args}`` block."""
    name, args = block_name_args(cfg)
    return get_extractor(name, **args)


def get_pairwise_model(model_name: str, **kwargs: Any) -> nn.Module:
    """``PAIRWISE_MODELS_REGISTRY[model_name](**kwargs)``; a nested ``extractor`` block is built first."""
    return _get_model(model_name, PAIRWISE_MODELS_REGISTRY, **kwargs)


def get_pairwise_model_by_cfg(cfg: Any) -> nn.Module:
    """The pairwise model of a ``{name, args}`` block."""
    name, args = block_name_args(cfg)
    return get_pairwise_model(name, **args)


__all__ = [
    "EXTRACTORS_REGISTRY",
    "PAIRWISE_MODELS_REGISTRY",
    "get_extractor",
    "get_extractor_by_cfg",
    "get_pairwise_model",
    "get_pairwise_model_by_cfg",
]
