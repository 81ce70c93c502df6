"""Registries: config names -> classes, and builders that check names and argument keys.

A config block is ``{name: <registered name>, args: {...}}``. An unknown name is an error listing
the registered names; an argument the class does not take is an error listing the ones it takes.
The entries are those of :mod:`oml_fast.registry` (OML's names) plus a few pipeline names.

>>> build("optimizers", {"name": "sgd", "args": {"lr": 0.1}}, params=[torch.zeros(1, requires_grad=True)])
SGD (...
>>> build("optimizers", {"name": "sgdd", "args": {}})
Traceback (most recent call last):
...
oml_fast.registry.base.RegistryError: unknown optimizers name 'sgdd' (did you mean 'sgd'?); valid names: ['adadelta', 'adagrad', 'adam', 'adamax', 'adamw', 'asgd', 'lbfgs', 'rmsprop', 'rprop', 'sgd']
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR

from oml_fast.losses import ArcFaceLossWithMLP
from oml_fast.miners import PairsMiner
from oml_fast.registry import (
    EXTRACTORS_REGISTRY,
    LOSSES_REGISTRY,
    MINERS_REGISTRY,
    OPTIMIZERS_REGISTRY,
    PAIRWISE_MODELS_REGISTRY,
    POSTPROCESSORS_REGISTRY,
    SAMPLERS_REGISTRY,
    SCHEDULERS_REGISTRY,
    TRANSFORMS_REGISTRY,
)
from oml_fast.registry.base import RegistryError
from oml_fast.registry.base import suggest as _suggest
from oml_fast.transforms import ImageAugmentation, ImageNormalisation

# The OML registries (``oml_fast.registry``: classes registered there, custom ones included, are valid
# config names here too), plus names the pipeline configs use beside OML's. Entries are classes or
# factories, or ``"module:Name"`` strings imported when built (optional libraries).
REGISTRIES: dict[str, Mapping[str, Any]] = {
    "extractors": EXTRACTORS_REGISTRY,
    "pairwise_models": PAIRWISE_MODELS_REGISTRY,
    "losses": ChainMap({"arcface_with_mlp": ArcFaceLossWithMLP}, LOSSES_REGISTRY),
    "miners": ChainMap({"pairs": PairsMiner}, MINERS_REGISTRY),
    "samplers": SAMPLERS_REGISTRY,
    "optimizers": OPTIMIZERS_REGISTRY,
    "schedulers": ChainMap({"cosine": CosineAnnealingLR, "linear": LinearLR}, SCHEDULERS_REGISTRY),
    "transforms": ChainMap(
        {"image_norm": ImageNormalisation, "image_augs": ImageAugmentation}, TRANSFORMS_REGISTRY
    ),
    "postprocessors": POSTPROCESSORS_REGISTRY,
    # Lightning's loggers (OML's names); each but TensorBoard and CSV needs its extra: LOGGER_EXTRAS.
    "loggers": {
        "tensorboard": "oml_fast.lightning.pipelines.logging:TensorBoardPipelineLogger",
        "csv": "lightning.pytorch.loggers:CSVLogger",
        "mlflow": "oml_fast.lightning.pipelines.logging:MLFlowPipelineLogger",
        "wandb": "oml_fast.lightning.pipelines.logging:WandBPipelineLogger",
        "neptune": "oml_fast.lightning.pipelines.logging:NeptunePipelineLogger",
        "clearml": "oml_fast.lightning.pipelines.logging:ClearMLPipelineLogger",
    },
}
# The package each logger needs, and the extra of oml-fast that installs it.
LOGGER_EXTRAS = {
    "tensorboard": ("tensorboard", "pipeline"),
    "mlflow": ("mlflow", "mlflow"),
    "wandb": ("wandb", "wandb"),
    "neptune": ("neptune", "neptune"),
    "clearml": ("clearml", "clearml"),
}

# Arguments that hold a nested ``{name, args}`` block of another registry.
NESTED_BLOCKS = {"miner": "miners", "extractor": "extractors", "pairwise_model": "pairwise_models"}


def get_class(registry: str, name: str) -> type[Any]:
    """The class registered as ``name`` in ``registry`` (imported now)."""
    if registry not in REGISTRIES:
        raise RegistryError(f"unknown registry '{registry}'; valid: {sorted(REGISTRIES)}")
    entries = REGISTRIES[registry]
    if name not in entries:
        raise RegistryError(
            f"unknown {registry} name '{name}'{_suggest(str(name), sorted(entries))}; valid names: {sorted(entries)}"
        )
    entry = entries[name]
    if not isinstance(entry, str):
        return entry
    module_name, class_name = entry.split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as error:
        if registry == "loggers" and name in LOGGER_EXTRAS:
            package, extra = LOGGER_EXTRAS[name]
            raise ImportError(
                f"logger '{name}' needs the package `{package}`, which is not installed: "
                f"pip install 'oml-fast[{extra}]' (or `pip install {package}`)"
            ) from error
        raise ImportError(
            f"{registry} '{name}' needs {entries[name]}, which cannot be imported: {error}"
        ) from error


def accepted_args(cls: type[Any]) -> list[str] | None:
    """Names of the constructor arguments of ``cls`` (``None`` when it takes ``**kwargs``)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _expected(param: inspect.Parameter) -> str | None:
    """``"a number"`` / ``"a bool"`` when the argument's default or annotation says so, else ``None``."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        text = ""
    elif isinstance(annotation, str):
        text = annotation
    else:
        text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    names = set(re.findall(r"[A-Za-z_]\w*", text.replace("NoneType", "None"))) - {"typing"}
    default = param.default
    if "str" in names or "Any" in names:
        return None
    if isinstance(default, bool) or (names and names <= {"bool", "None", "Optional"} and "bool" in names):
        return "a bool"
    if (isinstance(default, (int, float)) and not isinstance(default, bool)) or (
        names and names <= {"int", "float", "None", "Optional"}
    ):
        return "a number"
    return None


def check_arg_types(cls: Any, args: Mapping[str, Any], where: str) -> None:
    """Raises :class:`RegistryError` for an argument whose value is not of the kind its default or
    annotation shows (a number, a bool); ``null`` passes where the default is ``None``."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key, value in args.items():
        param = params.get(key)
        if param is None:
            continue
        if value is None and (param.default is None or re.search(r"None|Optional", str(param.annotation))):
            continue
        expected = _expected(param)
        if expected == "a bool" and not isinstance(value, bool):
            ok = False
        elif expected == "a number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = True
        if not ok:
            raise RegistryError(
                f"`{where}.args`: `{key}` must be {expected}, got {value!r} ({type(value).__name__})"
            )


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
    check_arg_types(cls, args, where)
    named = [n for n in inspect.signature(cls).parameters if n != "self"]
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
    check_arg_types(cls, args, where)
    for key, nested_registry in NESTED_BLOCKS.items():
        if isinstance(args.get(key), Mapping) and "name" in args[key]:
            check_block_args(nested_registry, args[key], f"{where}.args.{key}")
