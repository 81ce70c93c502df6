"""EmbeddingMetrics: accumulate embeddings batch by batch, then retrieve and compute the metrics."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from copy import deepcopy
from pprint import pprint
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..const import (
    CATEGORIES_COLUMN,
    EMBEDDINGS_KEY,
    LOG_TOPK_IMAGES_PER_ROW,
    LOG_TOPK_ROWS_PER_METRIC,
    OVERALL_CATEGORIES_KEY,
)
from ..functional.metrics import (
    TMetricsDict,
    calc_fnmr_at_fmr,
    calc_topological_metrics,
    check_in_unit_range,
    flatten_metrics,
    optional_top_k,
    per_query_retrieval_metrics,
    reduce_metrics,
    split_by_categories,
)
from ..interfaces.datasets import ILabeledDataset, IQueryGalleryLabeledDataset
from ..interfaces.metrics import IMetricVisualisable
from ..interfaces.retrieval import IRetrievalPostprocessor
from ..retrieval.query_gallery import QueryGalleryKeys
from ..retrieval.retrieval_results import KnnFunction, RetrievalResults
from .accumulation import Accumulator, _world_size
from .fnmr import calc_fnmr_at_fmr_all_pairs


def calc_retrieval_metrics_rr(
    rr: RetrievalResults,
    query_categories: Any = None,
    cmc_top_k: Sequence[int] = (5,),
    precision_top_k: Sequence[int] = (5,),
    map_top_k: Sequence[int] = (5,),
    reduce: bool = True,
    verbose: bool = True,
) -> TMetricsDict:
    """``calc_retrieval_metrics`` on :class:`RetrievalResults` (their dense form: no per-query loop).

    >>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    >>> ds = InMemoryQueryGalleryDataset(labels=[0, 0, 1, 1])
    >>> rr = RetrievalResults.from_embeddings(torch.tensor([[0.0], [0.1], [1.0], [3.0]]), ds, n_items=3)
    >>> calc_retrieval_metrics_rr(rr, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,))["cmc"][1]
    tensor(0.7500)
    """
    metrics = per_query_retrieval_metrics(
        rr.is_relevant, rr.n_gt, rr.n_retrieved, cmc_top_k, precision_top_k, map_top_k, verbose=verbose
    )
    if query_categories is not None:
        metrics = split_by_categories(metrics, query_categories, len(rr.n_gt))
    return reduce_metrics(metrics) if reduce else metrics


def calc_fnmr_at_fmr_rr(rr: RetrievalResults, fmr_vals: Sequence[float] = (0.1,)) -> TMetricsDict:
    """FNMR@FMR over the pairs in the retrieved lists only (OML's function of the same name).

    Positive distances are those of retrieved relevant items, negative ones those of the others.
    This is what OML's EmbeddingMetrics reports, after retrieving whole galleries for it; ours
    computes FNMR@FMR over all query-gallery pairs without retrieving them
    (:func:`~oml_fast.metrics.fnmr.calc_fnmr_at_fmr_all_pairs`).

    Returns:
        ``{"fnmr@fmr": {fmr: value}}`` (``{}`` when ``fmr_vals`` is empty).

    >>> rr = RetrievalResults([torch.tensor([0.1, 0.5, 0.9])], [torch.tensor([0, 1, 2])], [torch.tensor([0, 2])])
    >>> calc_fnmr_at_fmr_rr(rr, fmr_vals=(0.5,))
    {'fnmr@fmr': {0.5: tensor(0.5000)}}
    """
    if not fmr_vals:
        return {}
    valid = rr.retrieved_ids_dense >= 0
    relevant = rr.is_relevant & valid
    distances = rr.distances_dense
    values = calc_fnmr_at_fmr(distances[relevant], distances[valid & ~relevant], fmr_vals)
    return {"fnmr@fmr": dict(zip(fmr_vals, values))}


def _accepted_kwargs(function: Any, candidates: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return candidates
    return {name: value for name, value in candidates.items() if name in parameters}


class EmbeddingMetrics(IMetricVisualisable):
    """Retrieval metrics of a validation set, from embeddings that arrive batch by batch (OML's API).

    Args:
        dataset: query/gallery split with labels (``IQueryGalleryLabeledDataset``); optional
            ``extra_data["category"]`` (per-category metrics) and ``["sequence"]`` (exclusions).
        cmc_top_k, precision_top_k, map_top_k: ``k`` values (positive ints); an empty one skips that metric.
        fmr_vals: false match rates for FNMR@FMR (empty: not computed). Computed exactly over all
            non-excluded query-gallery pairs in bounded memory (OML retrieves whole galleries for it).
        pcf_variance: explained-variance levels for PCF (empty: not computed).
        postprocessor: applied to the retrieval results before the metrics (thresholding, re-ranking);
            its ``process`` receives ``rr`` and, if it names them, ``dataset`` and ``embeddings``.
        metrics_to_exclude_from_visualization: metric names not visualised.
        return_only_overall_category: return only ``"OVERALL"``.
        visualize_only_overall_category: visualise worst queries of ``"OVERALL"`` only.
        verbose: print the metrics; warn about NaN precision.
        metric: distance (``euclidean`` as OML; ``sqeuclidean``, ``cosine``, ``dot``).

    >>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    >>> ds = InMemoryQueryGalleryDataset(labels=[0, 0, 1, 1])
    >>> calc = EmbeddingMetrics(ds, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(2,), pcf_variance=(), verbose=False)
    >>> calc.setup()
    >>> calc.update(torch.tensor([[1.0], [3.0]]), indices=[2, 3])
    >>> calc.update(torch.tensor([[0.0], [0.1]]), indices=[0, 1])
    >>> calc.compute_metrics()["OVERALL"]["cmc"][1]
    tensor(0.7500)
    """

    metric_name = ""
    overall_categories_key = OVERALL_CATEGORIES_KEY
    # The search used by `compute_metrics` (None: the `knn` op); EmbeddingMetricsDDP splits it across ranks.
    knn_function: KnnFunction | None = None
    # An index fed twice is an error (one embedding would be kept silently); EmbeddingMetricsDDP allows it:
    # distributed samplers pad the ranks' shares with repeated items.
    allow_repeated_indices: bool = False
    _seen: Tensor | None = None

    def __init__(
        self,
        dataset: IQueryGalleryLabeledDataset | None,
        cmc_top_k: Sequence[int] = (5,),
        precision_top_k: Sequence[int] = (5,),
        map_top_k: Sequence[int] = (5,),
        fmr_vals: Sequence[float] = (),
        pcf_variance: Sequence[float] = (0.5,),
        postprocessor: IRetrievalPostprocessor | None = None,
        metrics_to_exclude_from_visualization: Iterable[str] = (),
        return_only_overall_category: bool = False,
        visualize_only_overall_category: bool = True,
        verbose: bool = True,
        metric: str = "euclidean",
    ):
        self.dataset = dataset
        self.cmc_top_k = optional_top_k("cmc_top_k", cmc_top_k)
        self.precision_top_k = optional_top_k("precision_top_k", precision_top_k)
        self.map_top_k = optional_top_k("map_top_k", map_top_k)
        self.fmr_vals = check_in_unit_range("fmr_vals", fmr_vals) if fmr_vals else ()
        self.pcf_variance = check_in_unit_range("pcf_variance", pcf_variance) if pcf_variance else ()
        self.postprocessor = postprocessor
        self.metrics_to_exclude_from_visualization = [
            "fnmr@fmr",
            "pcf",
            *metrics_to_exclude_from_visualization,
        ]
        self.return_only_overall_category = return_only_overall_category
        self.visualize_only_overall_category = visualize_only_overall_category
        self.verbose = verbose
        self.metric = metric

        self.retrieval_results: RetrievalResults | None = None
        self.metrics: TMetricsDict | None = None
        self.metrics_unreduced: TMetricsDict | None = None
        self._acc_embeddings_key = "__embeddings"
        self.acc = Accumulator(keys_to_accumulate=(self._acc_embeddings_key,))
        # Embeddings stay on the device they come from: the search runs there (OML moves them to the CPU).
        self.acc.storage_device = None

    # ----- accumulation -----

    def setup(self, num_samples: int | None = None) -> None:
        """Starts a new accumulation of ``num_samples`` items (default: ``len(dataset)``)."""
        if num_samples is None:
            if self.dataset is None:
                raise ValueError("`num_samples` is required when no dataset is given")
            num_samples = len(self.dataset)
        self.retrieval_results, self.metrics, self.metrics_unreduced = None, None, None
        self._seen = None  # dataset indices fed since setup (repeats are an error)
        self.acc.refresh(int(num_samples))

    def update(self, embeddings: Tensor, indices: Any) -> None:
        """Stores a batch. ``indices`` (dataset indices, any order) say where each row goes.

        Args:
            embeddings (Tensor[B, D]): the batch's embeddings.
            indices (Tensor[B] or list of int): their dataset indices in ``0 .. len(dataset) - 1``, each
                fed once since :meth:`setup` (``ValueError`` for an index repeated in the batch or already
                collected; allowed under ``torch.distributed``, where samplers pad with repeated items).

        Under ``torch.distributed`` (OML's way: ``setup(num_samples)`` with the number of items this
        process sees), ``compute_metrics`` gathers every process's items through ``acc.sync()``.
        """
        if self.acc.num_samples is None:
            self.setup()
        num_samples = self.acc.num_samples
        assert num_samples is not None
        # Dataset indices: under DDP (OML's way) each rank sets up only the items it sees, so the bound
        # is the dataset's size, not `num_samples`.
        upper = len(self.dataset) if self.dataset is not None else num_samples
        indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1).cpu()
        if embeddings.ndim != 2 or len(embeddings) != len(indices):
            raise ValueError(
                f"`embeddings` must be [B, D] with one row per index ({len(indices)}), got {tuple(embeddings.shape)}"
            )
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= upper):
            raise ValueError(
                f"`indices` must lie in [0, {upper - 1}], got values in "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        if not self.allow_repeated_indices and _world_size() == 1:
            self._check_new_indices(indices, upper)
        stored = self.acc.storage.get(self._acc_embeddings_key)
        if isinstance(stored, Tensor) and embeddings.shape[1] != stored.shape[1]:
            raise ValueError(
                f"`embeddings` width changed: {stored.shape[1]} before, now {embeddings.shape[1]}"
            )
        self.acc.update_data({self._acc_embeddings_key: embeddings.detach()}, indices=indices.tolist())

    def _check_new_indices(self, indices: Tensor, upper: int) -> None:
        """``ValueError`` for an index repeated in the batch or fed by an earlier ``update``."""
        unique, counts = torch.unique(indices, return_counts=True)
        if bool((counts > 1).any()):
            first = int((counts > 1).nonzero()[0, 0])
            raise ValueError(
                f"`indices` must not repeat a dataset index, got {int(unique[first])} {int(counts[first])} "
                "times in one batch (only one of its embeddings would be kept)"
            )
        if self._seen is None or len(self._seen) != upper:
            self._seen = torch.zeros(upper, dtype=torch.bool)
        if bool(self._seen[indices].any()):
            again = int(indices[self._seen[indices]][0])
            raise ValueError(
                f"`indices` holds {again}, already collected by an earlier `update` since `setup()` "
                "(an item fed twice); call `setup()` to start a new accumulation"
            )
        self._seen[indices] = True

    def update_data(self, data: dict[str, Any], indices: Any) -> None:
        self.update(embeddings=data[EMBEDDINGS_KEY], indices=indices)

    @property
    def embeddings(self) -> Tensor:
        """The accumulated embeddings ``[num_samples, D]`` in dataset order (raises if some items are missing).

        Syncs ``acc`` first (as OML: sorted by index, duplicates dropped, gathered across processes).
        """
        storage = self.acc.storage
        if self.acc.num_samples is None or self._acc_embeddings_key not in storage:
            raise ValueError("No embeddings were collected: call `setup()` and `update()` first")
        if not self.acc.is_storage_full():
            seen = np.asarray(storage.get(self.acc._indices_key, []), dtype=np.int64)
            missing = np.setdiff1d(np.arange(self.acc.num_samples), seen)
            raise ValueError(
                f"Metrics have to be calculated on fully collected data: we've collected "
                f"{self.acc.collected_samples} out of {self.acc.num_samples} items; missing indices "
                f"(first ones): {missing[:10].tolist()}"
            )
        self.acc = self.acc.sync()
        embeddings = self.acc.storage[self._acc_embeddings_key]
        assert isinstance(embeddings, Tensor)
        return embeddings

    # ----- computation -----

    def _max_k(self) -> int:
        """Length of the retrieved lists: the largest ``k``, or more for the post-processor.

        As in OML, a post-processor with ``top_n`` gets lists of at least ``top_n`` items, and one
        without it gets whole galleries (e.g. AdaptiveThresholding averages the gaps between
        consecutive distances over every retrieved item, so its cuts depend on the list length).
        Post-processors whose effect on the metrics does not depend on the list length say so with
        ``needs_whole_gallery = False`` (ConstantThresholding, k-reciprocal re-ranking).
        """
        max_k = max([*self.cmc_top_k, *self.precision_top_k, *self.map_top_k, 1])
        if self.postprocessor is None:
            return max_k
        top_n = self.postprocessor.top_n
        if top_n is not None:
            return max(max_k, int(top_n))
        if self.postprocessor.needs_whole_gallery:
            assert self.dataset is not None
            return max(max_k, len(self.dataset.get_gallery_ids()))
        return max_k

    def _item_categories(self) -> np.ndarray | None:
        """Per-item categories of the dataset (``extra_data["category"]``), or None."""
        assert self.dataset is not None
        extra = getattr(self.dataset, "extra_data", {}) or {}
        return np.asarray(extra[CATEGORIES_COLUMN]) if CATEGORIES_COLUMN in extra else None

    def _compute_retrieval_results(self, embeddings: Tensor, keys: QueryGalleryKeys) -> None:
        rr = RetrievalResults.from_search(
            *keys.split_embeddings(embeddings),
            keys,
            n_items=self._max_k(),
            metric=self.metric,
            knn_function=self.knn_function,
        )
        if self.postprocessor is not None:
            candidates = {"rr": rr, "dataset": self.dataset, "embeddings": embeddings}
            rr = self.postprocessor.process(**_accepted_kwargs(self.postprocessor.process, candidates))
        self.retrieval_results = rr

    def _fnmr_at_fmr(self, embeddings: Tensor, keys: QueryGalleryKeys) -> TMetricsDict:
        assert keys.query_labels is not None and keys.gallery_labels is not None
        device = embeddings.device
        values = calc_fnmr_at_fmr_all_pairs(
            *keys.split_embeddings(embeddings),
            keys.query_labels.to(device),
            keys.gallery_labels.to(device),
            self.fmr_vals,
            *keys.exclusion_keys(device),
            metric=self.metric,
        )
        return {"fnmr@fmr": dict(zip(self.fmr_vals, values))}

    def compute_metrics(self) -> TMetricsDict:
        """Retrieves, post-processes and computes the metrics.

        Returns:
            ``{"OVERALL": {"cmc": {k: v}, "precision": {k: v}, "map": {k: v}, "pcf": {v: x},
            "fnmr@fmr": {fmr: x}}, <category>: {...}}`` with 0-d tensors as values.
        """
        if self.dataset is None or not isinstance(self.dataset, ILabeledDataset):
            raise ValueError(
                "EmbeddingMetrics needs a labelled query/gallery dataset (IQueryGalleryLabeledDataset)"
            )
        embeddings = self.embeddings
        if len(embeddings) != len(self.dataset):
            raise ValueError(
                f"collected {len(embeddings)} embeddings for a dataset of {len(self.dataset)} items"
            )
        keys = QueryGalleryKeys.from_dataset(self.dataset)
        self._compute_retrieval_results(embeddings, keys)
        assert self.retrieval_results is not None

        categories = self._item_categories()
        metrics_r = calc_retrieval_metrics_rr(
            self.retrieval_results,
            query_categories=keys.query_categories,
            cmc_top_k=self.cmc_top_k,
            precision_top_k=self.precision_top_k,
            map_top_k=self.map_top_k,
            reduce=False,
            verbose=self.verbose,
        )
        metrics_t = calc_topological_metrics(embeddings.float(), self.pcf_variance, categories=categories)
        if categories is None:
            unreduced: TMetricsDict = {OVERALL_CATEGORIES_KEY: {**metrics_r, **metrics_t}}
        else:
            unreduced = {cat: {**metrics_r[cat], **metrics_t.get(cat, {})} for cat in metrics_r}
        if self.fmr_vals:
            unreduced[OVERALL_CATEGORIES_KEY].update(self._fnmr_at_fmr(embeddings, keys))

        self.metrics_unreduced = unreduced
        self.metrics = reduce_metrics(unreduced)
        if self.return_only_overall_category:
            result = {OVERALL_CATEGORIES_KEY: deepcopy(self.metrics[OVERALL_CATEGORIES_KEY])}
        else:
            result = deepcopy(self.metrics)
        if self.verbose:
            print("\nMetrics:")
            pprint(result)
        return result

    @property
    def metrics_flat(self) -> dict[str, Any]:
        """The last metrics with flattened names (``"OVERALL/cmc/1"``) for loggers."""
        if self.metrics is None:
            raise ValueError("No metrics yet: call `compute_metrics()` first")
        return flatten_metrics(self.metrics)

    # ----- worst queries and their pictures -----

    def ready_to_visualize(self) -> bool:
        return self.dataset is not None and callable(getattr(self.dataset, "visualize", None))

    def get_worst_queries_ids(self, metric_name: str, n_queries: int) -> list[int]:
        """Positions (``0 .. Nq - 1``) of the ``n_queries`` queries with the lowest ``metric_name``
        (a flattened name such as ``"OVERALL/cmc/1"``), worst first; NaN values rank as worst."""
        if self.metrics_unreduced is None:
            raise ValueError("No metrics yet: call `compute_metrics()` first")
        flat = flatten_metrics(self.metrics_unreduced)
        if metric_name not in flat:
            raise KeyError(f"unknown metric {metric_name!r}; known: {sorted(flat)}")
        values = flat[metric_name]
        if not isinstance(values, Tensor) or values.ndim != 1:
            raise ValueError(f"{metric_name!r} has no per-query values")
        values = torch.nan_to_num(values.double(), nan=-float("inf"))
        order = torch.sort(values, stable=True).indices
        return order[: min(n_queries, len(order))].tolist()

    def get_plot_for_worst_queries(
        self, metric_name: str, n_queries: int, n_instances: int, verbose: bool = False
    ) -> Any:
        query_ids = self.get_worst_queries_ids(metric_name=metric_name, n_queries=n_queries)
        return self.get_plot_for_queries(query_ids=query_ids, n_instances=n_instances, verbose=verbose)

    def get_plot_for_queries(self, query_ids: list[int], n_instances: int, verbose: bool = True) -> Any:
        if self.retrieval_results is None or self.metrics_unreduced is None:
            raise ValueError("Not ready to plot: call `compute_metrics()` first")
        assert self.dataset is not None  # `compute_metrics()` needs it
        return self.retrieval_results.visualize(
            query_ids=query_ids, n_galleries_to_show=n_instances, verbose=verbose, dataset=self.dataset
        )

    def visualize(self) -> tuple[list[Any], list[str]]:
        """Figures of the worst queries for every (per-query) metric, with their titles."""
        if self.metrics is None:
            raise ValueError("No metrics yet: call `compute_metrics()` first")
        figures, titles = [], []
        for metric_name in flatten_metrics(
            self.metrics, ignored_keys=self.metrics_to_exclude_from_visualization
        ):
            if self.visualize_only_overall_category and not metric_name.startswith(OVERALL_CATEGORIES_KEY):
                continue
            figures.append(
                self.get_plot_for_worst_queries(
                    metric_name, LOG_TOPK_ROWS_PER_METRIC, LOG_TOPK_IMAGES_PER_ROW
                )
            )
            titles.append(f"top {LOG_TOPK_ROWS_PER_METRIC} worst by {metric_name}".replace("/", "_"))
        return figures, titles


__all__ = ["EmbeddingMetrics", "calc_retrieval_metrics_rr", "calc_fnmr_at_fmr_rr"]
