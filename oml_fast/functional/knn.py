"""OML's batched kNN functions (``oml.functional.knn``), on the streaming ``knn`` op.

OML computes blocks of ``bs x n_gallery`` distances and sorts them; here the compiled
:func:`oml_fast.ops.knn` keeps only the ``top_n`` best per query, so ``bs`` changes nothing (it is
accepted for OML's signature). Results equal OML's except for ties in distance, which go to the
smaller gallery index (``torch.topk`` gives no order among ties).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..const import BS_KNN
from ..errors import InvalidInputError
from ..ops import knn


def check_both_are_nones_or_not_nones(a: Tensor | None, b: Tensor | None) -> bool:
    """OML's helper: True when both are given or neither."""
    return (a is None) == (b is None)


def check_len_and_ndim(a: Tensor | None, expected_len: int, expected_ndim: int) -> bool:
    """OML's helper: True when ``a`` is None or has the expected length and number of dimensions."""
    return a is None or (len(a) == expected_len and a.ndim == expected_ndim)


def _check_pair(name: str, query: Tensor | None, gallery: Tensor | None, nq: int, ng: int) -> None:
    if not check_both_are_nones_or_not_nones(query, gallery):
        raise InvalidInputError(f"`{name}_query` and `{name}_gallery` must be given both or neither")
    if not check_len_and_ndim(query, nq, 1) or not check_len_and_ndim(gallery, ng, 1):
        raise InvalidInputError(
            f"`{name}_query` and `{name}_gallery` must be 1-D with {nq} and {ng} entries, got shapes "
            f"{tuple(query.shape) if query is not None else None} and {tuple(gallery.shape) if gallery is not None else None}"
        )


def gt_ids_by_labels(
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None = None,
    gallery_ids: Tensor | None = None,
    query_groups: Tensor | None = None,
    gallery_groups: Tensor | None = None,
) -> tuple[Tensor, ...]:
    """Per query, the gallery indices with its label, minus excluded ones (equal id, equal group).

    Vectorised through a sort of the gallery labels: O(Ng log Ng + sum of the list lengths) memory,
    never a ``[Nq, Ng]`` matrix. Indices ascend within each list.

    >>> gt_ids_by_labels(torch.tensor([1, 2]), torch.tensor([2, 1, 1]), torch.tensor([1, 7]), torch.tensor([0, 1, 2]))
    (tensor([2]), tensor([0]))
    """
    order = torch.argsort(gallery_labels, stable=True)
    sorted_labels = gallery_labels[order]
    start = torch.searchsorted(sorted_labels, query_labels, side="left")
    end = torch.searchsorted(sorted_labels, query_labels, side="right")
    sizes = end - start
    device = query_labels.device
    owner = torch.repeat_interleave(torch.arange(len(query_labels), device=device), sizes)
    offsets = torch.arange(int(sizes.sum()), device=device) - torch.repeat_interleave(
        torch.cumsum(sizes, 0) - sizes, sizes
    )
    candidates = order[start[owner] + offsets]
    keep = torch.ones(len(candidates), dtype=torch.bool, device=device)
    if query_ids is not None and gallery_ids is not None:
        keep &= query_ids.to(device)[owner] != gallery_ids.to(device)[candidates]
    if query_groups is not None and gallery_groups is not None:
        keep &= query_groups.to(device)[owner] != gallery_groups.to(device)[candidates]
    counts = torch.bincount(owner[keep], minlength=len(query_labels))
    return tuple(torch.split(candidates[keep], counts.tolist()))


