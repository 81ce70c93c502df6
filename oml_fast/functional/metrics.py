"""Retrieval metrics with OML 4.x's inputs and output structure (definitions: docs/metrics.md).

Per-query values come from the compiled ``retrieval_metrics`` op on a dense padded relevance
matrix, so no function here loops over queries in Python.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence, Sized
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from .. import ops
from ..const import OVERALL_CATEGORIES_KEY
from ..errors import InvalidInputError
from ..ops.checks import check_in_unit_range, check_top_k

TMetricsDict = dict[Any, Any]
TCategories = Tensor | np.ndarray


def pad_ids(ids: Sequence[Tensor], fill: int = -1, name: str = "ids") -> tuple[Tensor, Tensor]:
    """Packs variable-length 1-D int tensors into ``(LongTensor[N, max_len] padded with fill, lengths[N])``.

    Floats are taken when they hold integers; a fraction raises ``ValueError`` naming ``name`` (it would
    be truncated to another gallery index).

    >>> pad_ids([torch.tensor([3, 1]), torch.tensor([], dtype=torch.long)])
    (tensor([[ 3,  1],
            [-1, -1]]), tensor([2, 0]))
    """
    lengths = torch.tensor([len(x) for x in ids], dtype=torch.int64)
    width = int(lengths.max()) if len(ids) else 0
    dense = torch.full((len(ids), width), fill, dtype=torch.int64)
    if width > 0 and int(lengths.sum()) > 0:
        flat = torch.cat([torch.as_tensor(x).reshape(-1).cpu() for x in ids])
        if flat.is_floating_point() and not bool((flat == flat.trunc()).all()):
            bad = flat[flat != flat.trunc()][0].item()
            raise ValueError(f"`{name}` must hold integer gallery indices, got {bad}")
        flat = flat.to(torch.int64)
        mask = torch.arange(width)[None, :] < lengths[:, None]
        dense[mask] = flat
    return dense, lengths


def check_padded_ids(name: str, dense: Tensor, lengths: Tensor) -> None:
    """Per query, gallery ids ``>= 0`` and no id twice (``dense``/``lengths`` as :func:`pad_ids` returns).

    A repeated retrieved id would be credited twice (precision above 1); a negative one reads as padding.

    >>> check_padded_ids("retrieved_ids", *pad_ids([torch.tensor([2, 0, 2])]))
    Traceback (most recent call last):
    ...
    ValueError: `retrieved_ids` must be unique within a query, got 2 twice for query 0
    """
    valid = torch.arange(dense.shape[1])[None, :] < lengths[:, None]
    negative = (valid & (dense < 0)).nonzero()
    if negative.numel() > 0:
        q, j = (int(v) for v in negative[0])
        raise ValueError(f"`{name}` must hold gallery indices >= 0, got {int(dense[q, j])} for query {q}")
    # Padding (-1) sorts first and never equals a valid id, so equal neighbours are repeated ids.
    ordered = dense.sort(dim=1).values
    repeated = ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).nonzero()
    if repeated.numel() > 0:
        q, j = (int(v) for v in repeated[0])
        raise ValueError(
            f"`{name}` must be unique within a query, got {int(ordered[q, j])} twice for query {q}"
        )


def relevance_from_gt_ids(retrieved: Tensor, gt_ids: Sequence[Tensor]) -> Tensor:
    """``is_relevant[q, j] = retrieved[q, j] in gt_ids[q]`` for a padded ``retrieved`` (``-1`` = padding).

    Vectorised over all queries: every (query, id) pair is encoded as one integer and looked up with a
    single ``isin``.
    """
    gt_dense, gt_lengths = pad_ids(gt_ids)
    n_query = retrieved.shape[0]
    if retrieved.numel() == 0 or gt_dense.numel() == 0:
        return torch.zeros(retrieved.shape, dtype=torch.bool)
    stride = int(max(int(retrieved.max()), int(gt_dense.max()), 0)) + 1
    rows = torch.arange(n_query, dtype=torch.int64)[:, None]
    gt_valid = torch.arange(gt_dense.shape[1])[None, :] < gt_lengths[:, None]
    gt_codes = (rows * stride + gt_dense)[gt_valid]
    codes = rows * stride + retrieved.clamp_min(0)
    return torch.isin(codes, gt_codes) & (retrieved >= 0)


def _categories_to_numpy(
    categories: Any, n: int, name: str = "query_categories", per: str = "query"
) -> np.ndarray:
    array = categories.detach().cpu().numpy() if isinstance(categories, Tensor) else np.asarray(categories)
    if array.ndim != 1 or len(array) != n:
        raise InvalidInputError(
            f"`{name}` must be 1-D with one value per {per} ({n}), got shape {array.shape}"
        )
    return array


def _group_positions(categories: np.ndarray) -> list[tuple[Hashable, Tensor]]:
    """``[(category, positions of its items)]`` in order of first appearance, in O(n log n) overall."""
    uniques, first_index, codes = np.unique(categories, return_index=True, return_inverse=True)
    order = np.argsort(codes.reshape(-1), kind="stable")
    counts = np.bincount(codes.reshape(-1), minlength=len(uniques))
    groups = np.split(order, np.cumsum(counts)[:-1])
    appearance = np.argsort(first_index, kind="stable")
    # numpy scalars become Python values; object arrays (e.g. pandas string columns) already hold them.
    return [(_python_value(uniques[i]), torch.from_numpy(groups[i])) for i in appearance]


def _python_value(value: Any) -> Hashable:
    return value.item() if isinstance(value, np.generic) else value


def per_query_retrieval_metrics(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor,
    cmc_top_k: Sequence[int] = (5,),
    precision_top_k: Sequence[int] = (5,),
    map_top_k: Sequence[int] = (5,),
    verbose: bool = True,
) -> TMetricsDict:
    """``{"cmc": {k: FloatTensor[Nq]}, "precision": {...}, "map": {...}}`` from dense relevance.

    Args:
        is_relevant (Tensor[Nq, K] bool): ``g_i`` of each retrieved list (False on padding).
        n_gt (Tensor[Nq] int64): relevant candidates per query.
        n_retrieved (Tensor[Nq] int64): length ``L`` of each retrieved list.
        cmc_top_k, precision_top_k, map_top_k: positive ``k`` values; an empty one skips that metric.
        verbose: warn (naming how many queries) when precision is NaN.

    >>> g = torch.tensor([[True, False, True, False, False]])
    >>> m = per_query_retrieval_metrics(g, torch.tensor([10]), torch.tensor([5]), (1,), (5,), (5,))
    >>> round(m["map"][5].item(), 4)
    0.8333
    """
    requested = {
        "cmc": optional_top_k("cmc_top_k", cmc_top_k),
        "precision": optional_top_k("precision_top_k", precision_top_k),
        "map": optional_top_k("map_top_k", map_top_k),
    }
    if not any(requested.values()):
        return {}
    if is_relevant.shape[1] == 0:
        # The ops need at least one column; an all-padding column changes nothing.
        is_relevant = torch.zeros(is_relevant.shape[0], 1, dtype=torch.bool, device=is_relevant.device)
    # A metric that is not requested is computed at k = 1 (one cheap column) and dropped.
    values = ops.retrieval_metrics(
        is_relevant.contiguous(),
        n_gt.to(torch.int64).contiguous(),
        n_retrieved.to(torch.int64).contiguous(),
        *(list(top_k or (1,)) for top_k in requested.values()),
    )
    n_undefined = int(((n_retrieved > 0) & (n_gt == 0)).sum())
    if requested["precision"] and n_undefined > 0:
        warnings.warn(
            f"{n_undefined} of {len(n_gt)} queries retrieved items but have no relevant gallery item "
            f"(every positive was excluded or absent): precision@k is NaN (0/0) for them, and so is its mean.",
            stacklevel=3,
        )
    return {
        name: {k: per_query[:, i] for i, k in enumerate(top_k)}
        for (name, top_k), per_query in zip(requested.items(), (v.float().cpu() for v in values))
        if top_k
    }


def split_by_categories(
    metrics: TMetricsDict, query_categories: Any, n_query: int | None = None
) -> TMetricsDict:
    """``{"OVERALL": metrics, <category>: metrics of its queries, ...}`` (categories in order of first
    appearance), costing O(n_queries log n_queries) whatever the number of categories.

    ``n_query`` (the number of queries) is read from the metrics when not given; it is needed when
    ``metrics`` is empty (every ``top_k`` empty).
    """
    n_query = _first_length(metrics) if n_query is None else n_query
    categories = _categories_to_numpy(query_categories, n_query)
    output: TMetricsDict = {OVERALL_CATEGORIES_KEY: metrics}
    for category, positions in _group_positions(categories):
        output[category] = take_unreduced_metrics_by_ids(metrics, positions)
    return output


def _first_length(metrics: Mapping[Any, Any]) -> int:
    for value in metrics.values():
        if isinstance(value, Tensor) and value.ndim == 1:
            return len(value)
        if isinstance(value, Mapping):
            n = _first_length(value)
            if n >= 0:
                return n
    return -1


def calc_retrieval_metrics(
    retrieved_ids: Sequence[Tensor],
    gt_ids: Sequence[Tensor],
    query_categories: Any = None,
    cmc_top_k: Sequence[int] = (5,),
    precision_top_k: Sequence[int] = (5,),
    map_top_k: Sequence[int] = (5,),
    reduce: bool = True,
    verbose: bool = True,
) -> TMetricsDict:
    """CMC@k, Precision@k and mAP@k from retrieved and relevant gallery ids (OML's signature and output).

    Args:
        retrieved_ids: per query, the retrieved gallery indices in ranking order (1-D int tensors,
            any lengths, no excluded items; ``ValueError`` for a negative or repeated id).
        gt_ids: per query, the indices of all relevant (non-excluded) gallery items (the same checks).
        query_categories (array-like[Nq]): category per query; adds one entry per category beside
            ``"OVERALL"``.
        cmc_top_k, precision_top_k, map_top_k: positive ``k`` values (else ``ValueError``); an empty one
            skips that metric (as in OML: its key is absent).
        reduce: mean over queries (0-d tensors) if True, else per-query ``FloatTensor[Nq]``.
        verbose: warn when some precision values are NaN (queries that retrieved items but have no
            relevant one).

    Returns:
        ``{"cmc": {k: v}, "precision": {k: v}, "map": {k: v}}``, or with categories
        ``{"OVERALL": {...}, <category>: {...}}``.

    >>> retrieved = [torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])]
    >>> gt = [torch.tensor([0, 2]), torch.tensor([1])]
    >>> m = calc_retrieval_metrics(retrieved, gt, cmc_top_k=(1,), precision_top_k=(2,), map_top_k=(3,))
    >>> {name: {k: round(v.item(), 4) for k, v in values.items()} for name, values in m.items()}
    {'cmc': {1: 0.5}, 'precision': {2: 0.25}, 'map': {3: 0.5833}}
    """
    if len(retrieved_ids) != len(gt_ids):
        raise InvalidInputError(
            f"`retrieved_ids` and `gt_ids` must have one entry per query, got {len(retrieved_ids)} and {len(gt_ids)}"
        )
    retrieved, n_retrieved = pad_ids(retrieved_ids, name="retrieved_ids")
    check_padded_ids("retrieved_ids", retrieved, n_retrieved)
    check_padded_ids("gt_ids", *pad_ids(gt_ids, name="gt_ids"))
    is_relevant = relevance_from_gt_ids(retrieved, gt_ids)
    n_gt = torch.tensor([len(x) for x in gt_ids], dtype=torch.int64)
    metrics = per_query_retrieval_metrics(
        is_relevant, n_gt, n_retrieved, cmc_top_k, precision_top_k, map_top_k, verbose=verbose
    )
    if query_categories is not None:
        metrics = split_by_categories(metrics, query_categories, len(retrieved_ids))
    return reduce_metrics(metrics) if reduce else metrics


def optional_top_k(name: str, top_k: Any) -> tuple[int, ...]:
    """A ``top_k`` of the combined metric functions: empty (or None) means "skip this metric" (OML),
    anything else must be positive ints (:func:`~oml_fast.ops.checks.check_top_k`).

    >>> optional_top_k("map_top_k", ()), optional_top_k("map_top_k", [5, 1])
    ((), (5, 1))
    """
    if top_k is None or (isinstance(top_k, Sized) and not isinstance(top_k, str) and len(top_k) == 0):
        return ()
    return check_top_k(name, top_k)


def _dense_gt_tops(gt_tops: Sequence[Any]) -> tuple[Tensor, Tensor]:
    """OML's ``gt_tops`` (per query, a bool vector over its retrieved list) as ``(BoolTensor[Nq, K], L[Nq])``."""
    rows = [torch.as_tensor(x).reshape(-1).bool().cpu() for x in gt_tops]
    lengths = torch.tensor([len(x) for x in rows], dtype=torch.int64)
    width = max(int(lengths.max()) if len(rows) else 0, 1)
    dense = torch.zeros(len(rows), width, dtype=torch.bool)
    if int(lengths.sum()) > 0:
        dense[torch.arange(width)[None, :] < lengths[:, None]] = torch.cat(rows)
    return dense, lengths


