"""Run a function on several local CPU processes joined in a ``gloo`` process group.

For trying data-parallel code on one machine (and for tests): no GPU, no network port (the processes
meet through a file store in a temporary folder, so concurrent runs cannot collide on a port).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(
    rank: int,
    world_size: int,
    store_path: str,
    results_dir: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    timeout_s: float,
    threads_per_process: int,
) -> None:
    torch.set_num_threads(threads_per_process)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store_path}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    try:
        result = fn(rank, world_size, *args)
        torch.save(result, Path(results_dir) / f"rank_{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_on_local_processes(
    fn: Callable[..., Any],
    world_size: int = 2,
    args: tuple[Any, ...] = (),
    timeout_s: float = 120.0,
    threads_per_process: int = 1,
) -> list[Any]:
    """Calls ``fn(rank, world_size, *args)`` in ``world_size`` spawned processes joined in a gloo group.

    Args:
        fn: a module-level function (it is pickled by name into the new processes); its return value
            must be picklable with ``torch.save``.
        world_size: number of processes (>= 1).
        args: extra arguments of ``fn`` (picklable).
        timeout_s: collectives that wait longer raise instead of hanging (a rank that fails or skips a
            collective would otherwise block the others forever).
        threads_per_process: torch intra-op threads of each process (the processes share the CPU).

    Returns:
        the return values, in rank order. An exception in any process is raised here with its traceback.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"`world_size` must be a positive integer, got {world_size!r}")
    with tempfile.TemporaryDirectory(prefix="oml_fast_ddp_") as folder:
        store_path = str(Path(folder) / "store")
        mp.spawn(
            _worker,
            args=(world_size, store_path, folder, fn, args, timeout_s, threads_per_process),
            nprocs=world_size,
            join=True,
        )
        return [torch.load(Path(folder) / f"rank_{r}.pt", weights_only=False) for r in range(world_size)]


__all__ = ["run_on_local_processes"]
