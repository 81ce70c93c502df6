"""RetrievalResults: per query, the nearest gallery items, their distances and the relevant items.

The public contract is OML's (tuples of variable-length 1-D tensors). Inside, the results are
kept dense: ``[Nq, K]`` distances padded with ``inf``, ids padded with ``-1`` and the length of
each list, so that metrics and post-processors work on whole matrices, never query by query.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pprint import pformat
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..functional import _backend
from ..functional.metrics import pad_ids, relevance_from_gt_ids
from ..interfaces import (
    BLACK,
    BLUE,
    GRAY,
    GREEN,
    RED,
    SEQUENCE_COLUMN,
    IBaseDataset,
    ILabeledDataset,
    IQueryGalleryDataset,
    IVisualizableDataset,
    TColor,
)
from ..ops.checks import labels_to_tensor


class InvalidRetrievalResultsError(ValueError, RuntimeError):
    """Inconsistent lists given to :class:`RetrievalResults` (unsorted distances, repeated ids, lengths).

    A ``ValueError``, and also a ``RuntimeError`` as OML 4.x raises there, so that code written for
    either catches it.
    """


# How many ground-truth items a visualisation shows after the retrieved ones (OML's default).
N_GT_SHOW = 2


def factorize_sequences(*datasets: IBaseDataset) -> list[Tensor] | None:
    """Integer sequence ids for each dataset, factorised jointly (equal values get equal ids across datasets).

    Returns None unless every dataset has a ``"sequence"`` column. (OML factorises the query and the
    gallery datasets separately, so equal sequence names may get different ids; we do not.)
    """
    if not all(SEQUENCE_COLUMN in getattr(ds, "extra_data", {}) for ds in datasets):
        return None
    values = [pd.Series(np.asarray(ds.extra_data[SEQUENCE_COLUMN])) for ds in datasets]
    codes, _ = pd.factorize(pd.concat(values, ignore_index=True), sort=True)
    splits = np.cumsum([len(v) for v in values])[:-1]
    return [torch.from_numpy(part.astype(np.int64)) for part in np.split(codes, splits)]


class _LabelGroundTruth:
    """Relevance by equal labels, minus excluded pairs (equal item id, equal sequence)."""

    def __init__(
        self,
        query_labels: Tensor,
        gallery_labels: Tensor,
        query_ids: Tensor | None,
        gallery_ids: Tensor | None,
        query_groups: Tensor | None,
        gallery_groups: Tensor | None,
        n_gt: Tensor,
    ):
        self.query_labels, self.gallery_labels = query_labels, gallery_labels
        self.query_ids, self.gallery_ids = query_ids, gallery_ids
        self.query_groups, self.gallery_groups = query_groups, gallery_groups
        self.n_gt = n_gt
        self._gt_ids: tuple[Tensor, ...] | None = None

    def relevance(self, retrieved: Tensor) -> Tensor:
        # Retrieved lists never hold excluded items, so equal labels are enough.
        labels = self.gallery_labels[retrieved.clamp_min(0)]
        return (retrieved >= 0) & (labels == self.query_labels[:, None])

    def gt_ids(self) -> tuple[Tensor, ...]:
        """Builds the per-query lists of relevant gallery ids, vectorised (O(sum of n_gt) memory)."""
        if self._gt_ids is None:
            order = torch.argsort(self.gallery_labels, stable=True)
            sorted_labels = self.gallery_labels[order]
            start = torch.searchsorted(sorted_labels, self.query_labels, side="left")
            end = torch.searchsorted(sorted_labels, self.query_labels, side="right")
            sizes = end - start
            owner = torch.repeat_interleave(torch.arange(len(self.query_labels)), sizes)
            offsets = torch.arange(int(sizes.sum())) - torch.repeat_interleave(
                torch.cumsum(sizes, 0) - sizes, sizes
            )
            candidates = order[start[owner] + offsets]
            keep = torch.ones(len(candidates), dtype=torch.bool)
            if self.query_ids is not None and self.gallery_ids is not None:
                keep &= self.query_ids[owner] != self.gallery_ids[candidates]
            if self.query_groups is not None and self.gallery_groups is not None:
                keep &= self.query_groups[owner] != self.gallery_groups[candidates]
            counts = torch.bincount(owner[keep], minlength=len(self.query_labels))
            self._gt_ids = tuple(torch.split(candidates[keep], counts.tolist()))
        return self._gt_ids


class _ExplicitGroundTruth:
    """Relevance given as per-query lists of relevant gallery ids (OML's ``gt_ids``)."""

    def __init__(self, gt_ids: Sequence[Tensor]):
        self._gt_ids = tuple(torch.as_tensor(x).reshape(-1).long() for x in gt_ids)
        self.n_gt = torch.tensor([len(x) for x in self._gt_ids], dtype=torch.int64)

    def relevance(self, retrieved: Tensor) -> Tensor:
        return relevance_from_gt_ids(retrieved, self._gt_ids)

    def gt_ids(self) -> tuple[Tensor, ...]:
        return self._gt_ids


class RetrievalResults:
    """Retrieved gallery items per query: sorted distances, gallery ids and (optionally) relevant ids.

    Args:
        distances: per query, ascending distances to the retrieved items (1-D float tensors).
        retrieved_ids: per query, the retrieved gallery indices (``0 .. n_gallery - 1``), same lengths.
        gt_ids: per query, the indices of all relevant gallery items (optional).

    Lists may have different lengths (exclusions, thresholding). Ties in distance are ordered by the
    smaller gallery index when built by :meth:`from_embeddings`.

    >>> rr = RetrievalResults(
    ...     distances=[torch.tensor([0.1, 0.5]), torch.tensor([0.2])],
    ...     retrieved_ids=[torch.tensor([1, 0]), torch.tensor([0])],
    ...     gt_ids=[torch.tensor([0]), torch.tensor([0])],
    ... )
    >>> rr.n_retrieved_items, rr.retrieved_ids[1].tolist(), rr.is_relevant.tolist()
    (2, [0], [[False, True], [True, False]])
    """

    _max_elements_in_str_repr: int = 100

    def __init__(
        self,
        distances: Sequence[Tensor],
        retrieved_ids: Sequence[Tensor],
        gt_ids: Sequence[Tensor] | None = None,
    ):
        if len(distances) != len(retrieved_ids):
            raise InvalidRetrievalResultsError(
                f"`distances` and `retrieved_ids` must have one entry per query, got {len(distances)} and "
                f"{len(retrieved_ids)}"
            )
        for d, r in zip(distances, retrieved_ids):
            if d.ndim != 1 or r.ndim != 1:
                raise InvalidRetrievalResultsError("`distances` and `retrieved_ids` must hold 1-D tensors")
            if len(d) != len(r):
                raise InvalidRetrievalResultsError(
                    f"Number of distances and retrieved items must match, got {len(d)} and {len(r)}"
                )
        if gt_ids is not None and len(gt_ids) != len(distances):
            raise InvalidRetrievalResultsError(
                f"`gt_ids` must have one entry per query ({len(distances)}), got {len(gt_ids)}"
            )
        ids_dense, lengths = pad_ids(retrieved_ids)
        dist_dtype = (
            distances[0].dtype if len(distances) and distances[0].is_floating_point() else torch.float32
        )
        dist_dense = torch.full(ids_dense.shape, float("inf"), dtype=dist_dtype)
        valid = ids_dense >= 0
        if valid.any():
            dist_dense[valid] = torch.cat([torch.as_tensor(d).to(dist_dtype).cpu() for d in distances])
        self._init_dense(
            dist_dense, ids_dense, lengths, None if gt_ids is None else _ExplicitGroundTruth(gt_ids)
        )
        self._check_sorted_and_unique()
        if gt_ids is not None and bool((self._ground_truth.n_gt == 0).any()):
            warnings.warn("Some of the queries don't have available gts.", stacklevel=2)

    def _init_dense(
        self,
        distances: Tensor,
        retrieved: Tensor,
        n_retrieved: Tensor,
        ground_truth: Any,
        is_relevant: Any = None,
    ) -> None:
        self._distances_dense = distances
        self._retrieved_dense = retrieved
        self._n_retrieved = n_retrieved
        self._ground_truth = ground_truth
        self._is_relevant = is_relevant
        self._distances_tuple: tuple[Tensor, ...] | None = None
        self._retrieved_tuple: tuple[Tensor, ...] | None = None

    def _check_sorted_and_unique(self) -> None:
        valid = self._retrieved_dense >= 0
        if self._distances_dense.shape[1] > 1:
            both_valid = valid[:, 1:] & valid[:, :-1]
            if bool(((self._distances_dense[:, 1:] < self._distances_dense[:, :-1]) & both_valid).any()):
                raise InvalidRetrievalResultsError(
                    "Distances must be sorted in ascending order for every query"
                )
        head = self._retrieved_dense[:, :100]
        if head.shape[1] > 1:
            # Checking all ids would be expensive; as OML, look at the first 100 of every list.
            sorted_head = torch.sort(head, dim=1).values
            if bool(((sorted_head[:, 1:] == sorted_head[:, :-1]) & (sorted_head[:, 1:] >= 0)).any()):
                raise InvalidRetrievalResultsError("Retrieved ids must be unique within a query")

    @classmethod
    def from_dense(
        cls,
        distances: Tensor,
        retrieved_ids: Tensor,
        ground_truth: Any = None,
        is_relevant: Tensor | None = None,
    ) -> RetrievalResults:
        """Builds results from dense ``[Nq, K]`` matrices (``inf`` / ``-1`` padding at the end of each row).

        ``ground_truth`` is another RetrievalResults' relevance source (internal) or None.
        """
        rr = cls.__new__(cls)
        n_retrieved = (retrieved_ids >= 0).sum(dim=1)
        rr._init_dense(distances, retrieved_ids, n_retrieved, ground_truth, is_relevant)
        return rr

    @classmethod
    def from_embeddings(
        cls,
        embeddings: Tensor,
        dataset: IQueryGalleryDataset,
        n_items: int = 100,
        verbose: bool = False,
        metric: str = "euclidean",
        knn_function: Callable[..., tuple[Tensor, Tensor]] | None = None,
    ) -> RetrievalResults:
        """Retrieves the ``n_items`` nearest gallery items for every query of ``dataset``.

        Args:
            embeddings (Tensor[len(dataset), D]): one row per dataset item.
            dataset: the query/gallery split; labels (if it is labelled) give the relevant items;
                an item never retrieves itself, nor items of its ``sequence``.
            n_items: list length (clipped to the gallery size; shorter when candidates run out).
            metric: ``euclidean`` (OML's), ``sqeuclidean``, ``cosine`` or ``dot``.
            knn_function: the search, with the signature of the ``knn`` op (default: ``knn``); e.g.
                ``oml_fast.distributed.distributed_knn`` to split it across ranks.
        """
        if len(embeddings) != len(dataset):
            raise ValueError(
                f"`embeddings` must have one row per dataset item ({len(dataset)}), got {len(embeddings)}"
            )
        query_ids = torch.as_tensor(dataset.get_query_ids()).long().cpu()
        gallery_ids = torch.as_tensor(dataset.get_gallery_ids()).long().cpu()
        sequences = factorize_sequences(dataset)
        labels = labels_to_tensor(dataset.get_labels()) if isinstance(dataset, ILabeledDataset) else None
        return cls._retrieve(
            embeddings[query_ids.to(embeddings.device)],
            embeddings[gallery_ids.to(embeddings.device)],
            n_items,
            metric,
            query_ids,
            gallery_ids,
            None if sequences is None else sequences[0][query_ids],
            None if sequences is None else sequences[0][gallery_ids],
            None if labels is None else labels[query_ids],
            None if labels is None else labels[gallery_ids],
            knn_function=knn_function,
        )

    @classmethod
    def from_embeddings_qg(
        cls,
        embeddings_query: Tensor,
        embeddings_gallery: Tensor,
        dataset_query: IBaseDataset,
        dataset_gallery: IBaseDataset,
        n_items: int = 100,
        verbose: bool = False,
        metric: str = "euclidean",
    ) -> RetrievalResults:
        """Retrieval between two separate datasets (no self-exclusion; sequences still exclude).

        Args:
            embeddings_query (Tensor[Nq, D]), embeddings_gallery (Tensor[Ng, D]): rows of the two datasets.
            dataset_query, dataset_gallery: labelled datasets give relevance (both or neither).
        """
        if len(embeddings_query) != len(dataset_query):
            raise ValueError(
                f"`embeddings_query` must have {len(dataset_query)} rows, got {len(embeddings_query)}"
            )
        if len(embeddings_gallery) != len(dataset_gallery):
            raise ValueError(
                f"`embeddings_gallery` must have {len(dataset_gallery)} rows, got {len(embeddings_gallery)}"
            )
        labelled = isinstance(dataset_query, ILabeledDataset) and isinstance(dataset_gallery, ILabeledDataset)
        sequences = factorize_sequences(dataset_query, dataset_gallery)
        return cls._retrieve(
            embeddings_query,
            embeddings_gallery,
            n_items,
            metric,
            None,
            None,
            None if sequences is None else sequences[0],
            None if sequences is None else sequences[1],
            labels_to_tensor(dataset_query.get_labels()) if labelled else None,  # type: ignore[attr-defined]
            labels_to_tensor(dataset_gallery.get_labels()) if labelled else None,  # type: ignore[attr-defined]
        )

    @classmethod
    def _retrieve(
        cls,
        queries: Tensor,
        gallery: Tensor,
        n_items: int,
        metric: str,
        query_ids: Tensor | None,
        gallery_ids: Tensor | None,
        query_groups: Tensor | None,
        gallery_groups: Tensor | None,
        query_labels: Tensor | None,
        gallery_labels: Tensor | None,
        knn_function: Callable[..., tuple[Tensor, Tensor]] | None = None,
    ) -> RetrievalResults:
        if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
            raise ValueError(f"`n_items` must be a positive integer, got {n_items!r}")
        if len(gallery) == 0:
            raise ValueError("the gallery is empty: there is nothing to retrieve")
        if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
            raise ValueError(
                f"embeddings must be 2-D with equal widths, got {tuple(queries.shape)} and {tuple(gallery.shape)}"
            )
        device = queries.device

        def on_device(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.to(device).contiguous()

        k = min(int(n_items), len(gallery))
        distances, retrieved = (knn_function or _backend.knn)(
            queries.contiguous(),
            gallery.to(device).contiguous(),
            k,
            metric,
            on_device(query_ids),
            on_device(gallery_ids),
            on_device(query_groups),
            on_device(gallery_groups),
        )
        distances, retrieved = distances.cpu(), retrieved.cpu()
        ground_truth, is_relevant = None, None
        if query_labels is not None and gallery_labels is not None:
            is_relevant, n_gt = _backend.retrieval_relevance(
                retrieved.to(device),
                query_labels.to(device).contiguous(),
                gallery_labels.to(device).contiguous(),
                on_device(query_ids),
                on_device(gallery_ids),
                on_device(query_groups),
                on_device(gallery_groups),
            )
            ground_truth = _LabelGroundTruth(
                query_labels, gallery_labels, query_ids, gallery_ids, query_groups, gallery_groups, n_gt.cpu()
            )
            is_relevant = is_relevant.cpu()
        return cls.from_dense(distances, retrieved, ground_truth, is_relevant)

    # ----- dense views (no per-query Python objects) -----

    @property
    def distances_dense(self) -> Tensor:
        """Tensor[Nq, K]: ascending distances, ``inf`` after the end of each list."""
        return self._distances_dense

    @property
    def retrieved_ids_dense(self) -> Tensor:
        """LongTensor[Nq, K]: retrieved gallery ids, ``-1`` after the end of each list."""
        return self._retrieved_dense

    @property
    def n_retrieved(self) -> Tensor:
        """LongTensor[Nq]: the length of each retrieved list."""
        return self._n_retrieved

    @property
    def has_ground_truth(self) -> bool:
        return self._ground_truth is not None

    @property
    def is_relevant(self) -> Tensor:
        """BoolTensor[Nq, K]: whether each retrieved item is relevant (False on padding)."""
        if self._ground_truth is None:
            raise ValueError(
                "Ground truths are unknown: build the results from a labelled dataset or pass `gt_ids`"
            )
        if self._is_relevant is None:
            self._is_relevant = self._ground_truth.relevance(self._retrieved_dense)
        return self._is_relevant

    @property
    def n_gt(self) -> Tensor:
        """LongTensor[Nq]: the number of relevant (non-excluded) gallery items per query."""
        if self._ground_truth is None:
            raise ValueError(
                "Ground truths are unknown: build the results from a labelled dataset or pass `gt_ids`"
            )
        return self._ground_truth.n_gt

    def with_lists(self, distances: Tensor, retrieved_ids: Tensor) -> RetrievalResults:
        """New results with other dense lists and the same ground truth (used by post-processors)."""
        return RetrievalResults.from_dense(distances, retrieved_ids, self._ground_truth)

    # ----- OML's contract: tuples of variable-length 1-D tensors -----

    def _split(self, dense: Tensor) -> tuple[Tensor, ...]:
        valid = torch.arange(dense.shape[1])[None, :] < self._n_retrieved[:, None]
        return tuple(torch.split(dense[valid], self._n_retrieved.tolist()))

    @property
    def distances(self) -> tuple[Tensor, ...]:
        """Per query, the ascending distances to the retrieved items."""
        if self._distances_tuple is None:
            self._distances_tuple = self._split(self._distances_dense)
        return self._distances_tuple

    @property
    def retrieved_ids(self) -> tuple[Tensor, ...]:
        """Per query, the retrieved gallery indices (``0 .. n_gallery - 1``)."""
        if self._retrieved_tuple is None:
            self._retrieved_tuple = self._split(self._retrieved_dense)
        return self._retrieved_tuple

    @property
    def gt_ids(self) -> tuple[Tensor, ...] | None:
        """Per query, the indices of all relevant gallery items (None when unknown)."""
        return None if self._ground_truth is None else self._ground_truth.gt_ids()

    @property
    def n_retrieved_items(self) -> int:
        """The longest retrieved list."""
        return int(self._n_retrieved.max()) if len(self._n_retrieved) else 0

    def __len__(self) -> int:
        return len(self._n_retrieved)

    def is_empty(self) -> bool:
        return bool((self._n_retrieved == 0).all())

    def deepcopy(self) -> RetrievalResults:
        return RetrievalResults.from_dense(
            self._distances_dense.clone(),
            self._retrieved_dense.clone(),
            self._ground_truth,
            None if self._is_relevant is None else self._is_relevant.clone(),
        )

    def __str__(self) -> str:
        m = self._max_elements_in_str_repr
        txt = (
            f"Maximum number of retrieved items: {self.n_retrieved_items}.\n"
            f"Distances to the retrieved items:\n{pformat(self.distances[:m])}.\n"
            f"Ids of the retrieved gallery items:\n{pformat(self.retrieved_ids[:m])}.\n"
        )
        if self.gt_ids is None:
            return txt + "Ground truths are unknown.\n"
        return txt + f"Ground truth gallery ids are:\n{pformat([x.tolist() for x in self.gt_ids[:m]])}.\n"

    # ----- visualisation -----

    def visualize(
        self,
        query_ids: Sequence[int],
        dataset: IQueryGalleryDataset,
        n_galleries_to_show: int = 5,
        n_gt_to_show: int = N_GT_SHOW,
        verbose: bool = False,
        show: bool = False,
        save_path: str | None = None,
    ) -> Any:
        """Draws the given queries (positions ``0 .. Nq - 1``), their retrieved items and ground truths.

        Retrieved items are framed green (relevant), red (not) or black (unknown); ground truths gray.
        ``dataset`` must implement ``IVisualizableDataset.visualize``. Returns the matplotlib figure;
        ``save_path`` also writes it as a PNG.
        """
        name = dataset.__class__.__name__
        if not isinstance(dataset, IVisualizableDataset) and not callable(
            getattr(dataset, "visualize", None)
        ):
            raise TypeError(f"Dataset has to support `visualize(item, color)`. Got {name}.")
        if len(self) != len(dataset.get_query_ids()):
            raise ValueError(
                f"Number of queries in {type(self).__name__} and {name} must match: "
                f"{len(self)} != {len(dataset.get_query_ids())}"
            )
        if verbose:
            print(f"Visualizing {n_galleries_to_show} for the following query ids: {list(query_ids)}.")
        dataset_query_ids, dataset_gallery_ids = dataset.get_query_ids(), dataset.get_gallery_ids()

        def query_fn(i: int, color: TColor) -> np.ndarray:
            return dataset.visualize(item=int(dataset_query_ids[i]), color=color)  # type: ignore[attr-defined]

        def gallery_fn(i: int, color: TColor) -> np.ndarray:
            return dataset.visualize(item=int(dataset_gallery_ids[i]), color=color)  # type: ignore[attr-defined]

        return self.visualize_with_functions(
            query_ids, query_fn, gallery_fn, n_galleries_to_show, n_gt_to_show, show, save_path
        )

    def visualize_qg(
        self,
        query_ids: Sequence[int],
        dataset_query: Any,
        dataset_gallery: Any,
        n_galleries_to_show: int = 5,
        n_gt_to_show: int = N_GT_SHOW,
        verbose: bool = False,
        show: bool = False,
        save_path: str | None = None,
    ) -> Any:
        """As :meth:`visualize`, for results of :meth:`from_embeddings_qg`."""
        for ds in (dataset_query, dataset_gallery):
            if not callable(getattr(ds, "visualize", None)):
                raise TypeError(f"Dataset has to support `visualize(item, color)`. Got {type(ds).__name__}.")
        return self.visualize_with_functions(
            query_ids,
            lambda i, color: dataset_query.visualize(item=i, color=color),
            lambda i, color: dataset_gallery.visualize(item=i, color=color),
            n_galleries_to_show,
            n_gt_to_show,
            show,
            save_path,
        )

    def visualize_with_functions(
        self,
        query_ids: Sequence[int],
        visualize_query_fn: Callable[[int, TColor], np.ndarray],
        visualize_gallery_fn: Callable[[int, TColor], np.ndarray],
        n_galleries_to_show: int = 5,
        n_gt_to_show: int = N_GT_SHOW,
        show: bool = False,
        save_path: str | None = None,
    ) -> Any:
        """Draws rows ``query | retrieved ... | ground truth ...`` with the given drawing functions."""
        import matplotlib

        if not show:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        query_ids = [int(q) for q in query_ids]
        if not query_ids:
            raise ValueError("`query_ids` is empty: nothing to visualize")
        longest = max(int(self._n_retrieved[q]) for q in query_ids)
        n_galleries_to_show = min(n_galleries_to_show, longest)
        gt_ids = self.gt_ids
        n_gt_to_show = n_gt_to_show if gt_ids is not None else 0
        n_rows, n_cols = len(query_ids), n_galleries_to_show + 1 + n_gt_to_show
        fig = plt.figure(figsize=(16, 16 / n_cols * n_rows))
        for row, q in enumerate(query_ids):
            plt.subplot(n_rows, n_cols, row * n_cols + 1)
            plt.imshow(visualize_query_fn(q, BLUE))
            plt.title(f"Query #{q}")
            plt.axis("off")
            retrieved = self.retrieved_ids[q][:n_galleries_to_show]
            for j, gallery_id in enumerate(retrieved.tolist()):
                if gt_ids is None:
                    color = BLACK
                else:
                    color = GREEN if bool(self.is_relevant[q, j]) else RED
                plt.subplot(n_rows, n_cols, row * n_cols + j + 2)
                plt.imshow(visualize_gallery_fn(gallery_id, color))
                plt.title(f"Gallery #{gallery_id} - {round(float(self.distances[q][j]), 3)}")
                plt.axis("off")
            if gt_ids is not None:
                for j, gallery_id in enumerate(gt_ids[q][:n_gt_to_show].tolist()):
                    plt.subplot(n_rows, n_cols, row * n_cols + n_galleries_to_show + j + 2)
                    plt.imshow(visualize_gallery_fn(gallery_id, GRAY))
                    plt.title("GT")
                    plt.axis("off")
        fig.tight_layout()
        if save_path is not None:
            fig.savefig(save_path, format="png")
        if show:
            fig.show()
        return fig


__all__ = ["RetrievalResults", "InvalidRetrievalResultsError", "factorize_sequences"]