def _single_metric(
    name: str, gt_tops: Sequence[Any], n_gts: Sequence[int], top_k: Sequence[int]
) -> list[Tensor]:
    """One of cmc / precision / map per query, for every ``k`` (OML's list of ``FloatTensor[Nq]``)."""
    top_k = check_top_k("top_k", top_k)
    if len(gt_tops) != len(n_gts):
        raise InvalidInputError(
            f"`gt_tops` and `n_gts` must have one entry per query, got {len(gt_tops)} and {len(n_gts)}"
        )
    is_relevant, n_retrieved = _dense_gt_tops(gt_tops)
    n_gt = torch.as_tensor(list(n_gts), dtype=torch.int64).reshape(-1)
    lists = {"cmc": [1], "precision": [1], "map": [1], name: list(top_k)}
    values = dict(
        zip(
            ("cmc", "precision", "map"),
            ops.retrieval_metrics(is_relevant, n_gt, n_retrieved, *lists.values()),
        )
    )
    per_query = values[name].float().cpu()
    return [per_query[:, i].contiguous() for i in range(len(top_k))]


def calc_cmc(
    gt_tops: Sequence[Any], n_gts: Sequence[int], top_k: Sequence[int], verbose: bool = False
) -> list[Tensor]:
    """CMC@k of every query: 1 if a relevant item is among its first ``k`` retrieved, else 0.

    Args:
        gt_tops: per query, ``BoolTensor[L]``: whether each retrieved item is relevant (in ranking order).
        n_gts: per query, the number of relevant gallery items.
        top_k: the ``k`` values (non-empty, positive).
        verbose: accepted for OML's signature (there is no per-query loop to show progress for).

    Returns:
        One ``FloatTensor[Nq]`` per ``k``. Edge cases as docs/metrics.md (``L = 0``: 1 if ``n_gt = 0``, else 0).

    >>> gt_tops = [torch.tensor([1, 0]).bool(), torch.tensor([0, 1, 1]).bool(), torch.tensor([0, 0]).bool(), torch.tensor([]).bool()]
    >>> calc_cmc(gt_tops, [2, 2, 1, 0], top_k=(1, 2))
    [tensor([1., 0., 0., 1.]), tensor([1., 1., 0., 1.])]
    """
    return _single_metric("cmc", gt_tops, n_gts, top_k)