def batched_knn_qg(
    embeddings_query: Tensor,
    embeddings_gallery: Tensor,
    top_n: int,
    labels_query: Tensor | None = None,
    labels_gallery: Tensor | None = None,
    ids_query: Tensor | None = None,
    ids_gallery: Tensor | None = None,
    sequence_ids_query: Tensor | None = None,
    sequence_ids_gallery: Tensor | None = None,
    bs: int = BS_KNN,
    verbose: bool = False,
) -> tuple[Sequence[Tensor], Sequence[Tensor], Sequence[Tensor] | None]:
    """The ``top_n`` nearest gallery items (Euclidean) of every query, with queries and gallery apart.

    Args:
        embeddings_query (Tensor[Nq, D]), embeddings_gallery (Tensor[Ng, D]).
        top_n: neighbours per query (clipped to ``Ng``).
        labels_query (Tensor[Nq]), labels_gallery (Tensor[Ng]): if given, ``gt_ids`` is returned.
        ids_query, ids_gallery: item ids; a gallery item with the query's id is skipped (the same item in
            both sets).
        sequence_ids_query, sequence_ids_gallery: a gallery item of the query's sequence is skipped.
        bs, verbose: accepted for OML's signature (the op streams; there is no progress bar).

    Returns:
        ``(distances, retrieved_ids, gt_ids)``: per query, ascending distances and the gallery indices
        (skipped items are left out, so lists may be shorter than ``top_n``), and the relevant gallery
        indices (None without labels).
    """
    if embeddings_query.ndim != 2 or embeddings_gallery.ndim != 2:
        raise InvalidInputError(
            f"embeddings must be 2-D, got {tuple(embeddings_query.shape)} and {tuple(embeddings_gallery.shape)}"
        )
    nq, ng = len(embeddings_query), len(embeddings_gallery)
    _check_pair("labels", labels_query, labels_gallery, nq, ng)
    _check_pair("ids", ids_query, ids_gallery, nq, ng)
    _check_pair("sequence_ids", sequence_ids_query, sequence_ids_gallery, nq, ng)
    device = embeddings_query.device

    def as_keys(x: Tensor | None) -> Tensor | None:
        return None if x is None else torch.as_tensor(x).to(device=device, dtype=torch.int64).contiguous()

    keys = [as_keys(x) for x in (ids_query, ids_gallery, sequence_ids_query, sequence_ids_gallery)]
    k = max(min(int(top_n), ng), 1)
    distances, indices = knn(embeddings_query, embeddings_gallery, k, "euclidean", *keys)
    valid = indices >= 0
    lengths = valid.sum(dim=1).tolist()
    retrieved_ids = list(torch.split(indices[valid], lengths)) if nq else []
    distances_list = list(torch.split(distances[valid], lengths)) if nq else []
    gt_ids = None
    if labels_query is not None and labels_gallery is not None:
        gt_ids = list(gt_ids_by_labels(as_keys(labels_query), as_keys(labels_gallery), *keys))  # type: ignore[arg-type]
    return distances_list, retrieved_ids, gt_ids


def batched_knn(
    embeddings: Tensor,
    ids_query: Tensor,
    ids_gallery: Tensor,
    top_n: int,
    sequence_ids: Tensor | None = None,
    labels_gt: Tensor | None = None,
    bs: int = BS_KNN,
    verbose: bool = False,
) -> tuple[Sequence[Tensor], Sequence[Tensor], Sequence[Tensor] | None]:
    """:func:`batched_knn_qg` on one embedding matrix, queries and gallery given by their row indices.

    Args:
        embeddings (Tensor[L, D]).
        ids_query (LongTensor[Nq]), ids_gallery (LongTensor[Ng]): rows of the queries and of the gallery;
            they may overlap (a row never retrieves itself).
        top_n: neighbours per query.
        sequence_ids (Tensor[L]): sequence of every row, if known (rows of the query's sequence are skipped).
        labels_gt (Tensor[L]): label of every row, if known (then ``gt_ids`` is returned).
        bs, verbose: accepted for OML's signature.

    Returns:
        ``(distances, retrieved_ids, gt_ids)`` as in :func:`batched_knn_qg`; indices are positions in
        ``ids_gallery`` (``0 .. Ng - 1``).

    >>> x = torch.tensor([[0.0], [1.0], [5.0], [6.0]])
    >>> dist, ids, gt = batched_knn(x, torch.arange(4), torch.arange(4), top_n=2, labels_gt=torch.tensor([0, 0, 1, 1]))
    >>> [i.tolist() for i in ids], [g.tolist() for g in gt]
    ([[1, 2], [0, 2], [3, 1], [2, 1]], [[1], [0], [3], [2]])
    """
    if ids_query.ndim != 1 or ids_gallery.ndim != 1 or embeddings.ndim != 2:
        raise InvalidInputError("`ids_query` and `ids_gallery` must be 1-D and `embeddings` 2-D")
    if len(embeddings) > len(ids_query) + len(ids_gallery):
        raise InvalidInputError(
            f"`embeddings` has {len(embeddings)} rows, more than the queries and gallery items together "
            f"({len(ids_query)} + {len(ids_gallery)})"
        )
    for name, values in (("sequence_ids", sequence_ids), ("labels_gt", labels_gt)):
        if not check_len_and_ndim(values, len(embeddings), 1):
            raise InvalidInputError(
                f"`{name}` must be 1-D with one entry per row of `embeddings` ({len(embeddings)})"
            )
    rows_q, rows_g = ids_query.to(embeddings.device), ids_gallery.to(embeddings.device)

    def take(values: Tensor | None, rows: Tensor) -> Tensor | None:
        return None if values is None else torch.as_tensor(values).to(embeddings.device)[rows]

    return batched_knn_qg(
        embeddings_query=embeddings[rows_q],
        embeddings_gallery=embeddings[rows_g],
        top_n=top_n,
        labels_query=take(labels_gt, rows_q),
        labels_gallery=take(labels_gt, rows_g),
        ids_query=ids_query,
        ids_gallery=ids_gallery,
        sequence_ids_query=take(sequence_ids, rows_q),
        sequence_ids_gallery=take(sequence_ids, rows_g),
        bs=bs,
        verbose=verbose,
    )


__all__ = [
    "batched_knn",
    "batched_knn_qg",
    "gt_ids_by_labels",
    "check_both_are_nones_or_not_nones",
    "check_len_and_ndim",
]
