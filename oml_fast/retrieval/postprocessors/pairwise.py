"""Re-ranking of the top-n retrieved items with a pairwise model (OML's ``PairwiseReranker``)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ...interfaces import INPUT_TENSORS_KEY, IPairwiseModel, IQueryGalleryDataset, IRetrievalPostprocessor
from ...utils.batches import inputs_to_device
from ..query_gallery import QueryGalleryKeys
from ..retrieval_results import RetrievalResults


class _PairsDataset(Dataset):
    """Pairs of items of a base dataset, given by their dataset indices."""

    def __init__(self, base: Any, pairs: torch.Tensor):
        self.base, self.pairs = base, pairs
        self.key = getattr(base, "input_tensors_key", INPUT_TENSORS_KEY)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        first, second = self.pairs[i].tolist()
        return {"input_tensors_1": self.base[first][self.key], "input_tensors_2": self.base[second][self.key]}


def merge_sorted_keeping_order(head: torch.Tensor, tail: torch.Tensor, eps: float) -> torch.Tensor:
    """Concatenates ascending rows ``head [N, A]`` and ``tail [N, B]`` so that rows stay ascending.

    Where a row of ``head`` ends above the first value of ``tail``, the head is rescaled by
    ``tail[:, 0] / head[:, -1]`` and shifted down by ``eps`` (OML's rule: the re-ranked head keeps its
    order and stays in front of the untouched tail). Padding (``inf``) in the tail is ignored.

    >>> merge_sorted_keeping_order(torch.tensor([[1.0, 2.0, 5.0]]), torch.tensor([[0.5, 0.6]]), eps=0.0)
    tensor([[0.1000, 0.2000, 0.5000, 0.5000, 0.6000]])
    """
    if tail.shape[1] == 0 or head.shape[1] == 0:
        return torch.cat([head, tail], dim=1)
    head_last = head.max(dim=1).values
    tail_first = tail[:, 0]
    need = torch.isfinite(tail_first) & (head_last > tail_first)
    scale = torch.where(need, tail_first / head_last, torch.ones_like(head_last))
    head = torch.where(need[:, None], head * scale[:, None] - eps, head)
    return torch.cat([head, tail], dim=1)


class PairwiseReranker(IRetrievalPostprocessor):
    """Re-scores each query's ``top_n`` retrieved items with a pairwise model and re-sorts them.

    The rest of each list stays untouched behind them; lists keep their lengths. The model gets
    batches of ``dataset[i]["input_tensors"]`` pairs (query item, gallery item) through ``predict``.

    Args:
        top_n: how many leading items of each list to re-score (``> 1``).
        pairwise_model: ``IPairwiseModel`` returning a distance per pair (smaller is closer).
        num_workers, batch_size: DataLoader settings for the pair inference (required, as in OML).
        verbose: progress bar. use_fp16: autocast the model in half precision.
    """

    def __init__(
        self,
        top_n: int,
        pairwise_model: IPairwiseModel,
        num_workers: int,
        batch_size: int,
        verbose: bool = False,
        use_fp16: bool = False,
    ):
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n <= 1:
            raise ValueError(f"`top_n` must be an integer greater than 1, got {top_n!r}")
        self._top_n = top_n
        self.model = pairwise_model
        self.num_workers, self.batch_size = num_workers, batch_size
        self.verbose, self.use_fp16 = verbose, use_fp16

    @property
    def top_n(self) -> int:
        """Number of the gallery items closest to each query that are re-scored."""
        return self._top_n

    @torch.no_grad()
    def _predict(self, dataset: Any, pairs: torch.Tensor) -> torch.Tensor:
        parameter = next(self.model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        loader = DataLoader(
            _PairsDataset(dataset, pairs),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle=False,
        )
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            for batch in tqdm(loader, desc="Pairwise re-ranking") if self.verbose else loader:
                x1 = inputs_to_device(batch["input_tensors_1"], device)
                x2 = inputs_to_device(batch["input_tensors_2"], device)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.use_fp16):
                    outputs.append(self.model.predict(x1, x2).float().reshape(-1).cpu())
        finally:
            self.model.train(was_training)
        return torch.cat(outputs) if outputs else torch.zeros(0)

    def process(self, rr: RetrievalResults, dataset: IQueryGalleryDataset) -> RetrievalResults:  # type: ignore[override]
        keys = QueryGalleryKeys.from_dataset(dataset)
        n_query = keys.n_queries
        if n_query != len(rr):
            raise ValueError(
                f"{type(rr).__name__} and {type(dataset).__name__} must have the same number of queries: "
                f"{len(rr)} != {n_query}"
            )
        top_n = min(self.top_n, rr.retrieved_ids_dense.shape[1])
        head_ids = rr.retrieved_ids_dense[:, :top_n]
        head_valid = head_ids >= 0
        query_ids, gallery_ids = keys.query_ids, keys.gallery_ids
        rows = torch.arange(len(rr))[:, None].expand_as(head_ids)
        pairs = torch.stack([query_ids[rows[head_valid]], gallery_ids[head_ids[head_valid]]], dim=1)
        new_head = torch.full(head_ids.shape, float("inf"), dtype=torch.float32)
        new_head[head_valid] = self._predict(dataset, pairs)
        new_head, order = torch.sort(new_head, dim=1, stable=True)
        head_ids = torch.gather(head_ids, 1, order)
        tail_dist = rr.distances_dense[:, top_n:].float()
        eps = 1e3 * torch.finfo(torch.float32).eps
        # Rows shorter than top_n keep inf padding in the head; the tail of such rows is empty.
        finite_head = torch.where(head_valid.gather(1, order), new_head, torch.zeros_like(new_head))
        merged = merge_sorted_keeping_order(finite_head, tail_dist, eps)
        merged[:, :top_n] = torch.where(head_valid.gather(1, order), merged[:, :top_n], float("inf"))
        retrieved = torch.cat([head_ids, rr.retrieved_ids_dense[:, top_n:]], dim=1)
        return rr.with_lists(merged, retrieved)


__all__ = ["PairwiseReranker", "merge_sorted_keeping_order"]
