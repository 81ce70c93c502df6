"""Model inputs of any modality as one kind of value: a tensor (images ``[B, C, H, W]``, audio ``[B, C, T]``)
or a mapping of tensors (tokenised texts: ``{"input_ids": [B, L], "attention_mask": [B, L]}``).

Code that moves a batch's inputs or picks some of its rows (inference, the pairwise re-ranker and its
training) goes through these two functions, so that it works for every dataset of ``oml_fast.datasets``.

>>> batch = {"input_ids": torch.tensor([[1, 2], [3, 4], [5, 6]]), "attention_mask": torch.ones(3, 2)}
>>> take_items(batch, torch.tensor([2, 0]))["input_ids"]
tensor([[5, 6],
        [1, 2]])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


def inputs_to_device(inputs: Any, device: torch.device | str) -> Any:
    """``inputs`` on ``device``: a tensor moved, a mapping moved value by value (a plain ``dict``
    comes back), anything else with a ``.to`` method (a ``transformers`` ``BatchEncoding``) moved by it."""
    if isinstance(inputs, Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {key: inputs_to_device(value, device) for key, value in inputs.items()}
    if callable(getattr(inputs, "to", None)):
        return inputs.to(device)
    raise TypeError(
        f"model inputs must be a tensor or a mapping of tensors (tokenised texts), got {type(inputs).__name__}"
    )


def take_items(inputs: Any, ids: Tensor) -> Any:
    """The items ``ids`` (``LongTensor[K]``) of a batch of inputs: ``inputs[ids]`` for a tensor
    (``[B, ...] -> [K, ...]``), the same for every value of a mapping (a plain ``dict`` comes back)."""
    if isinstance(inputs, Tensor):
        return inputs[ids]
    if isinstance(inputs, Mapping):
        return {key: take_items(value, ids) for key, value in inputs.items()}
    raise TypeError(
        f"model inputs must be a tensor or a mapping of tensors (tokenised texts), got {type(inputs).__name__}"
    )


__all__ = ["inputs_to_device", "take_items"]