def calc_precision(
    gt_tops: Sequence[Any], n_gts: Sequence[int], top_k: Sequence[int], verbose: bool = False
) -> list[Tensor]:
    """Precision@k of every query: ``hits(k') / min(n_gt, k')`` with ``k' = min(k, L)`` (OML's definition).

    Arguments and return value as :func:`calc_cmc`.

    >>> gt_tops = [torch.tensor([1, 0]).bool(), torch.tensor([0, 1, 1]).bool(), torch.tensor([0, 0]).bool(), torch.tensor([]).bool()]
    >>> calc_precision(gt_tops, [2, 3, 5, 2], top_k=(1, 2))
    [tensor([1., 0., 0., 0.]), tensor([0.5000, 0.5000, 0.0000, 0.0000])]
    """
    return _single_metric("precision", gt_tops, n_gts, top_k)


def calc_map(
    gt_tops: Sequence[Any], n_gts: Sequence[int], top_k: Sequence[int], verbose: bool = False
) -> list[Tensor]:
    """mAP@k of every query: the mean of ``hits(i) / i`` over the relevant positions ``i <= k'``.

    Arguments and return value as :func:`calc_cmc`.

    >>> gt_tops = [torch.tensor([1, 0]).bool(), torch.tensor([0, 1]).bool(), torch.tensor([0, 0, 0, 0]).bool(), torch.tensor([]).bool()]
    >>> calc_map(gt_tops, [1, 1, 2, 0], top_k=(1, 2))
    [tensor([1., 0., 0., 1.]), tensor([1.0000, 0.5000, 0.0000, 1.0000])]
    """
    return _single_metric("map", gt_tops, n_gts, top_k)


