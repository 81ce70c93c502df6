"""Pictures of the worst queries of a validation run (PNG), for the logs of the pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from oml_fast.visualization import BLUE, GREEN, RED, plot_retrieval_rows


def nearest_gallery_items(
    embeddings: torch.Tensor, dataset: Any, query_ids: torch.Tensor, k: int, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest gallery items (Euclidean) of each query, excluding the query itself and its sequence.

    embeddings: FloatTensor[N, D] in dataset order; query_ids: LongTensor[Q].
    Returns ``(distances FloatTensor[Q, k'], dataset indices LongTensor[Q, k'])`` with ``k' = min(k, n_gallery)``;
    excluded slots hold ``inf`` / ``-1``.
    """
    gallery_ids = dataset.get_gallery_ids().long()
    sequences = dataset.extra_data.get("sequence") if hasattr(dataset, "extra_data") else None
    if sequences is not None:
        _, seq_inverse = np.unique(np.asarray(sequences).astype(str), return_inverse=True)
        seq_codes = torch.from_numpy(seq_inverse)
    k = min(k, len(gallery_ids))
    all_dist, all_idx = [], []
    gallery = embeddings[gallery_ids]
    for start in range(0, len(query_ids), chunk):
        q = query_ids[start : start + chunk]
        dist = torch.cdist(embeddings[q], gallery)
        excluded = q[:, None] == gallery_ids[None, :]
        if sequences is not None:
            excluded |= seq_codes[q][:, None] == seq_codes[gallery_ids][None, :]
        dist = dist.masked_fill(excluded, float("inf"))
        top_dist, top_pos = dist.topk(k, dim=1, largest=False)
        top_idx = gallery_ids[top_pos].masked_fill(torch.isinf(top_dist), -1)
        all_dist.append(top_dist)
        all_idx.append(top_idx)
    return torch.cat(all_dist), torch.cat(all_idx)


def save_worst_queries_picture(
    embeddings: torch.Tensor, dataset: Any, save_path: str | Path, n_queries: int = 4, n_retrieved: int = 5
) -> Path | None:
    """Saves a PNG with the ``n_queries`` queries of lowest precision@``n_retrieved`` and their nearest items.

    Frames: blue for the query, green for a retrieved item of the query's label, red otherwise.
    Returns the path, or ``None`` when the dataset cannot draw its items (no ``visualize``).
    """
    if not hasattr(dataset, "visualize") or n_queries <= 0 or n_retrieved <= 0:
        return None
    query_ids = dataset.get_query_ids().long()
    if len(query_ids) == 0:
        return None
    labels = torch.as_tensor(np.asarray(dataset.get_labels()))
    distances, retrieved = nearest_gallery_items(embeddings.float(), dataset, query_ids, n_retrieved)
    relevant = (retrieved >= 0) & (labels[retrieved.clamp_min(0)] == labels[query_ids][:, None])
    precision = relevant.float().mean(dim=1)
    worst = torch.argsort(precision, stable=True)[:n_queries]
    rows = []
    for q in worst.tolist():
        query = int(query_ids[q])
        row = [(dataset.visualize(query, BLUE), f"query {query}\nlabel {int(labels[query])}")]
        for dist, item, ok in zip(distances[q].tolist(), retrieved[q].tolist(), relevant[q].tolist()):
            if item >= 0:
                row.append(
                    (dataset.visualize(item, GREEN if ok else RED), f"{dist:.3f}\nlabel {int(labels[item])}")
                )
        rows.append(row)
    plot_retrieval_rows(rows, save_path=save_path)
    return Path(save_path)
