"""Data-parallel training and validation over ``torch.distributed`` (DDP through Lightning, or ``torchrun``).

- :func:`sharded_knn` / :func:`distributed_knn`: exact kNN with the gallery split across ranks,
  identical to a single process on every rank.
- :class:`EmbeddingMetricsDDP`: ``EmbeddingMetrics`` over the batches of all ranks.
- :class:`DDPBatchSamplerWrapper`: whole batches of a batch sampler per rank, equal counts per rank.
- :class:`RankShardSampler`: a sequence split across ranks (validation loaders).
- :func:`run_on_local_processes`: a function on several local gloo processes (trying DDP code, tests).
- :mod:`~oml_fast.distributed.comm`: rank / world size and all-gathers of variable-size tensors.

Everything is a no-op (or a plain pass-through) in a single process.
"""

from .comm import all_gather_object, all_gather_rows, get_rank, get_world_size, is_distributed
from .knn import distributed_knn, merge_topk, shard_bounds, sharded_knn
from .launch import run_on_local_processes
from .metrics import EmbeddingMetricsDDP
from .samplers import DDPBatchSamplerWrapper, RankShardSampler

__all__ = [
    "all_gather_object",
    "all_gather_rows",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "sharded_knn",
    "distributed_knn",
    "merge_topk",
    "shard_bounds",
    "EmbeddingMetricsDDP",
    "DDPBatchSamplerWrapper",
    "RankShardSampler",
    "run_on_local_processes",
]