def reduce_metrics(metrics_to_reduce: TMetricsDict) -> TMetricsDict:
    """Replaces every tensor / array by its mean (a NaN propagates), keeping the nesting."""
    output: TMetricsDict = {}
    for key, value in metrics_to_reduce.items():
        if isinstance(value, (Tensor, np.ndarray)):
            output[key] = value.mean()
        elif isinstance(value, (float, int)):
            output[key] = value
        else:
            output[key] = reduce_metrics(value)
    return output


def take_unreduced_metrics_by_ids(metrics: TMetricsDict, ids: Tensor) -> TMetricsDict:
    """Selects the given query positions from every per-query tensor (scalars stay as they are)."""
    output: TMetricsDict = {}
    for key, value in metrics.items():
        if isinstance(value, Tensor):
            output[key] = value[ids] if value.ndim == 1 else value
        elif isinstance(value, (float, int)):
            output[key] = value
        else:
            output[key] = take_unreduced_metrics_by_ids(value, ids)
    return output


def take_unreduced_metrics_by_mask(metrics: TMetricsDict, mask: Any) -> TMetricsDict:
    """OML's name: selects queries by a boolean mask."""
    ids = torch.as_tensor(np.flatnonzero(np.asarray(mask)))
    return take_unreduced_metrics_by_ids(metrics, ids)


