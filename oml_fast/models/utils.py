"""State-dict helpers for checkpoints saved by OML, Lightning or the original authors (OML's names).

>>> sd = {"model.norm.bias": 1, "model.head.weight": 2}
>>> remove_prefix_from_state_dict(sd, trial_key="norm.bias")
{'norm.bias': 1, 'head.weight': 2}
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, TypeVar

TStateDict = TypeVar("TStateDict", bound=MutableMapping[str, Any])

# Parameters of losses that Lightning checkpoints carry beside the model (OML's list).
CRITERION_KEYS = ("criterion.weight", "speaker_loss.weight")


def remove_criterion_in_state_dict(state_dict: TStateDict) -> TStateDict:
    """Drops the loss's parameters (``criterion.weight``, ...) from ``state_dict`` in place and returns it."""
    for key in CRITERION_KEYS:
        state_dict.pop(key, None)
    return state_dict


def find_prefix_in_state_dict(state_dict: MutableMapping[str, Any], trial_key: str) -> str:
    """The prefix in front of ``trial_key`` (e.g. ``"model."`` for ``"model.norm.bias"``), shared by every key.

    Raises ``KeyError`` when no key contains ``trial_key``, ``ValueError`` when some keys lack the prefix.
    """
    matching = [key for key in state_dict if trial_key in key]
    if not matching:
        raise KeyError(f"no key of the state dict contains '{trial_key}'; the keys are {list(state_dict)}")
    prefix = matching[0][: matching[0].index(trial_key)]
    other = [key for key in state_dict if not key.startswith(prefix)]
    if other:
        raise ValueError(f"keys without the prefix '{prefix}' found before '{trial_key}': {other}")
    return prefix


def remove_prefix_from_state_dict(state_dict: TStateDict, trial_key: str) -> TStateDict:
    """Strips from every key the prefix found in front of ``trial_key`` (see :func:`find_prefix_in_state_dict`).

    Works in place, keeping the order of the keys, and returns ``state_dict``.
    """
    prefix = find_prefix_in_state_dict(state_dict, trial_key)
    if prefix:
        items = list(state_dict.items())
        state_dict.clear()
        state_dict.update((key[len(prefix) :], value) for key, value in items)
    return state_dict


def filter_state_dict(state_dict: TStateDict, needed_keys: Iterable[str]) -> TStateDict:
    """Keeps only ``needed_keys`` in ``state_dict`` (in place) and returns it."""
    needed = set(needed_keys)
    for key in [key for key in state_dict if key not in needed]:
        del state_dict[key]
    return state_dict


__all__ = [
    "filter_state_dict",
    "find_prefix_in_state_dict",
    "remove_criterion_in_state_dict",
    "remove_prefix_from_state_dict",
]
