"""General helpers of OML's ``oml.utils.misc``: seeding, dict flattening, sampling, argument checks.

Same names, arguments and results as OML 4.0. ``omegaconf`` and ``matplotlib`` (``pipeline`` extra)
are imported only by the helpers that need them.

>>> flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": 3})
{'a/b': 1, 'a/c/d': 2, 'e': 3}
"""

from __future__ import annotations

import inspect
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from oml_fast.errors import InvalidInputError
from oml_fast.visualization import html_blocks_to_grid, visualize_text  # noqa: F401  (OML's names here too)


class CompatibilityError(Exception):
    """An object's signature has none of the argument names a caller can pass a value under."""


def adapt_argument_as_kwarg(obj: Callable, candidates: list[str], value: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    """``{name: value}`` for the first of ``candidates`` that ``obj`` accepts as an argument.

    >>> adapt_argument_as_kwarg(lambda lr, momentum=0: None, ["learning_rate", "lr"], 0.1)
    {'lr': 0.1}
    """
    parameters = list(inspect.signature(obj).parameters)
    for name in candidates:
        if name in parameters:
            return {name: value}
    raise CompatibilityError(f"No argument of {obj} is one of {candidates}; its arguments are {parameters}")


def find_value_ids(it: Iterable[Any], value: Any) -> list[int]:
    """Positions of the elements of ``it`` equal to ``value``.

    >>> find_value_ids([3, 1, 3], 3)
    [0, 2]
    """
    if isinstance(it, np.ndarray):
        return np.flatnonzero(it == value).tolist()
    return [i for i, element in enumerate(it) if element == value]


def set_global_seed(seed: int) -> None:
    """Seeds Python's ``random``, NumPy and torch (CUDA included), makes cuDNN deterministic when CUDA is
    available, and sets ``PL_SEED_WORKERS=1`` so that Lightning seeds the dataloader workers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    os.environ["PL_SEED_WORKERS"] = "1"


def one_hot(i: int, dim: int) -> Tensor:
    """A float vector of length ``dim`` with 1 at position ``i``.

    >>> one_hot(1, 3)
    tensor([0., 1., 0.])
    """
    vector = torch.zeros(dim)
    vector[i] = 1
    return vector


def flatten_dict(
    d: dict[str, Any], parent_key: str = "", sep: str = "/", ignored_keys: Iterable[str] = ()
) -> dict[str, Any]:
    """Nested dicts flattened into one level with keys joined by ``sep``; ``ignored_keys`` (at any level)
    are dropped with their values."""
    ignored = set(ignored_keys)
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if key in ignored:
            continue
        name = f"{parent_key}{sep}{key}" if parent_key else str(key)
        if isinstance(value, dict):
            flat.update(flatten_dict(value, name, sep=sep, ignored_keys=ignored))
        else:
            flat[name] = value
    return flat


def dictconfig_to_dict(cfg: Any) -> dict[str, Any]:
    """An omegaconf ``DictConfig`` (interpolations resolved) or a dict of them, as plain nested dicts."""
    if type(cfg).__name__ == "DictConfig":
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    return {
        key: dictconfig_to_dict(value)
        if isinstance(value, dict) or type(value).__name__ == "DictConfig"
        else value
        for key, value in cfg.items()
    }


def smart_sample(array: list[Any], k: int) -> list[Any]:
    """``k`` items of ``array`` (of unique items): without repetition when there are enough; otherwise every
    item once plus ``k - len(array)`` drawn with repetition. Uses NumPy's global RNG."""
    if len(array) >= k:
        return np.random.choice(array, size=k, replace=False).tolist()
    every_item = np.random.choice(array, size=len(array), replace=False).tolist()
    return every_item + np.random.choice(array, size=k - len(array), replace=True).tolist()


def clip_max(arr: tuple[int, ...], max_el: int) -> tuple[int, ...]:
    """Every element capped at ``max_el``.

    >>> clip_max((1, 5, 10), 5)
    (1, 5, 5)
    """
    return tuple(min(x, max_el) for x in arr)


def remove_unused_kwargs(kwargs: dict[str, Any], function: Any) -> dict[str, Any]:
    """The entries of ``kwargs`` that are arguments of ``function``."""
    parameters = inspect.signature(function).parameters
    return {key: value for key, value in kwargs.items() if key in parameters}


def check_if_nonempty_positive_integers(var: int | Sequence[int], name: str) -> None:
    """Raises ``InvalidInputError``, a ``ValueError`` (naming ``name``), unless ``var`` is a positive int or a non-empty sequence of them."""
    if isinstance(var, Sequence):
        if not var or not all(isinstance(x, int) and x > 0 for x in var):
            raise InvalidInputError(
                f"{name} is expected to be non-empty and contain positive integers, but got {var}"
            )
    elif isinstance(var, int):
        if var <= 0:
            raise InvalidInputError(f"{name} is expected to be a positive integer, but got {var}")
    else:
        raise InvalidInputError(
            f"Unsupported argument type. Expected int or Iterable[int], but got {type(var)}"
        )


def compare_dicts_recursively(d1: dict, d2: dict) -> bool:  # type: ignore[type-arg]
    """True if the (nested) dicts are equal (tensors by ``allclose``); otherwise raises ``AssertionError``
    saying where they differ, as OML's tests expect."""
    if set(d1) != set(d2):
        raise AssertionError(f"The dictionaries keys are different: {set(d1)} vs {set(d2)}")
    for key, value in d1.items():
        other = d2[key]
        if isinstance(value, dict):
            compare_dicts_recursively(value, other)
        elif isinstance(value, Tensor):
            if not torch.allclose(other, value):
                raise AssertionError(f"The dictionaries differ at key {key}: {value} vs {other}")
        elif other != value:
            raise AssertionError(f"The dictionaries differ at key {key}: {value} vs {other}")
    return True


def pad_array_right(arr: np.ndarray, required_len: int, val: float | int) -> np.ndarray:
    """1-D ``arr`` padded on the right with ``val`` up to ``required_len``."""
    if arr.ndim != 1 or required_len < len(arr):
        raise InvalidInputError(
            f"`arr` must be 1-D and not longer than `required_len`={required_len}, got shape {arr.shape}"
        )
    return np.pad(arr, (0, required_len - len(arr)), mode="constant", constant_values=val)


@contextmanager
def matplotlib_backend(backend: str) -> Iterator[None]:
    """Switches matplotlib's backend inside the block, then restores the previous one."""
    import matplotlib

    previous = matplotlib.get_backend()
    try:
        matplotlib.use(backend)
        yield
    finally:
        matplotlib.use(previous)


__all__ = [
    "CompatibilityError",
    "adapt_argument_as_kwarg",
    "find_value_ids",
    "set_global_seed",
    "one_hot",
    "flatten_dict",
    "dictconfig_to_dict",
    "smart_sample",
    "clip_max",
    "remove_unused_kwargs",
    "check_if_nonempty_positive_integers",
    "compare_dicts_recursively",
    "pad_array_right",
    "visualize_text",
    "matplotlib_backend",
    "html_blocks_to_grid",
]