def flatten_metrics(
    metrics: Mapping[Any, Any], ignored_keys: Iterable[str] = (), sep: str = "/"
) -> dict[str, Any]:
    """``{"OVERALL": {"cmc": {1: v}}}`` -> ``{"OVERALL/cmc/1": v}`` (for loggers).

    >>> flatten_metrics({"OVERALL": {"cmc": {1: 0.5}, "pcf": {0.5: 0.25}}}, ignored_keys=["pcf"])
    {'OVERALL/cmc/1': 0.5}
    """
    ignored = set(ignored_keys)
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if str(key) in ignored:
            continue
        if isinstance(value, Mapping):
            for sub_key, sub_value in flatten_metrics(value, ignored, sep).items():
                flat[f"{key}{sep}{sub_key}"] = sub_value
        else:
            flat[str(key)] = value
    return flat


def calc_fnmr_at_fmr(pos_dist: Any, neg_dist: Any, fmr_vals: Sequence[float] = (0.1,)) -> Tensor:
    """False non-match rate at the thresholds where the false match rate equals ``fmr_vals``.

    ``T = numpy.quantile(neg_dist, fmr)`` (linear interpolation); ``fnmr = mean(pos_dist >= T)``.

    Args:
        pos_dist (array[P]): distances between relevant pairs. neg_dist (array[M]): between others.
            NaN values raise ``ValueError``.
        fmr_vals: quantiles in ``[0, 1]``.

    Returns:
        FloatTensor[len(fmr_vals)].

    >>> pos_dist = np.array([0, 0, 1, 1, 2, 2, 5, 5, 9, 9])
    >>> neg_dist = np.array([3, 3, 4, 4, 6, 6, 7, 7, 8, 8])
    >>> calc_fnmr_at_fmr(pos_dist, neg_dist, fmr_vals=(0.1, 0.5))
    tensor([0.4000, 0.2000])
    """
    fmr_vals = check_in_unit_range("fmr_vals", fmr_vals)
    pos = pos_dist.detach().cpu().numpy() if isinstance(pos_dist, Tensor) else np.asarray(pos_dist)
    neg = neg_dist.detach().cpu().numpy() if isinstance(neg_dist, Tensor) else np.asarray(neg_dist)
    if neg.size == 0:
        raise ValueError("`neg_dist` is empty: FNMR@FMR needs at least one negative pair")
    for name, values in (("pos_dist", pos), ("neg_dist", neg)):
        # A NaN threshold makes every comparison false: FNMR 0, the best score.
        if values.size and bool(np.isnan(values.astype(np.float64, copy=False)).any()):
            raise ValueError(f"`{name}` contains NaN values; FNMR@FMR needs comparable distances")
    thresholds = np.quantile(neg, fmr_vals)
    with np.errstate(invalid="ignore", divide="ignore"):
        fnmr = (pos[None, :] >= thresholds[:, None]).sum(axis=1) / len(pos)
    return torch.tensor(fnmr, dtype=torch.float32)


