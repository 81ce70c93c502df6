"""Registries: config names -> classes, and builders that check names and argument keys.

A config block is ``{name: <registered name>, args: {...}}``. An unknown name is an error listing
the registered names; an argument the class does not take is an error listing the ones it takes.
Classes are imported only when built, so the registry loads even where an optional library
(torchvision, timm) is missing.

>>> build("optimizers", {"name": "sgd", "args": {"lr": 0.1}}, params=[torch.zeros(1, requires_grad=True)])
SGD (...
>>> build("optimizers", {"name": "sgdd", "args": {}})
Traceback (most recent call last):
...
oml_fast.pipelines.registry.RegistryError: unknown optimizers name 'sgdd' (did you mean 'sgd'?); valid names: ['adam', 'adamw', 'rmsprop', 'sgd']
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch

REGISTRIES: dict[str, dict[str, str]] = {
    "extractors": {
        "small_cnn": "oml_fast.models:SmallCNNExtractor",
        "extractor_with_mlp": "oml_fast.models:ExtractorWithMLP",
        "resnet": "oml_fast.models:ResnetExtractor",
        "vit": "oml_fast.models:ViTExtractor",
    },
    "losses": {
        "triplet": "oml_fast.losses:TripletLoss",
        "triplet_plain": "oml_fast.losses:TripletLossPlain",
        "triplet_with_miner": "oml_fast.losses:TripletLossWithMiner",
        "contrastive": "oml_fast.losses:ContrastiveLoss",
        "arcface": "oml_fast.losses:ArcFaceLoss",
        "arcface_with_mlp": "oml_fast.losses:ArcFaceLossWithMLP",
        "surrogate_precision": "oml_fast.losses:SurrogatePrecision",
    },
    "miners": {
        "all_triplets": "oml_fast.miners:AllTripletsMiner",
        "hard_triplets": "oml_fast.miners:HardTripletsMiner",
        "n_hard_triplets": "oml_fast.miners:NHardTripletsMiner",
        "hard_cluster": "oml_fast.miners:HardClusterMiner",
        "triplets_with_memory": "oml_fast.miners:TripletMinerWithMemory",
        "miner_with_bank": "oml_fast.miners:MinerWithBank",
        "pairs": "oml_fast.miners:PairsMiner",
    },
    "samplers": {
        "balance": "oml_fast.samplers:BalanceSampler",
        "category_balance": "oml_fast.samplers:CategoryBalanceSampler",
        "distinct_category_balance": "oml_fast.samplers:DistinctCategoryBalanceSampler",
    },
    "optimizers": {
        "adam": "torch.optim:Adam",
        "adamw": "torch.optim:AdamW",
        "sgd": "torch.optim:SGD",
        "rmsprop": "torch.optim:RMSprop",
    },
    "schedulers": {
        "step": "torch.optim.lr_scheduler:StepLR",
        "multi_step": "torch.optim.lr_scheduler:MultiStepLR",
        "exponential": "torch.optim.lr_scheduler:ExponentialLR",
        "cosine": "torch.optim.lr_scheduler:CosineAnnealingLR",
        "one_cycle": "torch.optim.lr_scheduler:OneCycleLR",
        "linear": "torch.optim.lr_scheduler:LinearLR",
    },
    "transforms": {
        "image_norm": "oml_fast.datasets.transforms:ImageNormalisation",
        "image_augs": "oml_fast.datasets.transforms:ImageAugmentation",
    },
    "loggers": {
        "tensorboard": "lightning.pytorch.loggers:TensorBoardLogger",
        "csv": "lightning.pytorch.loggers:CSVLogger",
    },
}

# Arguments that hold a nested ``{name, args}`` block of another registry.
NESTED_BLOCKS = {"miner": "miners", "extractor": "extractors"}


class RegistryError(KeyError):
    """Unknown registered name, or an argument the class does not take. The message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def get_class(registry: str, name: str) -> type[Any]:
    """The class registered as ``name`` in ``registry`` (imported now)."""
    if registry not in REGISTRIES:
        raise RegistryError(f"unknown registry '{registry}'; valid: {sorted(REGISTRIES)}")
    entries = REGISTRIES[registry]
    if name not in entries:
        raise RegistryError(
            f"unknown {registry} name '{name}'{_suggest(str(name), sorted(entries))}; valid names: {sorted(entries)}"
        )
    module_name, class_name = entries[name].split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"{registry} '{name}' needs {entries[name]}, which cannot be imported: {error}"
        ) from error


