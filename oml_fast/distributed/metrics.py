"""EmbeddingMetrics under data parallelism: gather every rank's embeddings, split the search.

Each rank feeds ``update`` with the batches it saw (a ``DistributedSampler`` or
:class:`~oml_fast.distributed.samplers.RankShardSampler` gives each rank a part of the validation set,
padded with duplicates). :meth:`EmbeddingMetricsDDP.sync` all-gathers the embeddings with their
dataset indices and places them by index, so duplicates overwrite themselves and every rank holds
the same ``[N, D]`` matrix (as in OML: ``N x D`` is small next to the ``N x N`` distances). The
retrieval is then split: each rank searches its slice of the gallery for all queries and the top-k
lists are merged (:func:`~oml_fast.distributed.knn.distributed_knn`), so metrics equal the
single-process ones on every rank. ``compute_metrics`` is a collective: call it on every rank.
"""

from __future__ import annotations

import torch

from ..metrics.embeddings import EmbeddingMetrics
from .comm import all_gather_object, all_gather_rows, is_distributed
from .knn import distributed_knn


class EmbeddingMetricsDDP(EmbeddingMetrics):
    """:class:`~oml_fast.metrics.EmbeddingMetrics` whose results are those of the union of all ranks' batches.

    Same arguments as ``EmbeddingMetrics``. In a single process it is ``EmbeddingMetrics``.

    >>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    >>> calc = EmbeddingMetricsDDP(InMemoryQueryGalleryDataset(labels=[0, 0, 1, 1]), cmc_top_k=(1,),
    ...                            precision_top_k=(1,), map_top_k=(1,), pcf_variance=(), verbose=False)
    >>> calc.setup()
    >>> calc.update(torch.tensor([[0.0], [0.1], [1.0], [3.0]]), indices=[0, 1, 2, 3])
    >>> calc.compute_metrics()["OVERALL"]["cmc"][1]
    tensor(0.7500)
    """

    knn_function = staticmethod(distributed_knn)
    allow_repeated_indices = True  # the samplers' padding repeats items, on a rank and across ranks

    def setup(self, num_samples: int | None = None) -> None:
        super().setup(num_samples)
        self._synced = False

    def update(self, embeddings: torch.Tensor, indices: object) -> None:
        super().update(embeddings, indices)
        self._synced = False

    def sync(self) -> None:
        """All-gathers the collected embeddings and indices of every rank (a collective; no-op in one process).

        Raises ``ValueError`` on every rank when ranks set up different numbers of samples or gathered
        embeddings of different widths or dtypes.
        """
        if not is_distributed() or getattr(self, "_synced", False):
            return
        if self.acc.num_samples is None:
            self.setup()
        storage, key = self.acc.storage, self._acc_embeddings_key
        stored = storage.get(key)
        local = None if stored is None else stored[: self.acc.collected_samples]
        assert local is None or isinstance(local, torch.Tensor)
        meta = all_gather_object(
            (self.acc.num_samples, None if local is None else (local.shape[1], str(local.dtype)))
        )
        if len({num_samples for num_samples, _ in meta}) != 1:
            raise ValueError(f"ranks set up different numbers of samples: {[m[0] for m in meta]}")
        formats = {fmt for _, fmt in meta if fmt is not None}
        if len(formats) > 1:
            raise ValueError(f"ranks collected embeddings of different (width, dtype): {sorted(formats)}")
        if not formats:
            raise ValueError("No embeddings were collected on any rank: call `update()` first")
        width, dtype_name = formats.pop()
        if local is None:
            rows = torch.zeros(0, width, dtype=getattr(torch, dtype_name.removeprefix("torch.")))
            indices = torch.zeros(0, dtype=torch.int64)
        else:
            rows = local
            indices = torch.tensor(storage[self.acc._indices_key], dtype=torch.int64)
        all_rows = all_gather_rows(rows)
        all_indices = all_gather_rows(indices.to(rows.device)).cpu()
        # Every rank now holds every rank's rows; `acc.sync()` (in `embeddings`) orders them by dataset
        # index and drops duplicates (DistributedSampler's padding), the same on every rank, without
        # gathering again.
        self.acc.refresh(max(len(all_rows), 1))
        self.acc.gather_across_processes = False
        self.acc.update_data({key: all_rows}, indices=all_indices)
        self._synced = True

    def compute_metrics(self):  # type: ignore[override]
        """Syncs (if new batches came since the last sync), then computes as ``EmbeddingMetrics`` on every rank."""
        self.sync()
        return super().compute_metrics()


__all__ = ["EmbeddingMetricsDDP"]
