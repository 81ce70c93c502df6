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
import torch
from torch import Tensor

from ..const import BLACK, BLUE, GRAY, GREEN, N_GT_SHOW_EMBEDDING_METRICS, RED, TColor
from ..functional.metrics import pad_ids
from ..interfaces.datasets import (
    IBaseDataset,
    IHTMLVisualizableDataset,
    IQueryGalleryDataset,
    IVisualizableDataset,
)
from ..ops import knn as knn_op
from ..ops import retrieval_relevance
from ..visualization import html_blocks_to_grid, html_placeholder, plot_retrieval_rows
from .ground_truth import ExplicitGroundTruth, GroundTruth, LabelGroundTruth
from .query_gallery import QueryGalleryKeys, factorize_sequences


class InvalidRetrievalResultsError(ValueError, RuntimeError):
    """Inconsistent lists given to :class:`RetrievalResults` (unsorted distances, repeated ids, lengths).

    A ``ValueError``, and also a ``RuntimeError`` as OML 4.x raises there, so that code written for
    either catches it.
    """


# The search a RetrievalResults is built by: the signature of the ``knn`` op.
KnnFunction = Callable[..., tuple[Tensor, Tensor]]


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
        for name, lists in (("retrieved_ids", retrieved_ids), ("gt_ids", gt_ids or ())):
            negative = [q for q, ids in enumerate(lists) if len(ids) and int(torch.as_tensor(ids).min()) < 0]
            if negative:
                raise InvalidRetrievalResultsError(
                    f"`{name}` must hold gallery indices >= 0; query {negative[0]} has a negative one"
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
            dist_dense, ids_dense, lengths, None if gt_ids is None else ExplicitGroundTruth(gt_ids)
        )
        self._check_sorted_and_unique()
        if self._ground_truth is not None and bool((self._ground_truth.n_gt == 0).any()):
            warnings.warn("Some of the queries don't have available gts.", stacklevel=2)

    def _init_dense(
        self,
        distances: Tensor,
        retrieved: Tensor,
        n_retrieved: Tensor,
        ground_truth: GroundTruth | None,
        is_relevant: Tensor | None = None,
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
        if self._retrieved_dense.shape[1] > 1:
            # Every id of every list (OML looks at the first 100 only): the lists were given as Python
            # objects, so sorting them costs no more than reading them did.
            ids = torch.sort(self._retrieved_dense, dim=1).values
            repeated = (ids[:, 1:] == ids[:, :-1]) & (ids[:, 1:] >= 0)
            if bool(repeated.any()):
                query = int(torch.nonzero(repeated.any(dim=1))[0])
                raise InvalidRetrievalResultsError(
                    f"Retrieved ids must be unique within a query; query {query} repeats "
                    f"{int(ids[query, 1:][repeated[query]][0])}"
                )

    @classmethod
    def from_dense(
        cls,
        distances: Tensor,
        retrieved_ids: Tensor,
        ground_truth: GroundTruth | None = None,
        is_relevant: Tensor | None = None,
    ) -> RetrievalResults:
        """Builds results from dense ``[Nq, K]`` matrices (``inf`` / ``-1`` padding at the end of each row).

        Args:
            distances (Tensor[Nq, K]), retrieved_ids (LongTensor[Nq, K]): the lists, padded.
            ground_truth: where relevance comes from (e.g. another results' :attr:`ground_truth`), or None.
            is_relevant (BoolTensor[Nq, K]): relevance of the lists if already known (else computed lazily).
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
        knn_function: KnnFunction | None = None,
    ) -> RetrievalResults:
        """Retrieves the ``n_items`` nearest gallery items for every query of ``dataset``.

        Args:
            embeddings (Tensor[len(dataset), D]): one row per dataset item.
            dataset: the query/gallery split; labels (if it is labelled) give the relevant items;
                an item never retrieves itself, nor items of its ``sequence``.
            n_items: list length (clipped to the gallery size; shorter when candidates run out).
            verbose: unused (OML's argument; the search has no progress bar).
            metric: ``euclidean`` (OML's), ``sqeuclidean``, ``cosine`` or ``dot``.
            knn_function: the search, with the signature of the ``knn`` op (default: ``knn``); e.g.
                ``oml_fast.distributed.distributed_knn`` to split it across ranks.
        """
        if len(embeddings) != len(dataset):
            raise ValueError(
                f"`embeddings` must have one row per dataset item ({len(dataset)}), got {len(embeddings)}"
            )
        keys = QueryGalleryKeys.from_dataset(dataset)
        queries, gallery = keys.split_embeddings(embeddings)
        return cls.from_search(queries, gallery, keys, n_items, metric, knn_function)

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
        keys = QueryGalleryKeys.from_datasets(dataset_query, dataset_gallery)
        return cls.from_search(embeddings_query, embeddings_gallery, keys, n_items, metric)

    @classmethod
    def from_search(
        cls,
        queries: Tensor,
        gallery: Tensor,
        keys: QueryGalleryKeys,
        n_items: int,
        metric: str = "euclidean",
        knn_function: KnnFunction | None = None,
    ) -> RetrievalResults:
        """The search itself, for callers that hold the query and gallery embeddings (post-processors).

        Args:
            queries (Tensor[Nq, D]), gallery (Tensor[Ng, D]): embeddings, on any one device.
            keys: exclusions and labels of the same queries and gallery items
                (:meth:`QueryGalleryKeys.from_dataset`).
            n_items: list length (clipped to the gallery size; shorter when candidates run out).
            metric: the distance (see the ``knn`` op).
            knn_function: the search, with the signature of the ``knn`` op (default: the op).

        Results live on the CPU; exact ties in distance are ordered by the smaller gallery index.
        """
        if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
            raise ValueError(f"`n_items` must be a positive integer, got {n_items!r}")
        if len(gallery) == 0:
            raise ValueError("the gallery is empty: there is nothing to retrieve")
        if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
            raise ValueError(
                f"embeddings must be 2-D with equal widths, got {tuple(queries.shape)} and {tuple(gallery.shape)}"
            )
        if len(queries) != keys.n_queries or len(gallery) != keys.n_gallery:
            raise ValueError(
                f"`keys` describe {keys.n_queries} queries and {keys.n_gallery} gallery items, "
                f"got embeddings of {len(queries)} and {len(gallery)}"
            )
        device = queries.device
        exclusions = keys.exclusion_keys(device)
        k = min(int(n_items), len(gallery))
        distances, retrieved = (knn_function or knn_op)(
            queries.contiguous(), gallery.to(device).contiguous(), k, metric, *exclusions
        )
        distances, retrieved = distances.cpu(), retrieved.cpu()
        if not keys.is_labelled:
            return cls.from_dense(distances, retrieved)
        assert keys.query_labels is not None and keys.gallery_labels is not None
        is_relevant, n_gt = retrieval_relevance(
            retrieved.to(device),
            keys.query_labels.to(device).contiguous(),
            keys.gallery_labels.to(device).contiguous(),
            *exclusions,
        )
        return cls.from_dense(distances, retrieved, LabelGroundTruth(keys, n_gt.cpu()), is_relevant.cpu())

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
    def ground_truth(self) -> GroundTruth | None:
        """Where relevance comes from (None when unknown); post-processors pass it on unchanged."""
        return self._ground_truth

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
        n_gt_to_show: int = N_GT_SHOW_EMBEDDING_METRICS,
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

    def visualize_as_html(
        self,
        query_ids: Sequence[int],
        dataset: IQueryGalleryDataset,
        n_galleries_to_show: int = 3,
        n_gt_to_show: int = N_GT_SHOW_EMBEDDING_METRICS,
        show: bool = False,
    ) -> str:
        """The given queries (positions ``0 .. Nq - 1``), their retrieved items and ground truths as HTML.

        One row per query: the query (blue frame), the ``n_galleries_to_show`` nearest gallery items
        (green: relevant, red: not, black: unknown) with their distances, then up to ``n_gt_to_show``
        ground-truth items (gray). ``dataset`` must implement ``IHTMLVisualizableDataset`` (texts,
        audio with a player). Returns the HTML; ``show`` also displays it in a notebook.
        """
        name = dataset.__class__.__name__
        if not isinstance(dataset, IHTMLVisualizableDataset):
            raise TypeError(f"Dataset must be an instance of IHTMLVisualizableDataset. Got {name}.")
        if len(self) != len(dataset.get_query_ids()):
            raise ValueError(
                f"Number of queries in {type(self).__name__} and {name} must match: "
                f"{len(self)} != {len(dataset.get_query_ids())}"
            )
        query_ids = [int(q) for q in query_ids]
        if not query_ids:
            raise ValueError("`query_ids` is empty: nothing to visualize")
        dataset_query_ids, dataset_gallery_ids = dataset.get_query_ids(), dataset.get_gallery_ids()
        gt_ids = self.gt_ids
        rows = []
        for q in query_ids:
            row = [dataset.visualize_as_html(item=int(dataset_query_ids[q]), title=f"Query #{q}", color=BLUE)]
            retrieved = self.retrieved_ids[q][:n_galleries_to_show].tolist()
            for j, gallery_id in enumerate(retrieved):
                color = BLACK if gt_ids is None else (GREEN if bool(self.is_relevant[q, j]) else RED)
                title = f"Gallery #{gallery_id} - {round(float(self.distances[q][j]), 3)}"
                row.append(
                    dataset.visualize_as_html(
                        item=int(dataset_gallery_ids[gallery_id]), title=title, color=color
                    )
                )
            row += [html_placeholder()] * (n_galleries_to_show - len(retrieved))
            if gt_ids is not None:
                for gallery_id in gt_ids[q][:n_gt_to_show].tolist():
                    row.append(
                        dataset.visualize_as_html(
                            item=int(dataset_gallery_ids[gallery_id]), title="GT", color=GRAY
                        )
                    )
            rows.append(row)
        html = html_blocks_to_grid(rows)
        if show:
            from IPython.display import HTML, display  # notebooks only

            display(HTML(html))
        return html

    def visualize_qg(
        self,
        query_ids: Sequence[int],
        dataset_query: Any,
        dataset_gallery: Any,
        n_galleries_to_show: int = 5,
        n_gt_to_show: int = N_GT_SHOW_EMBEDDING_METRICS,
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
        n_gt_to_show: int = N_GT_SHOW_EMBEDDING_METRICS,
        show: bool = False,
        save_path: str | None = None,
    ) -> Any:
        """Draws rows ``query | retrieved ... | ground truth ...`` with the given drawing functions.

        Frames: blue for the query; green / red for a relevant / irrelevant retrieved item (black when
        relevance is unknown); gray for the ground truths. Returns the matplotlib figure.
        """
        query_ids = [int(q) for q in query_ids]
        if not query_ids:
            raise ValueError("`query_ids` is empty: nothing to visualize")
        gt_ids = self.gt_ids
        n_gt_to_show = n_gt_to_show if gt_ids is not None else 0
        rows = []
        for q in query_ids:
            row = [(visualize_query_fn(q, BLUE), f"Query #{q}")]
            retrieved = self.retrieved_ids[q][:n_galleries_to_show].tolist()
            for j, gallery_id in enumerate(retrieved):
                if gt_ids is None:
                    color = BLACK
                else:
                    color = GREEN if bool(self.is_relevant[q, j]) else RED
                caption = f"Gallery #{gallery_id} - {round(float(self.distances[q][j]), 3)}"
                row.append((visualize_gallery_fn(gallery_id, color), caption))
            if gt_ids is not None:
                for gallery_id in gt_ids[q][:n_gt_to_show].tolist():
                    row.append((visualize_gallery_fn(gallery_id, GRAY), "GT"))
            rows.append(row)
        return plot_retrieval_rows(rows, save_path=save_path, show=show)


__all__ = ["RetrievalResults", "InvalidRetrievalResultsError", "factorize_sequences"]
