"""OML's DDP helpers (``oml.ddp.utils``): is there a process group, rank / world size, merging dicts of all ranks.

Outside a process group every function is a no-op: ``is_ddp()`` is False, ``sync_dicts_ddp`` returns
its input (warning with :class:`WarningDDP` when a world size above 1 was asked for).

>>> is_ddp(), get_world_size_safe(), get_rank_safe(), is_main_process()
(False, 0, 0, True)
>>> merge_list_of_dicts([{"a": [1], "b": torch.tensor([1.0])}, {"a": [2], "b": torch.tensor([2.0])}])
{'a': [1, 2], 'b': tensor([1., 2.])}
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from oml_fast.distributed.comm import all_gather_object


class WarningDDP(UserWarning):
    """A DDP helper was called without an initialised process group and left its input unchanged."""

    def __init__(self, function_name: str):
        self.message = (
            f"'{function_name}' was called, but the default process group is not initialised: the data is "
            "returned unchanged. Call torch.distributed.init_process_group first, or ignore this warning "
            "if you run without DDP."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return repr(self.message)


def is_ddp() -> bool:
    """True inside an initialised default process group (of any size, as OML)."""
    return dist.is_available() and dist.is_initialized()


def get_world_size_safe() -> int:
    """The world size, or 0 outside a process group (OML's convention)."""
    return dist.get_world_size() if is_ddp() else 0


def get_rank_safe() -> int:
    """This process's rank, or 0 outside a process group."""
    return dist.get_rank() if is_ddp() else 0


def is_main_process() -> bool:
    """True on rank 0, and in a process without a process group."""
    return get_rank_safe() == 0


_MERGEABLE = (list, tuple, torch.Tensor, np.ndarray)


def merge_list_of_dicts(
    list_of_dicts: list[dict[str, Any]], device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Concatenates dicts key by key: lists / tuples chained, tensors ``torch.cat`` (moved to ``device``),
    arrays ``np.concatenate``. Every dict must have the same keys with values of the same types."""
    if not list_of_dicts:
        return {}
    signature = {(k, type(v)) for k, v in list_of_dicts[0].items()}
    for position, sample in enumerate(list_of_dicts):
        bad = [k for k, v in sample.items() if not isinstance(v, _MERGEABLE)]
        if bad:
            raise TypeError(
                f"only values of types {[t.__name__ for t in _MERGEABLE]} can be merged; "
                f"dict {position} has other types under {bad}"
            )
        if {(k, type(v)) for k, v in sample.items()} != signature:
            raise ValueError(
                f"every dict must have the same keys with values of the same types; dict {position} differs from dict 0"
            )
    output: dict[str, Any] = {}
    for key, first in list_of_dicts[0].items():
        if isinstance(first, (list, tuple)):
            output[key] = type(first)(itertools.chain(*[d[key] for d in list_of_dicts]))
        elif isinstance(first, torch.Tensor):
            output[key] = torch.cat([d[key].to(device) for d in list_of_dicts], dim=0)
        else:
            output[key] = np.concatenate([d[key] for d in list_of_dicts], axis=0)
    return output


def sync_dicts_ddp(
    outputs_from_device: dict[str, Any], world_size: int, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """The dicts of every rank merged (rank order, see :func:`merge_list_of_dicts`); every rank must call it.

    Objects travel pickled (``all_gather_object``). Without a process group the input comes back as is.
    """
    if world_size >= 1 and is_ddp():
        return merge_list_of_dicts(all_gather_object(outputs_from_device), device)
    if world_size > 1:
        warnings.warn(WarningDDP(sync_dicts_ddp.__name__), stacklevel=2)
    return outputs_from_device


__all__ = [
    "WarningDDP",
    "get_rank_safe",
    "get_world_size_safe",
    "is_ddp",
    "is_main_process",
    "merge_list_of_dicts",
    "sync_dicts_ddp",
]