def calc_fnmr_at_fmr_by_distances(pos_dist: Any, neg_dist: Any, fmr_vals: Sequence[float]) -> TMetricsDict:
    """``{"fnmr@fmr": {fmr: value}}`` (:func:`calc_fnmr_at_fmr`), or ``{}`` when ``fmr_vals`` is empty."""
    if not fmr_vals:
        return {}
    return {"fnmr@fmr": dict(zip(fmr_vals, calc_fnmr_at_fmr(pos_dist, neg_dist, fmr_vals)))}


def calc_pcf(embeddings: Tensor, pcf_variance: Sequence[float]) -> Tensor:
    """Principal component fraction: the share of PCA components needed to explain ``pcf_variance``.

    ``n(v)`` = number of leading components whose cumulative explained-variance ratio first exceeds
    ``v``; ``pcf(v) = min(n(v), D) / D`` (OML may report more than 1 at ``v = 1``; we cap).

    Args:
        embeddings (Tensor[N, D]). pcf_variance: values in ``[0, 1]``.

    Returns:
        Tensor[len(pcf_variance)] (NaN where the decomposition fails).

    >>> calc_pcf(torch.eye(4, 10), pcf_variance=(0.5, 1))
    tensor([0.2000, 0.5000])
    """
    pcf_variance = check_in_unit_range("pcf_variance", pcf_variance)
    dim = embeddings.shape[1]
    try:
        centered = embeddings - embeddings.mean(dim=0, keepdim=True)
        singular_values = torch.linalg.svdvals(centered)
        explained_variance = singular_values**2 / (embeddings.shape[0] - 1)
        ratio = explained_variance / explained_variance.sum()
        cumulative = torch.cumsum(ratio, dim=0)
        thresholds = torch.tensor(pcf_variance, dtype=cumulative.dtype, device=cumulative.device)
        n_components = torch.searchsorted(cumulative, thresholds, right=True) + 1
        return (n_components.clamp_max(dim).to(embeddings.dtype) / dim).cpu()
    except Exception:  # noqa: BLE001 - e.g. "failed to converge" on ill-conditioned input, as OML
        return torch.full((len(pcf_variance),), float("nan"))


def calc_topological_metrics(
    embeddings: Tensor, pcf_variance: Sequence[float], categories: Any = None, verbose: bool = False
) -> TMetricsDict:
    """``{"pcf": {v: value}}``; with per-item ``categories``: ``{"OVERALL": {...}, <category>: {...}}``.

    Categories are computed on all items of the category (queries and gallery alike), sorted.
    """
    if not pcf_variance:
        return {}
    metrics: TMetricsDict = {"pcf": dict(zip(pcf_variance, calc_pcf(embeddings, pcf_variance)))}
    if categories is None:
        return metrics
    array = _categories_to_numpy(categories, len(embeddings), "categories", "embedding")
    output: TMetricsDict = {OVERALL_CATEGORIES_KEY: metrics}
    for category, positions in sorted(_group_positions(array), key=lambda item: cast(Any, item[0])):
        pcf = calc_pcf(embeddings[positions.to(embeddings.device)], pcf_variance)
        output[category] = {"pcf": dict(zip(pcf_variance, pcf))}
    return output


__all__ = [
    "TMetricsDict",
    "TCategories",
    "calc_cmc",
    "calc_precision",
    "calc_map",
    "calc_fnmr_at_fmr_by_distances",
    "optional_top_k",
    "calc_retrieval_metrics",
    "calc_fnmr_at_fmr",
    "calc_pcf",
    "calc_topological_metrics",
    "reduce_metrics",
    "take_unreduced_metrics_by_mask",
    "take_unreduced_metrics_by_ids",
    "flatten_metrics",
    "per_query_retrieval_metrics",
    "split_by_categories",
    "check_top_k",
]