def accepted_args(cls: type[Any]) -> list[str] | None:
    """Names of the constructor arguments of ``cls`` (``None`` when it takes ``**kwargs``)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def check_block(registry: str, block: Any, where: str) -> tuple[str, dict[str, Any]]:
    """Validates the shape of a ``{name, args}`` block; returns ``(name, args)``."""
    if not isinstance(block, Mapping) or "name" not in block:
        raise RegistryError(f"`{where}` must be a mapping with keys `name` and `args`, got {block!r}")
    extra = sorted(set(block) - {"name", "args"})
    if extra:
        raise RegistryError(f"`{where}` has unknown key(s) {extra}; valid keys: ['args', 'name']")
    args = block.get("args") or {}
    if not isinstance(args, Mapping):
        raise RegistryError(f"`{where}.args` must be a mapping, got {args!r}")
    return str(block["name"]), dict(args)


def build(registry: str, block: Any, where: str | None = None, **runtime_args: Any) -> Any:
    """Instantiates the class of ``block['name']`` with ``block['args']`` plus ``runtime_args``.

    Nested blocks (``miner`` in losses, ``extractor`` in ``extractor_with_mlp``) are built first.
    ``runtime_args`` are the ones the pipeline supplies (``params`` of optimizers, ``labels`` of
    samplers, ...); a runtime argument the class does not take is skipped.
    """
    where = where or registry
    name, args = check_block(registry, block, where)
    cls = get_class(registry, name)
    valid = accepted_args(cls)
    if valid is not None:
        unknown = sorted(set(args) - set(valid))
        if unknown:
            raise RegistryError(
                f"`{where}.args` has argument(s) {unknown} that {registry} '{name}' ({cls.__name__}) does not take"
                f"{_suggest(unknown[0], valid)}; valid arguments: {valid}"
            )
    named = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    # Runtime arguments go only to classes that name them; the config's args win over them.
    runtime_args = {k: v for k, v in runtime_args.items() if k in named and k not in args}
    for key, nested_registry in NESTED_BLOCKS.items():
        if isinstance(args.get(key), Mapping) and "name" in args[key]:
            args[key] = build(nested_registry, args[key], where=f"{where}.args.{key}")
    try:
        return cls(**runtime_args, **args)
    except TypeError as error:
        raise RegistryError(
            f"cannot build {registry} '{name}' from `{where}.args` = {args}: {error}"
        ) from error


def build_optimizer(block: Any, params: Any) -> torch.optim.Optimizer:
    """An optimizer over ``params`` from ``{name, args}``."""
    return build("optimizers", block, where="optimizer", params=params)


def check_block_args(registry: str, block: Any, where: str) -> None:
    """Checks a ``{name, args}`` block (and its nested blocks) without building it: the name is
    registered and every argument is one the class takes. Raises :class:`RegistryError`."""
    name, args = check_block(registry, block, where)
    cls = get_class(registry, name)
    valid = accepted_args(cls)
    if valid is not None:
        unknown = sorted(set(args) - set(valid))
        if unknown:
            raise RegistryError(
                f"`{where}.args` has argument(s) {unknown} that {registry} '{name}' ({cls.__name__}) does not take"
                f"{_suggest(unknown[0], valid)}; valid arguments: {valid}"
            )
    for key, nested_registry in NESTED_BLOCKS.items():
        if isinstance(args.get(key), Mapping) and "name" in args[key]:
            check_block_args(nested_registry, args[key], f"{where}.args.{key}")
