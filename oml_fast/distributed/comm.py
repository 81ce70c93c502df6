"""Rank, world size and all-gathers of variable-size tensors over ``torch.distributed``.

Every function works in a single process (no process group, or a group of one) and then does
nothing: the rank is 0, the world size 1, and a gather returns its input.

>>> get_rank(), get_world_size(), is_distributed()
(0, 1, False)
>>> all_gather_rows(torch.arange(6).reshape(3, 2)).tolist()
[[0, 1], [2, 3], [4, 5]]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """The number of processes (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def communication_device(tensor: Tensor | None = None) -> torch.device:
    """The device collectives need: CUDA for NCCL (the current device), the tensor's device or CPU otherwise."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device if tensor is not None else torch.device("cpu")


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects); ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_gather_rows_per_rank(tensor: Tensor) -> list[Tensor]:
    """All-gathers tensors whose first dimension differs between ranks.

    Args:
        tensor (Tensor[n_rank, ...]): this rank's rows; the trailing shape and the dtype must be equal on
            every rank (``n_rank`` may be 0).

    Returns:
        one tensor per rank, in rank order, on ``tensor``'s device. Each rank pads its rows to the largest
        ``n_rank`` for the collective (``all_gather`` needs equal shapes) and the padding is cut off.

    Raises ``ValueError`` (on every rank) when the trailing shapes or the dtypes differ between ranks.
    """
    if not is_distributed():
        return [tensor]
    meta = all_gather_object((tuple(tensor.shape), str(tensor.dtype)))
    trailing = {shape[1:] for shape, _ in meta}
    dtypes = {dtype for _, dtype in meta}
    if len(trailing) != 1 or len(dtypes) != 1:
        raise ValueError(
            f"all ranks must gather tensors of one trailing shape and dtype, got (shape, dtype) per rank: {meta}"
        )
    sizes = [shape[0] for shape, _ in meta]
    device = communication_device(tensor)
    padded = torch.zeros((max(sizes), *tensor.shape[1:]), dtype=tensor.dtype, device=device)
    padded[: len(tensor)] = tensor.to(device)
    buffers = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(buffers, padded)
    return [buffer[:size].to(tensor.device) for buffer, size in zip(buffers, sizes)]


def all_gather_rows(tensor: Tensor) -> Tensor:
    """The rows of every rank concatenated in rank order (``torch.cat`` of :func:`all_gather_rows_per_rank`)."""
    return torch.cat(all_gather_rows_per_rank(tensor))


__all__ = [
    "is_distributed",
    "get_rank",
    "get_world_size",
    "communication_device",
    "all_gather_object",
    "all_gather_rows_per_rank",
    "all_gather_rows",
]
