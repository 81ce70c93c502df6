"""Argument checks of the ops, in Python: the twins of ``csrc/common/checks.h`` and ``csrc/*/*_checks.h``.

One place for every Python-side precondition: the fake kernels in :mod:`oml_fast.ops`, the reference
twins in :mod:`oml_fast.reference`, the op wrappers (``top_k`` lists, labels) and
:mod:`oml_fast.functional` use these functions. Each raises the class the C++ check raises
(``TORCH_CHECK_VALUE`` -> ``ValueError``, ``TORCH_CHECK_TYPE`` -> ``TypeError``, ``TORCH_CHECK_INDEX`` ->
``IndexError``) with the same message, tensors described as ``"[512, 1] float32 on cpu"``;
``tests/ops/test_checks.py`` compares the eager op, the op under ``torch.compile(fullgraph=True)`` and the
reference for every bad input.

Under ``torch.compile``: an exception raised while Dynamo traces (in a fake kernel or in wrapper code)
reaches the user as ``torch._dynamo.exc.TorchRuntimeError`` / ``Unsupported``, never as the original
class, and Dynamo offers no way to unwrap it. So the fake kernels skip the checks while Dynamo traces
(:func:`checks_deferred`): the compiled graph calls the real op, whose C++ check raises the same
``ValueError`` / ``TypeError`` as in eager mode when the graph runs. Outside Dynamo (meta tensors,
``make_fx``, ``opcheck``) the fake kernels check as the C++ kernels do.

Import-light on purpose (``torch`` only): the lowest layer of the package.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "all_finite",
    "METRICS",
    "EMBEDDING_DTYPES",
    "MAX_MINING_PADDING",
    "MAX_HISTOGRAM_BINS",
    "check_n_bins",
    "checks_deferred",
    "dtype_name",
    "describe",
    "check_metric",
    "check_embeddings",
    "check_embedding_pair",
    "check_index_vector",
    "check_optional_index_vector",
    "check_both_or_neither",
    "check_key_pair",
    "check_finite",
    "check_k",
    "top_k_error",
    "check_top_k",
    "raise_or_defer",
    "check_in_unit_range",
    "check_pairwise_distance_inputs",
    "check_knn_inputs",
    "check_relevance_inputs",
    "check_retrieved_indices",
    "check_metrics_inputs",
    "check_metrics_values",
    "check_hard_mining_inputs",
    "labels_to_tensor",
]

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")
EMBEDDING_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# ``hard_mining``: counts above the batch size only add padding columns; beyond max(B, this) they are
# rejected before the outputs are allocated (``kMaxMiningPadding`` in csrc/mining/hard_mining_common.h).
MAX_MINING_PADDING = 1 << 16
# ``_pair_distance_histogram``: most bins of one histogram (``kMaxBins`` in csrc/retrieval/cpu/fnmr_cpu.cpp).
MAX_HISTOGRAM_BINS = 1 << 20


def checks_deferred() -> bool:
    """True while Dynamo (``torch.compile``) traces: fake kernels then leave the checks to the real op.

    An exception raised during tracing is re-raised by Dynamo as one of its own classes, so a fake kernel
    that checks would give ``TorchRuntimeError`` where eager mode gives ``ValueError``. A fake kernel that
    does not check lets the compiled graph call the real kernel, which raises the eager exception.
    """
    return torch._guards.TracingContext.try_get() is not None


@torch.library.custom_op("oml_fast::_deferred_error", mutates_args=())
def _deferred_error(like: Tensor, error: str, message: str) -> Tensor:
    raise {"ValueError": ValueError, "TypeError": TypeError}[error](message)


@_deferred_error.register_fake
def _deferred_error_fake(like: Tensor, error: str, message: str) -> Tensor:
    return torch.empty_like(like)


def raise_or_defer(error: type[ValueError] | type[TypeError], message: str, like: Tensor) -> Tensor:
    """Raises ``error(message)`` now, or, while Dynamo traces, when the compiled graph runs.

    For the checks that only Python code can make (arguments the op's schema cannot carry): the result,
    ``like`` passed through an op that raises, must feed the op that the check protects, so that the
    error comes first. The caller then goes on with valid placeholder arguments.
    """
    if not torch.compiler.is_compiling():
        raise error(message)
    return torch.ops.oml_fast._deferred_error(like, error.__name__, message)


def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"`` for ``torch.float32``: the name the C++ messages use too."""
    return str(dtype).removeprefix("torch.")


def describe(t: Tensor) -> str:
    """How error messages describe a tensor, as C++ ``describe()`` does: ``"[512, 1] float32 on cpu"``.

    >>> describe(torch.zeros(512, 1))
    '[512, 1] float32 on cpu'
    """
    return f"{list(t.shape)} {dtype_name(t.dtype)} on {t.device}"


def _value(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _type(condition: bool, message: str) -> None:
    if not condition:
        raise TypeError(message)


def check_metric(metric: str) -> str:
    """``metric`` is one of :data:`METRICS` (``ValueError`` otherwise)."""
    _value(
        isinstance(metric, str) and metric in METRICS,
        f"`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot', got '{metric}'",
    )
    return metric


def check_embeddings(t: Tensor, name: str) -> None:
    """A 2-D float32 / float64 / float16 / bfloat16 matrix (every device: the CPU upcasts half precision)."""
    _value(t.dim() == 2, f"`{name}` must be a 2-D tensor [N, D], got {describe(t)}")
    _type(
        t.dtype in EMBEDDING_DTYPES,
        f"`{name}` must be float32, float64, float16 or bfloat16, got {describe(t)}",
    )


def check_embedding_pair(a: Tensor, a_name: str, b: Tensor, b_name: str) -> None:
    """Two embedding matrices compared with each other: same device, dtype and width ``D``."""
    _value(
        a.device == b.device,
        f"`{a_name}` and `{b_name}` must be on the same device, got {a.device} and {b.device}",
    )
    _type(
        a.dtype == b.dtype,
        f"`{a_name}` and `{b_name}` must have the same dtype, got {describe(a)} and {describe(b)}",
    )
    _value(
        a.shape[1] == b.shape[1],
        f"`{a_name}` and `{b_name}` must have the same number of columns D, got {describe(a)} and {describe(b)}",
    )


def check_index_vector(t: Tensor, name: str, length: int, device: torch.device) -> None:
    """A 1-D int64 vector of ``length`` items on ``device`` (labels, ids, groups)."""
    _value(
        t.dim() == 1 and t.shape[0] == length,
        f"`{name}` must be a 1-D tensor of length {length}, got {describe(t)}",
    )
    _type(t.dtype == torch.int64, f"`{name}` must be int64, got {describe(t)}")
    _value(t.device == device, f"`{name}` must be on {device}, got {describe(t)}")


def check_optional_index_vector(t: Tensor | None, name: str, length: int, device: torch.device) -> None:
    if t is not None:
        check_index_vector(t, name, length, device)


def check_both_or_neither(a: Tensor | None, a_name: str, b: Tensor | None, b_name: str) -> None:
    """Exclusion keys come in pairs (``query_ids`` with ``gallery_ids``, ...): both or neither."""
    _value(
        (a is None) == (b is None),
        f"`{a_name}` and `{b_name}` must be given together (or both omitted), "
        f"got only `{a_name if a is not None else b_name}`",
    )


def check_key_pair(
    query_key: Tensor | None,
    query_name: str,
    gallery_key: Tensor | None,
    gallery_name: str,
    n_query: int,
    n_gallery: int,
    device: torch.device,
) -> bool:
    """An optional pair of exclusion keys: both or neither, 1-D int64 of the right lengths. Whether given."""
    check_both_or_neither(query_key, query_name, gallery_key, gallery_name)
    check_optional_index_vector(query_key, query_name, n_query, device)
    check_optional_index_vector(gallery_key, gallery_name, n_gallery, device)
    return query_key is not None


def all_finite(t: Tensor) -> Tensor:
    """Whether every entry of ``t`` is finite, as a 0-d bool tensor on ``t``'s device (no sync).

    The smallest and largest entries are finite iff all are (``aminmax`` propagates NaN): one vectorised
    pass, where ``isfinite(t).all()`` makes a bool copy and is ~20x slower on CPU.

    >>> all_finite(torch.tensor([1.0, float("inf")])), all_finite(torch.empty(0))
    (tensor(False), tensor(True))
    """
    if t.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=t.device)
    if t.is_complex():
        return torch.isfinite(t).all()
    if not t.is_floating_point():  # integers and bools are finite
        return torch.ones((), dtype=torch.bool, device=t.device)
    lowest, highest = torch.aminmax(t.detach())
    return torch.isfinite(lowest) & torch.isfinite(highest)


def check_finite(t: Tensor, name: str, op: str = "knn") -> None:
    """No NaN / inf entries (``op`` ranks or selects by distance; distances to NaN are undefined). Reads
    the data."""
    _value(
        bool(all_finite(t)),
        f"`{name}` contains NaN or inf values ({describe(t)}); {op} needs finite embeddings",
    )


def check_k(k: int) -> None:
    _value(k >= 1, f"`k` must be a positive integer, got {k}")


def _is_int(value: Any) -> bool:
    # Python and numpy integers (numpy registers them as numbers.Integral), never bools.
    return isinstance(value, numbers.Integral) and type(value).__name__ not in ("bool", "bool_")


def top_k_error(name: str, top_k: Any) -> str | None:
    """The ``ValueError`` message for a bad ``top_k`` argument, ``None`` for a good one (see check_top_k)."""
    values = list(top_k) if isinstance(top_k, Iterable) and not isinstance(top_k, str) else [top_k]
    if len(values) > 0 and all(_is_int(k) and k > 0 for k in values):
        return None
    return f"`{name}` must be a non-empty sequence of positive integers, got {values}"


def check_top_k(name: str, top_k: Any) -> tuple[int, ...]:
    """A ``top_k`` argument: a non-empty sequence of positive integers (a single int counts as one).

    >>> check_top_k("cmc_top_k", [1, 5])
    (1, 5)
    >>> check_top_k("cmc_top_k", (0,))
    Traceback (most recent call last):
    ...
    ValueError: `cmc_top_k` must be a non-empty sequence of positive integers, got [0]
    """
    message = top_k_error(name, top_k)
    if message is not None:
        raise ValueError(message)
    return tuple(int(k) for k in (top_k if isinstance(top_k, Iterable) else [top_k]))


def check_in_unit_range(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """A non-empty sequence of numbers in ``[0, 1]`` (``fmr_vals``, ``pcf_variance``)."""
    values = tuple(values)
    _value(len(values) > 0, f"`{name}` must be a non-empty sequence of numbers in [0, 1], got {values}")
    _value(
        all(isinstance(v, numbers.Real) and not _is_bool(v) and 0 <= v <= 1 for v in values),
        f"`{name}` must contain numbers in [0, 1], got {values}",
    )
    return values


def _is_bool(value: Any) -> bool:
    return type(value).__name__ in ("bool", "bool_")


# ----- one function per op: the same checks, in the same order, as the op's C++ check function -----


def check_pairwise_distance_inputs(x1: Tensor, x2: Tensor, metric: str) -> None:
    """``csrc/distance``: metric, then ``x1``, ``x2`` and the pair."""
    check_metric(metric)
    check_embeddings(x1, "x1")
    check_embeddings(x2, "x2")
    check_embedding_pair(x1, "x1", x2, "x2")


def check_knn_inputs(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    metric: str,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
) -> None:
    """``retrieval::check_knn_inputs`` (the finiteness check reads data and is the kernel's)."""
    check_embeddings(queries, "queries")
    check_embeddings(gallery, "gallery")
    check_embedding_pair(queries, "queries", gallery, "gallery")
    check_k(k)
    check_metric(metric)
    n_query, n_gallery = queries.shape[0], gallery.shape[0]
    check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", n_query, n_gallery, queries.device)
    check_key_pair(
        query_groups, "query_groups", gallery_groups, "gallery_groups", n_query, n_gallery, queries.device
    )


def check_relevance_inputs(
    retrieved: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    query_ids: Tensor | None,
    gallery_ids: Tensor | None,
    query_groups: Tensor | None,
    gallery_groups: Tensor | None,
) -> None:
    """``retrieval::check_relevance_inputs``."""
    _value(retrieved.dim() == 2, f"`retrieved` must be a 2-D tensor [Nq, k], got {describe(retrieved)}")
    _type(retrieved.dtype == torch.int64, f"`retrieved` must be int64, got {describe(retrieved)}")
    device, n_query = retrieved.device, retrieved.shape[0]
    check_index_vector(query_labels, "query_labels", n_query, device)
    _value(
        gallery_labels.dim() == 1,
        f"`gallery_labels` must be a 1-D tensor [Ng], got {describe(gallery_labels)}",
    )
    n_gallery = gallery_labels.shape[0]
    check_index_vector(gallery_labels, "gallery_labels", n_gallery, device)
    check_key_pair(query_ids, "query_ids", gallery_ids, "gallery_ids", n_query, n_gallery, device)
    check_key_pair(query_groups, "query_groups", gallery_groups, "gallery_groups", n_query, n_gallery, device)


def check_retrieved_indices(retrieved: Tensor, n_gallery: int) -> None:
    """``retrieval::check_retrieved_indices``: gallery indices or ``-1`` (``IndexError``; first bad entry)."""
    bad = retrieved[(retrieved < -1) | (retrieved >= n_gallery)]
    if bad.numel() > 0:
        raise IndexError(
            f"`retrieved` must hold gallery indices in [0, {n_gallery}) or -1 for padding, got {int(bad[0])}"
        )


def check_metrics_inputs(
    is_relevant: Tensor,
    n_gt: Tensor,
    n_retrieved: Tensor,
    cmc_top_k: Sequence[int],
    precision_top_k: Sequence[int],
    map_top_k: Sequence[int],
) -> None:
    """``retrieval::check_metrics_inputs`` (the value checks of ``n_gt`` / ``n_retrieved`` read data: see
    :func:`check_metrics_values`)."""
    _value(is_relevant.dim() == 2, f"`is_relevant` must be a 2-D tensor [Nq, K], got {describe(is_relevant)}")
    _type(is_relevant.dtype == torch.bool, f"`is_relevant` must be bool, got {describe(is_relevant)}")
    check_index_vector(n_gt, "n_gt", is_relevant.shape[0], is_relevant.device)
    check_index_vector(n_retrieved, "n_retrieved", is_relevant.shape[0], is_relevant.device)
    check_top_k("cmc_top_k", cmc_top_k)
    check_top_k("precision_top_k", precision_top_k)
    check_top_k("map_top_k", map_top_k)


def check_metrics_values(is_relevant: Tensor, n_gt: Tensor, n_retrieved: Tensor) -> None:
    """``retrieval::check_metrics_values``: ``n_retrieved`` in ``[0, K]``, then ``n_gt >= 0``, then ``n_gt`` at
    least the relevant items among the first ``n_retrieved`` (first bad query)."""
    width = is_relevant.shape[1]
    bad_length = ((n_retrieved < 0) | (n_retrieved > width)).nonzero()
    if bad_length.numel() > 0:
        q = int(bad_length[0, 0])
        raise ValueError(
            f"`n_retrieved` must be in [0, {width}] (the width of `is_relevant`), got {int(n_retrieved[q])} "
            f"for query {q}"
        )
    bad_gt = (n_gt < 0).nonzero()
    if bad_gt.numel() > 0:
        q = int(bad_gt[0, 0])
        raise ValueError(f"`n_gt` must be non-negative, got {int(n_gt[q])} for query {q}")
    positions = torch.arange(width, device=n_retrieved.device)
    hits = (is_relevant & (positions[None, :] < n_retrieved[:, None])).sum(1)
    bad_hits = (hits > n_gt).nonzero()
    if bad_hits.numel() > 0:
        q = int(bad_hits[0, 0])
        raise ValueError(
            f"`n_gt` must be at least the number of relevant retrieved items, got {int(n_gt[q])} with "
            f"{int(hits[q])} relevant retrieved for query {q}"
        )


def check_hard_mining_inputs(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str,
    anchor_mask: Tensor | None,
) -> None:
    """``check_hard_mining_inputs`` of ``csrc/mining/hard_mining_common.h``."""
    check_embeddings(embeddings, "embeddings")
    batch = embeddings.shape[0]
    check_index_vector(labels, "labels", batch, embeddings.device)
    _value(n_positive >= 0, f"`n_positive` must be >= 0, got {n_positive}")
    _value(n_negative >= 0, f"`n_negative` must be >= 0, got {n_negative}")
    max_count = max(batch, MAX_MINING_PADDING)
    for name, count, what in (
        ("n_positive", n_positive, "positives"),
        ("n_negative", n_negative, "negatives"),
    ):
        _value(
            count <= max_count,
            f"`{name}` must be at most max(B, {MAX_MINING_PADDING}) = {max_count} "
            f"(an anchor has at most B - 1 {what}), got {count}",
        )
    if anchor_mask is not None:
        _value(
            anchor_mask.dim() == 1 and anchor_mask.shape[0] == batch,
            f"`anchor_mask` must be a 1-D tensor of length {batch}, got {describe(anchor_mask)}",
        )
        _type(anchor_mask.dtype == torch.bool, f"`anchor_mask` must be bool, got {describe(anchor_mask)}")
        _value(
            anchor_mask.device == embeddings.device,
            f"`anchor_mask` must be on {embeddings.device}, got {describe(anchor_mask)}",
        )
    check_metric(metric)


def check_n_bins(n_bins: int) -> None:
    """``_pair_distance_histogram``'s ``n_bins``: checked before any histogram is allocated."""
    _value(n_bins >= 1, f"`n_bins` must be a positive integer, got {n_bins}")
    _value(
        n_bins <= MAX_HISTOGRAM_BINS, f"`n_bins` must be at most {MAX_HISTOGRAM_BINS} (2**20), got {n_bins}"
    )


# ----- labels ------------------------------------------------------------------------------------------


def labels_to_tensor(labels: Any, device: torch.device | str | None = None, name: str = "labels") -> Tensor:
    """Labels as a 1-D int64 tensor: the one converter of the package (miners, losses, ops, metrics).

    Takes a list, a tuple, a numpy array or a tensor of shape ``[N]`` or ``[N, 1]``, of integers or of
    floats that hold integers (``3.0``; labels read from a CSV often are). Raises ``TypeError`` for
    strings, bools, complex numbers and other non-numbers, ``ValueError`` for other shapes, for floats
    with a fraction, NaN or inf, and for values outside int64.

    >>> labels_to_tensor([3, 1, 3])
    tensor([3, 1, 3])
    >>> labels_to_tensor(torch.tensor([[2.0], [0.0]]))
    tensor([2, 0])
    >>> labels_to_tensor([0.5, 1.0])
    Traceback (most recent call last):
    ...
    ValueError: `labels` must hold integers, got 0.5 at position 0
    """
    if isinstance(labels, Tensor):
        tensor = labels
    else:
        array = labels if hasattr(labels, "__array__") or hasattr(labels, "dtype") else list(labels)
        dtype = getattr(array, "dtype", None)
        if getattr(dtype, "kind", None) in ("U", "S"):  # numpy strings
            raise TypeError(
                f"`{name}` must be integers, got strings (numpy dtype {dtype}); map them to integer ids first"
            )
        if isinstance(array, list) and any(isinstance(v, (str, bytes)) for v in array):
            raise TypeError(f"`{name}` must be integers, got strings; map them to integer ids first")
        try:
            tensor = torch.as_tensor(array)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            message = str(error)
            if "verflow" in message:
                raise ValueError(f"`{name}` values must fit in int64 ({message})") from error
            raise TypeError(f"`{name}` must be integers, got {type(labels).__name__} ({message})") from error
        if tensor.numel() == 0:
            tensor = tensor.to(torch.int64)
    _value(
        tensor.dim() == 1 or (tensor.dim() == 2 and tensor.shape[1] == 1),
        f"`{name}` must be a 1-D tensor [N] (or [N, 1]), got {describe(tensor)}",
    )
    tensor = tensor.reshape(-1)
    _type(
        tensor.dtype != torch.bool and not tensor.is_complex(),
        f"`{name}` must be integers, got {describe(tensor)}",
    )
    if tensor.is_floating_point():
        is_integer = torch.isfinite(tensor) & (tensor == tensor.trunc())
        if not bool(is_integer.all()):
            position = int((~is_integer).nonzero()[0, 0])
            raise ValueError(
                f"`{name}` must hold integers, got {tensor[position].item()} at position {position}"
            )
        in_range = (tensor.double().abs() < 2.0**63).all()
        _value(bool(in_range), f"`{name}` values must fit in int64, got {describe(tensor)}")
    elif tensor.dtype == torch.uint64:
        # uint64 has few kernels; read as int64, values from 2**63 on are the negative ones.
        fits = not bool((tensor.view(torch.int64) < 0).any())
        _value(fits, f"`{name}` values must fit in int64, got values >= 2**63 ({describe(tensor)})")
    tensor = tensor.to(torch.int64)
    return tensor if device is None else tensor.to(device)
