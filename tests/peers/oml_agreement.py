"""Assertions that oml_fast's output agrees with OML 4.0's, and the guarded call into OML.

Each assertion raises ``AssertionError`` naming what differs, with both values. Adjustments for
deliberate deviations cite their ids from ``deviations.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from deviations import OML_RAISES, skip_for

TOL = 1e-5  # absolute tolerance (relative above 1) for values both sides compute in float32


def oml_call(fn: Callable[..., Any], *args: Any, raises: str | tuple[str, ...] = (), **kwargs: Any) -> Any:
    """Calls OML. If it raises the exception of one of the known OML failures ``raises`` (ids of
    ``deviations.OML_RAISES``), the case is skipped citing that id; any other exception inside OML
    fails the case."""
    known = (raises,) if isinstance(raises, str) else raises
    unknown = [key for key in known if key not in OML_RAISES]
    if unknown:
        raise KeyError(f"unknown OML failure ids {unknown}; known: {sorted(OML_RAISES)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - OML's failure decides the case, see below
        detail = f"{type(error).__name__}: {str(error)[:120]}"
        for key in known:
            if isinstance(error, OML_RAISES[key][0]):
                skip_for(key, detail)
        pytest.fail(f"OML 4.0 raised on an input with no known OML failure {known} ({detail})")


def _as_float64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _short(x: Any) -> str:
    if isinstance(x, torch.Tensor | np.ndarray):
        x = x.tolist()
    text = repr(x)
    return text if len(text) < 240 else text[:240] + "..."


def assert_close(ours: Any, theirs: Any, what: str, tol: float = TOL) -> None:
    """Numbers / tensors / arrays equal within ``tol`` (relative above 1); NaN equals NaN, inf must match."""
    a, b = _as_float64(ours), _as_float64(theirs)
    assert a.shape == b.shape, f"{what}: shape ours {a.shape} vs OML {b.shape}"
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), f"{what}: NaN pattern differs: ours {_short(a)} vs OML {_short(b)}"
    inf = np.isinf(a) | np.isinf(b)
    assert np.array_equal(a[inf], b[inf]), f"{what}: inf differs: ours {_short(a)} vs OML {_short(b)}"
    finite = ~(nan_a | inf)
    diff = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(b[finite]), initial=0.0)))
    assert diff <= tol * scale, (
        f"{what}: max |diff| {diff:.3g} > {tol:g}: ours {_short(a)} vs OML {_short(b)}"
    )


def _flatten(metrics: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def assert_metric_dicts_agree(ours: Mapping[Any, Any], theirs: Mapping[Any, Any], tol: float = TOL) -> None:
    """Same nested keys (compared as text) and values. OML's PCF is compared capped at 1 (``pcf-cap``)."""
    a, b = _flatten(ours), _flatten(theirs)
    assert set(a) == set(b), (
        f"keys differ: only ours {sorted(set(a) - set(b))}, only OML {sorted(set(b) - set(a))}"
    )
    for key, theirs_value in b.items():
        if "/pcf/" in f"/{key}":
            theirs_value = torch.clamp(torch.as_tensor(theirs_value, dtype=torch.float64), max=1.0)
        assert_close(a[key], theirs_value, key, tol)


def assert_retrieval_results_agree(
    ours: Any,
    theirs: Any,
    queries: torch.Tensor | None = None,
    gallery: torch.Tensor | None = None,
    tol: float = TOL,
) -> None:
    """Per query the same list lengths, distances and retrieved ids, and the same gt ids.

    Without ``queries`` / ``gallery`` (both sides processed the same lists) distances and ids must be
    equal. With them, distances are judged against exact float64 distances (``exact-distances``):
    ours within ``tol``, OML's within the error of its ``torch.cdist`` (``sqrt`` of a difference of
    squared norms, off by up to ~``sqrt(8 eps (|q|^2 + |g|^2))``). Another order of ids is accepted
    only where the exact distances of both lists agree within that error (``tie-order``).
    """
    assert len(ours.retrieved_ids) == len(theirs.retrieved_ids), "number of queries"
    exact = bound = None
    if queries is not None and gallery is not None:
        exact = torch.cdist(queries.double(), gallery.double())
        sq_q, sq_g = queries.double().pow(2).sum(1), gallery.double().pow(2).sum(1)
        bound = (8 * torch.finfo(torch.float32).eps * (sq_q[:, None] + sq_g[None, :])).sqrt() + tol
    pairs = zip(ours.distances, ours.retrieved_ids, theirs.distances, theirs.retrieved_ids)
    for q, (d_a, i_a, d_b, i_b) in enumerate(pairs):
        i_a, i_b = i_a.long(), i_b.long()
        assert len(i_a) == len(i_b), f"query {q}: list length ours {len(i_a)} vs OML {len(i_b)}"
        if exact is None or bound is None:
            assert_close(d_a, d_b, f"query {q}: distances", tol)
            assert i_a.tolist() == i_b.tolist(), f"query {q}: ids ours {i_a.tolist()} vs OML {i_b.tolist()}"
            continue
        assert_close(d_a, exact[q, i_a], f"query {q}: our distances vs exact float64", tol)
        beyond = (d_a.double() - d_b.double()).abs() > bound[q, i_b]
        assert not bool(beyond.any()), (
            f"query {q}: distances ours {_short(d_a)} vs OML {_short(d_b)} beyond OML's cdist error"
        )
        if not torch.equal(i_a, i_b):
            same = (exact[q, i_a] - torch.sort(exact[q, i_b]).values).abs() <= bound[q, i_b]
            assert bool(same.all()), f"query {q}: retrieved ids ours {i_a.tolist()} vs OML {i_b.tolist()}"
    assert (ours.gt_ids is None) == (theirs.gt_ids is None), "gt_ids present on one side only"
    if theirs.gt_ids is not None:
        for q, (g_a, g_b) in enumerate(zip(ours.gt_ids, theirs.gt_ids)):
            assert g_a.tolist() == g_b.tolist(), (
                f"query {q}: gt_ids ours {g_a.tolist()} vs OML {g_b.tolist()}"
            )


def grads(loss_fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
    """``loss_fn(*inputs)`` on fresh leaf copies, and the gradients of its sum wrt each input."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    loss = loss_fn(*leaves)
    loss.sum().backward()
    return loss.detach(), [x.grad for x in leaves]


def triplet_ids(features: torch.Tensor, triplets: tuple[torch.Tensor, ...]) -> list[tuple[int, int, int]]:
    """Maps the rows of a miner's (anchors, positives, negatives) back to batch indices (rows unique)."""
    index = {tuple(row.tolist()): i for i, row in enumerate(features)}
    return [
        (index[tuple(x.tolist())], index[tuple(y.tolist())], index[tuple(z.tolist())])
        for x, y, z in zip(*triplets)
    ]
