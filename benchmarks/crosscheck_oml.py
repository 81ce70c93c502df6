"""Cross-check oml_fast against OML 4.0's own outputs on many random cases.

Runs in the peers venv (``scripts/setup_peers.sh``), with this checkout's in-place build of oml_fast:

    .venv-peers/bin/python benchmarks/crosscheck_oml.py                         # all checks
    ... crosscheck_oml.py --cases 50 --seed 1 --only retrieval_metrics,pcf     # a subset
    ... crosscheck_oml.py --list                                                # check names
    ... crosscheck_oml.py --checkout ../other-worktree                          # another build

Prints one row per check: PASS/FAIL/SKIP, the number of random cases, the largest difference seen
and a note (documented deviations of oml_fast from OML are compared on inputs where both agree, and
the deviation itself is confirmed on a dedicated input). Failing cases are described below the table
(seed and inputs, OML's output, ours). Exit status 1 if any check fails.

The training checks (losses, miners, samplers) run when ``oml_fast.losses`` has them.
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "benchmarks"))  # `import peers`

import peers  # noqa: E402

TOL = 1e-5  # absolute tolerance for values computed in float32 by both sides


# --------------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """Outcome of one check over many random cases."""

    name: str
    note: str = ""
    cases: int = 0
    failed_cases: int = 0
    skipped_cases: int = 0
    max_diff: float = 0.0
    failures: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    _case_ok: bool = True
    _case_desc: str = ""

    def start(self, desc: str) -> None:
        self._case_ok, self._case_desc = True, desc

    def end(self) -> None:
        self.cases += 1
        if not self._case_ok:
            self.failed_cases += 1

    def fail(self, message: str) -> None:
        self._case_ok = False
        if len(self.failures) < 4:
            self.failures.append(f"[{self._case_desc}] {message}")

    def close(self, ours: Any, theirs: Any, what: str, tol: float = TOL) -> bool:
        """Numbers / tensors / arrays equal within ``tol`` (NaN equals NaN, shapes must match)."""
        a = _as_float64(ours)
        b = _as_float64(theirs)
        if a.shape != b.shape:
            self.fail(f"{what}: shape ours {tuple(a.shape)} vs OML {tuple(b.shape)}")
            return False
        if a.size == 0:
            return True
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            self.fail(f"{what}: NaN pattern differs: ours {_short(a)} vs OML {_short(b)}")
            return False
        inf_a, inf_b = np.isinf(a), np.isinf(b)
        if not np.array_equal(a[inf_a | inf_b], b[inf_a | inf_b]):
            self.fail(f"{what}: inf differs: ours {_short(a)} vs OML {_short(b)}")
            return False
        finite = ~(nan_a | inf_a | inf_b)
        diff = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
        self.max_diff = max(self.max_diff, diff)
        if diff > tol * max(1.0, float(np.max(np.abs(b[finite]), initial=0.0))):
            self.fail(f"{what}: max |diff| {diff:.3g} > tol: ours {_short(a)} vs OML {_short(b)}")
            return False
        return True

    def equal(self, ours: Any, theirs: Any, what: str) -> bool:
        if ours != theirs:
            self.fail(f"{what}: ours {_short(ours)} vs OML {_short(theirs)}")
            return False
        return True

    @property
    def status(self) -> str:
        if self.skip_reason is not None:
            return "SKIP"
        return "FAIL" if self.failed_cases else "PASS"


def _as_float64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _short(x: Any, n: int = 8) -> str:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().tolist()
    elif isinstance(x, np.ndarray):
        x = x.tolist()
    text = repr(x)
    return text if len(text) < 240 else text[:240] + "..."


def _flatten(metrics: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def compare_metric_dicts(
    result: Result, ours: Mapping[Any, Any], theirs: Mapping[Any, Any], tol: float = TOL, pcf_cap: bool = True
) -> None:
    """Same nested keys (compared as text) and values; OML's PCF capped at 1 (documented fix)."""
    a, b = _flatten(ours), _flatten(theirs)
    if set(a) != set(b):
        result.fail(f"keys differ: only ours {sorted(set(a) - set(b))}, only OML {sorted(set(b) - set(a))}")
        return
    for key in b:
        theirs_value = b[key]
        if pcf_cap and "/pcf/" in f"/{key}":
            theirs_value = torch.clamp(torch.as_tensor(theirs_value, dtype=torch.float64), max=1.0)
        result.close(a[key], theirs_value, key, tol)


def case_loop(
    result: Result, n_cases: int, seed: int, body: Callable[[np.random.RandomState, Result], str | None]
) -> Result:
    """Runs ``body(rng, result)`` for each case; the body returns a short description of its inputs
    (or None to skip the case, e.g. OML itself raises on it)."""
    for case in range(n_cases):
        rng = np.random.RandomState(seed * 100003 + case)
        torch.manual_seed(seed * 100003 + case)
        np.random.seed(seed * 100003 + case)
        result.start(f"seed={seed} case={case}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                desc = body(rng, result)
        except _OmlRaised as error:
            result.skipped_cases += 1
            if len(result.failures) < 4 and result.skipped_cases <= 1:
                result.note += f" OML raised on some inputs ({error}): skipped."
            continue
        except Exception:  # noqa: BLE001 - an exception on our side is a failure of the check
            result.fail("exception:\n" + traceback.format_exc(limit=4))
            result.end()
            continue
        if desc is not None:
            result._case_desc += f" {desc}"
            if result.failures and not result._case_ok:
                result.failures[-1] = result.failures[-1].replace(
                    f"[seed={seed} case={case}]", f"[seed={seed} case={case} {desc}]"
                )
        result.end()
    return result


class _OmlRaised(Exception):
    pass


def oml_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls OML; an exception inside OML marks the case as skipped (OML cannot be compared there)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001
        raise _OmlRaised(f"{type(error).__name__}: {str(error)[:80]}") from error


# --------------------------------------------------------------------------------------------------
# Random inputs
# --------------------------------------------------------------------------------------------------


def random_top_k(rng: np.random.RandomState, upper: int) -> tuple[int, ...]:
    return tuple(sorted({int(k) for k in rng.randint(1, upper + 1, size=rng.randint(1, 4))}))


def random_categories(rng: np.random.RandomState, n: int) -> np.ndarray:
    n_cat = rng.randint(1, 4)
    if rng.rand() < 0.5:
        return rng.randint(0, n_cat, size=n)
    return np.array(["cat", "dog", "eel"])[rng.randint(0, n_cat, size=n)]


@dataclass
class QGData:
    embeddings: torch.Tensor
    labels: np.ndarray
    is_query: np.ndarray
    is_gallery: np.ndarray
    categories: np.ndarray | None
    sequences: np.ndarray | None

    def describe(self) -> str:
        return (
            f"N={len(self.labels)} D={self.embeddings.shape[1]} nq={int(self.is_query.sum())} "
            f"ng={int(self.is_gallery.sum())} cats={'yes' if self.categories is not None else 'no'} "
            f"seqs={'yes' if self.sequences is not None else 'no'}"
        )


def random_qg_data(
    rng: np.random.RandomState, with_categories: bool | None = None, with_sequences: bool | None = None
) -> QGData:
    n = int(rng.randint(2, 80))
    dim = int(rng.randint(1, 12))
    labels = rng.randint(0, max(1, n // int(rng.randint(1, 6))), size=n)
    mode = rng.randint(0, 3)
    if mode == 0:  # every item query and gallery (1 vs rest)
        is_query, is_gallery = np.ones(n, bool), np.ones(n, bool)
    elif mode == 1:  # disjoint sets
        is_query = rng.rand(n) < 0.4
        is_gallery = ~is_query
    else:  # random overlap
        is_query, is_gallery = rng.rand(n) < 0.6, rng.rand(n) < 0.7
    is_query[rng.randint(n)] = True
    if not is_gallery.any():
        is_gallery[rng.randint(n)] = True
    if mode == 1 and is_gallery.sum() == n:  # keep disjoint sets disjoint
        is_gallery[np.flatnonzero(is_query)] = False
        if not is_gallery.any():
            is_gallery[0], is_query[0] = True, False
            is_query[-1] = True
            is_gallery[-1] = False if n > 1 else True
    use_cat = rng.rand() < 0.5 if with_categories is None else with_categories
    use_seq = rng.rand() < 0.4 if with_sequences is None else with_sequences
    categories = random_categories(rng, n) if use_cat else None
    sequences = None
    if use_seq:
        sequences = rng.randint(0, max(1, n // 3), size=n)
        if rng.rand() < 0.5:
            sequences = np.array([f"s{v}" for v in sequences])
    # Continuous embeddings: no ties (OML's torch.topk orders ties arbitrarily).
    embeddings = torch.from_numpy(rng.randn(n, dim).astype(np.float32))
    return QGData(embeddings, labels, is_query, is_gallery, categories, sequences)


def make_oml_dataset(data: QGData) -> Any:
    return peers.make_oml_query_gallery_dataset(
        data.labels, data.is_query, data.is_gallery, data.categories, data.sequences, data.embeddings
    )


def make_our_dataset(data: QGData) -> Any:
    from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset

    return InMemoryQueryGalleryDataset(
        labels=data.labels,
        is_query=data.is_query,
        is_gallery=data.is_gallery,
        categories=data.categories,
        sequences=data.sequences,
    )


# --------------------------------------------------------------------------------------------------
# Validation checks
# --------------------------------------------------------------------------------------------------


def check_retrieval_metrics(n_cases: int, seed: int) -> Result:
    from oml.functional.metrics import calc_retrieval_metrics as oml_calc

    from oml_fast.functional import calc_retrieval_metrics

    result = Result(
        "calc_retrieval_metrics",
        note="random lists incl. empty lists, no gt, k > list length, categories (int/str), reduce on/off",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        nq, ng = int(rng.randint(1, 40)), int(rng.randint(1, 30))
        retrieved, gt = [], []
        for _ in range(nq):
            length = 0 if rng.rand() < 0.1 else int(rng.randint(0, ng + 1))
            retrieved.append(torch.from_numpy(rng.permutation(ng)[:length]).long())
            n_gt = 0 if rng.rand() < 0.15 else int(rng.randint(0, ng + 1))
            gt.append(torch.from_numpy(np.sort(rng.permutation(ng)[:n_gt])).long())
        categories = random_categories(rng, nq) if rng.rand() < 0.4 else None
        kwargs = {
            "cmc_top_k": random_top_k(rng, ng + 3),
            "precision_top_k": random_top_k(rng, ng + 3),
            "map_top_k": random_top_k(rng, ng + 3),
            "reduce": bool(rng.rand() < 0.7),
            "verbose": False,
        }
        theirs = oml_call(oml_calc, retrieved, gt, query_categories=categories, **kwargs)
        ours = calc_retrieval_metrics(retrieved, gt, query_categories=categories, **kwargs)
        compare_metric_dicts(r, ours, theirs)
        return f"nq={nq} ng={ng} {kwargs} cats={categories is not None}"

    return case_loop(result, n_cases, seed, body)


def check_fnmr(n_cases: int, seed: int) -> Result:
    from oml.functional.metrics import calc_fnmr_at_fmr as oml_fnmr

    from oml_fast.functional import calc_fnmr_at_fmr

    result = Result("calc_fnmr_at_fmr", note="random and tied (integer) distances, fmr incl. 0 and 1")

    def body(rng: np.random.RandomState, r: Result) -> str:
        n_pos, n_neg = int(rng.randint(1, 200)), int(rng.randint(1, 300))
        pos, neg = rng.rand(n_pos) * 2, rng.rand(n_neg) * 2 + 0.5
        if rng.rand() < 0.3:
            pos, neg = np.round(pos * 4), np.round(neg * 4)
        fmr = tuple(float(v) for v in rng.rand(int(rng.randint(1, 5))))
        if rng.rand() < 0.3:
            fmr = (0.0, *fmr, 1.0)
        theirs = oml_call(oml_fnmr, pos, neg, fmr)
        ours = calc_fnmr_at_fmr(pos, neg, fmr)
        r.close(ours, theirs, "fnmr@fmr", tol=1e-6)
        return f"P={n_pos} M={n_neg} fmr={fmr}"

    return case_loop(result, n_cases, seed, body)


def check_pcf(n_cases: int, seed: int) -> Result:
    from oml.functional.metrics import calc_pcf as oml_pcf

    from oml_fast.functional import calc_pcf

    result = Result(
        "calc_pcf",
        note="deviation: ours capped at 1 (OML reports (D+1)/D at v=1.0 when the cumulative ratio "
        "never exceeds 1); compared as min(OML, 1)",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        n, dim = int(rng.randint(2, 60)), int(rng.randint(1, 24))
        x = rng.randn(n, dim)
        if rng.rand() < 0.4:  # low rank
            rank = int(rng.randint(1, dim + 1))
            x = rng.randn(n, rank) @ rng.randn(rank, dim)
        embeddings = torch.from_numpy(x.astype(np.float32))
        variance = tuple(sorted(float(v) for v in rng.rand(int(rng.randint(1, 4)))))
        if rng.rand() < 0.3:
            variance = (*variance, 1.0)
        theirs = oml_call(oml_pcf, embeddings, variance)
        theirs = torch.clamp(torch.as_tensor(theirs, dtype=torch.float64), max=1.0)
        ours = calc_pcf(embeddings, variance)
        # Near a threshold the count may differ by one component through float32 rounding of the
        # cumulative ratio; require equality elsewhere.
        cumulative = _pcf_cumulative(embeddings)
        near = [bool(np.min(np.abs(cumulative - v), initial=1.0) < 1e-5) for v in variance]
        keep = [i for i, flag in enumerate(near) if not flag]
        r.close(ours[keep], theirs[keep], "pcf", tol=1e-6)
        return f"N={n} D={dim} v={variance}"

    result = case_loop(result, n_cases, seed, body)

    # The deviation itself: v = 1 on full-rank data.
    result.start("deviation v=1.0")
    embeddings = torch.eye(4, 10)
    theirs = oml_pcf(embeddings, (0.5, 1.0))
    ours = calc_pcf(embeddings, (0.5, 1.0))
    result.close(ours, torch.clamp(torch.as_tensor(theirs), max=1.0), "pcf (eye 4x10)")
    result.end()
    return result


def _pcf_cumulative(embeddings: torch.Tensor) -> np.ndarray:
    x = embeddings.double()
    s = torch.linalg.svdvals(x - x.mean(0, keepdim=True))
    ratio = s**2 / (s**2).sum()
    return torch.cumsum(ratio, 0).numpy()


def _our_retrieval(data: QGData, n_items: int) -> Any:
    from oml_fast.retrieval import RetrievalResults

    return RetrievalResults.from_embeddings(data.embeddings, make_our_dataset(data), n_items=n_items)


def _oml_retrieval(data: QGData, n_items: int) -> Any:
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRR

    return oml_call(OmlRR.from_embeddings, data.embeddings, make_oml_dataset(data), n_items=n_items)


def compare_retrieval_results(
    r: Result,
    ours: Any,
    theirs: Any,
    queries: torch.Tensor | None = None,
    gallery: torch.Tensor | None = None,
    tol: float = 1e-5,
) -> None:
    """Same number of queries; per query the same list lengths, distances and retrieved ids, and the
    same gt ids.

    With ``queries`` / ``gallery`` given, distances are judged against exact float64 distances:
    ours must match them within ``tol``; OML's within the error of its ``torch.cdist`` (matrix-multiply
    path: ``sqrt`` of a difference of squared norms, off by up to ~``sqrt(eps * |q|^2 + |g|^2)``, so a
    true distance of 1e-4 may come out as 0). A different order of ids is accepted only where the
    exact distances of both lists agree within that error (ties, or pairs OML cannot tell apart).
    """
    if not r.equal(len(ours.retrieved_ids), len(theirs.retrieved_ids), "number of queries"):
        return
    exact = bound = None
    if queries is not None and gallery is not None:
        exact = torch.cdist(queries.double(), gallery.double())
        sq_q, sq_g = queries.double().pow(2).sum(1), gallery.double().pow(2).sum(1)
        bound = (8 * torch.finfo(torch.float32).eps * (sq_q[:, None] + sq_g[None, :])).sqrt() + tol
    for q, (d_a, i_a, d_b, i_b) in enumerate(
        zip(ours.distances, ours.retrieved_ids, theirs.distances, theirs.retrieved_ids)
    ):
        i_a, i_b = i_a.long(), i_b.long()
        if not r.equal(len(i_a), len(i_b), f"query {q}: list length"):
            return
        if exact is None or bound is None:
            if not (
                r.close(d_a, d_b, f"query {q}: distances", tol)
                and r.equal(i_a.tolist(), i_b.tolist(), f"query {q}: ids")
            ):
                return
            continue
        if not r.close(d_a, exact[q, i_a], f"query {q}: our distances vs exact float64", tol):
            return
        diff = (d_a.double() - d_b.double()).abs()
        r.max_diff = max(r.max_diff, float(diff.max()) if len(diff) else 0.0)
        if bool((diff > bound[q, i_b]).any()):
            r.fail(f"query {q}: distances ours {_short(d_a)} vs OML {_short(d_b)} beyond OML's cdist error")
            return
        if not torch.equal(i_a, i_b):
            same = (exact[q, i_a] - torch.sort(exact[q, i_b]).values).abs() <= bound[q, i_b]
            if not bool(same.all()):
                r.fail(f"query {q}: retrieved ids ours {i_a.tolist()} vs OML {i_b.tolist()}")
                return
    if (ours.gt_ids is None) != (theirs.gt_ids is None):
        r.fail("gt_ids present on one side only")
        return
    if theirs.gt_ids is not None:
        for q, (g_a, g_b) in enumerate(zip(ours.gt_ids, theirs.gt_ids)):
            if not r.equal(g_a.tolist(), g_b.tolist(), f"query {q}: gt_ids"):
                return


def check_retrieval_results(n_cases: int, seed: int) -> Result:
    result = Result(
        "RetrievalResults.from_embeddings",
        note="distances, retrieved ids, gt ids; self and same-sequence exclusion; n_items > gallery",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        data = random_qg_data(rng)
        n_items = int(rng.randint(1, len(data.labels) + 5))
        theirs = _oml_retrieval(data, n_items)
        ours = _our_retrieval(data, n_items)
        queries = data.embeddings[torch.from_numpy(np.flatnonzero(data.is_query))]
        gallery = data.embeddings[torch.from_numpy(np.flatnonzero(data.is_gallery))]
        compare_retrieval_results(r, ours, theirs, queries, gallery)
        return f"{data.describe()} n_items={n_items}"

    return case_loop(result, n_cases, seed, body)


def check_retrieval_results_qg(n_cases: int, seed: int) -> Result:
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRR

    from oml_fast.retrieval import RetrievalResults

    result = Result(
        "RetrievalResults.from_embeddings_qg",
        note="deviation: OML factorises query and gallery sequence ids separately (equal names may "
        "get different codes); ours jointly -- compared where both sets hold the same sequence names",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        nq, ng, dim = int(rng.randint(1, 30)), int(rng.randint(1, 40)), int(rng.randint(1, 10))
        n_labels = int(rng.randint(1, 8))
        q = QGData(
            torch.from_numpy(rng.randn(nq, dim).astype(np.float32)),
            rng.randint(0, n_labels, nq),
            np.ones(nq, bool),
            np.zeros(nq, bool),
            None,
            None,
        )
        g = QGData(
            torch.from_numpy(rng.randn(ng, dim).astype(np.float32)),
            rng.randint(0, n_labels, ng),
            np.zeros(ng, bool),
            np.ones(ng, bool),
            None,
            None,
        )
        with_seq = rng.rand() < 0.5
        if with_seq:
            names = np.arange(int(rng.randint(1, 5)))
            # Both sides hold every name at least once: separate and joint factorisation agree.
            q.sequences = np.concatenate([names, rng.choice(names, max(0, nq - len(names)))])[:nq]
            g.sequences = np.concatenate([names, rng.choice(names, max(0, ng - len(names)))])[:ng]
            if nq < len(names) or ng < len(names):
                q.sequences, g.sequences = None, None
                with_seq = False
        n_items = int(rng.randint(1, ng + 5))
        theirs = oml_call(
            OmlRR.from_embeddings_qg,
            q.embeddings,
            g.embeddings,
            make_oml_dataset(q),
            make_oml_dataset(g),
            n_items=n_items,
        )
        ours = RetrievalResults.from_embeddings_qg(
            q.embeddings, g.embeddings, make_our_dataset(q), make_our_dataset(g), n_items=n_items
        )
        compare_retrieval_results(r, ours, theirs, q.embeddings, g.embeddings)
        return f"nq={nq} ng={ng} D={dim} seqs={with_seq} n_items={n_items}"

    return case_loop(result, n_cases, seed, body)


def check_embedding_metrics(n_cases: int, seed: int) -> Result:
    from oml.metrics.embeddings import EmbeddingMetrics as OmlEM
    from oml.retrieval.postprocessors.algo import AdaptiveThresholding as OmlAdaptive
    from oml.retrieval.postprocessors.algo import ConstantThresholding as OmlConstant

    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding

    result = Result(
        "EmbeddingMetrics",
        note="end to end: categories, sequences, 1-vs-rest / disjoint / overlapping q-g, fnmr@fmr "
        "(OML retrieves whole galleries for it, so both use all pairs), pcf, batches in random order, "
        "no post-processor / ConstantThresholding / AdaptiveThresholding (FNMR then off: OML computes it on "
        "the post-processed lists, ours on all pairs)",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        data = random_qg_data(rng)
        if rng.rand() < 0.25:
            data.embeddings = data.embeddings.double()
        ng = int(data.is_gallery.sum())
        kwargs: dict[str, Any] = {
            "cmc_top_k": random_top_k(rng, ng + 3),
            "precision_top_k": random_top_k(rng, ng + 3),
            "map_top_k": random_top_k(rng, ng + 3),
            "fmr_vals": [(0.1, 0.5), (0.0, float(rng.rand()), 1.0), ()][rng.randint(0, 3)],
            "pcf_variance": [(0.5,), (0.2, 0.9), ()][rng.randint(0, 3)],
            "return_only_overall_category": bool(rng.rand() < 0.2),
            "verbose": False,
        }
        post = int(rng.randint(0, 4))  # 0, 1: none; 2: constant; 3: adaptive thresholding
        if post >= 2:
            kwargs["fmr_vals"] = ()  # OML computes FNMR on the post-processed lists; ours on all pairs
        n = len(data.labels)
        oml_kwargs, our_kwargs = dict(kwargs), dict(kwargs)
        if post == 2:
            th = float(rng.uniform(0.5, 3.0))
            oml_kwargs["postprocessor"], our_kwargs["postprocessor"] = (
                OmlConstant(th),
                ConstantThresholding(th),
            )
        elif post == 3:
            n_std = float(rng.uniform(0.5, 3.0))
            oml_kwargs["postprocessor"], our_kwargs["postprocessor"] = (
                OmlAdaptive(n_std),
                AdaptiveThresholding(n_std),
            )
        kwargs["postprocessor"] = oml_kwargs.get("postprocessor")
        calc_oml = OmlEM(make_oml_dataset(data), **oml_kwargs)
        calc_oml.setup(n)
        calc_oml.update(data.embeddings, torch.arange(n))
        theirs = oml_call(calc_oml.compute_metrics)

        calc = EmbeddingMetrics(make_our_dataset(data), **our_kwargs)
        calc.setup(n)
        order = torch.from_numpy(rng.permutation(n))
        for chunk in torch.split(order, int(rng.randint(1, n + 1))):
            calc.update(data.embeddings[chunk], chunk)
        ours = calc.compute_metrics()
        # PCF on categories with one or two items is ill-defined (variance over n - 1 = 0 items):
        # compared separately below, where both are defined.
        compare_metric_dicts(r, ours, theirs, tol=1e-5)
        compare_metric_dicts(r, calc.metrics_unreduced, calc_oml.metrics_unreduced, tol=1e-5)
        return f"{data.describe()} {kwargs}"

    return case_loop(result, n_cases, seed, body)


def check_embedding_metrics_fnmr(n_cases: int, seed: int) -> Result:
    from oml.metrics.embeddings import EmbeddingMetrics as OmlEM

    from oml_fast.metrics import EmbeddingMetrics

    result = Result(
        "EmbeddingMetrics fnmr@fmr (large)",
        note="N up to 1500 (up to 2.2M pairs, our streamed histogram path), tied distances from "
        "duplicated / integer embeddings, fmr incl. 0 and 1; a tenth of --cases",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        n = int(rng.randint(200, 1500))
        dim = int(rng.randint(1, 16))
        labels = rng.randint(0, max(2, n // int(rng.randint(2, 20))), n)
        if rng.rand() < 0.4:
            embeddings = torch.from_numpy(rng.randint(0, 3, (n, dim)).astype(np.float32))
        else:
            embeddings = torch.from_numpy(rng.randn(n, dim).astype(np.float32))
        is_query = rng.rand(n) < 0.7 if rng.rand() < 0.5 else np.ones(n, bool)
        is_gallery = np.ones(n, bool)
        is_query[0] = True
        data = QGData(embeddings, labels, is_query, is_gallery, None, None)
        fmr = tuple(sorted({0.0, 1.0, *(float(v) for v in rng.rand(3)), 0.001}))
        kwargs = {
            "cmc_top_k": (1,),
            "precision_top_k": (1,),
            "map_top_k": (1,),
            "fmr_vals": fmr,
            "pcf_variance": (),
            "verbose": False,
        }
        calc_oml = OmlEM(make_oml_dataset(data), **kwargs)
        calc_oml.setup(n)
        calc_oml.update(embeddings, torch.arange(n))
        theirs = oml_call(calc_oml.compute_metrics)
        calc = EmbeddingMetrics(make_our_dataset(data), **kwargs)
        calc.setup(n)
        calc.update(embeddings, torch.arange(n))
        ours = calc.compute_metrics()
        key = "OVERALL"
        for v in fmr:
            r.close(ours[key]["fnmr@fmr"][v], theirs[key]["fnmr@fmr"][v], f"fnmr@fmr={v}", 1e-6)
        return f"N={n} D={dim} nq={int(is_query.sum())} fmr={fmr}"

    return case_loop(result, max(1, n_cases // 10), seed, body)


def check_thresholding(n_cases: int, seed: int) -> Result:
    from oml.metrics.embeddings import calc_fnmr_at_fmr_rr as oml_fnmr_rr
    from oml.retrieval.postprocessors.algo import AdaptiveThresholding as OmlAdaptive
    from oml.retrieval.postprocessors.algo import ConstantThresholding as OmlConstant
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRR

    from oml_fast.metrics import calc_fnmr_at_fmr_rr
    from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding, RetrievalResults

    result = Result(
        "Thresholding, calc_fnmr_at_fmr_rr",
        note="both sides process the same lists (OML's retrieval results of random datasets, copied "
        "into ours); OML's AdaptiveThresholding raises ZeroDivisionError when the first list has "
        "< 2 items (skipped)",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        data = random_qg_data(rng)
        n_items = int(rng.randint(1, len(data.labels) + 3))
        theirs_rr = _oml_retrieval(data, n_items)
        lists = {
            "distances": theirs_rr.distances,
            "retrieved_ids": theirs_rr.retrieved_ids,
            "gt_ids": theirs_rr.gt_ids,
        }
        theirs_rr = OmlRR(**lists)
        ours_rr = RetrievalResults(**lists)
        values = np.unique(torch.cat([*theirs_rr.distances, torch.zeros(1)]).numpy())
        # A threshold away from every distance (`<` versus `<=` is then irrelevant) ...
        th = float(values[-1] + 1.0)
        if len(values) > 1:
            i = int(rng.randint(0, len(values) - 1))
            th = float((values[i] + values[i + 1]) / 2)
        # ... and once exactly on a distance (OML keeps `d < th`).
        th_on = float(values[int(rng.randint(0, len(values)))])
        n_std = float(rng.uniform(0.3, 3.0))
        for post_ours, post_theirs in (
            (ConstantThresholding(th), OmlConstant(th)),
            (ConstantThresholding(th_on), OmlConstant(th_on)),
            (AdaptiveThresholding(n_std), OmlAdaptive(n_std)),
        ):
            compare_retrieval_results(r, post_ours.process(ours_rr), oml_call(post_theirs.process, theirs_rr))
        fmr = (0.0, float(rng.rand()), 1.0)
        theirs_fnmr = oml_call(oml_fnmr_rr, theirs_rr, fmr)  # OML raises IndexError without negatives
        compare_metric_dicts(r, calc_fnmr_at_fmr_rr(ours_rr, fmr), theirs_fnmr)
        return f"{data.describe()} n_items={n_items} th={th:.6g} th_on={th_on:.6g} n_std={n_std:.3g}"

    return case_loop(result, n_cases, seed, body)


# --------------------------------------------------------------------------------------------------
# Training checks (losses, miners, samplers)
# --------------------------------------------------------------------------------------------------


def _training_available() -> str | None:
    try:
        import oml_fast.losses as losses
        import oml_fast.miners as miners
        import oml_fast.samplers as samplers
    except Exception as error:  # noqa: BLE001
        return f"oml_fast training side does not import: {error}"
    needed = {
        losses: ("TripletLoss", "TripletLossWithMiner", "ArcFaceLoss", "SurrogatePrecision"),
        miners: ("HardTripletsMiner", "AllTripletsMiner", "NHardTripletsMiner"),
        samplers: ("BalanceSampler",),
    }
    missing = [name for module, names in needed.items() for name in names if not hasattr(module, name)]
    return f"not on this checkout yet: {', '.join(missing)}" if missing else None


def random_batch_labels(rng: np.random.RandomState) -> torch.Tensor:
    """At least 2 labels, each with at least 2 items (what OML's miners assert), shuffled."""
    n_labels = int(rng.randint(2, 7))
    counts = rng.randint(2, 6, size=n_labels)
    labels = np.repeat(rng.permutation(100)[:n_labels], counts)
    return torch.from_numpy(rng.permutation(labels)).long()


def _grads(loss_fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    loss = loss_fn(*leaves)
    loss.sum().backward()
    return loss.detach(), [x.grad for x in leaves]


def check_triplet_loss(n_cases: int, seed: int) -> Result:
    from oml.losses.triplet import TripletLoss as OmlTripletLoss

    from oml_fast.losses import TripletLoss

    result = Result(
        "TripletLoss",
        note="value and gradients, margin / soft margin, reductions, fp32 and fp64; deviation: soft "
        "margin is a stable softplus (OML's log1p(exp(x)) overflows to inf above x~88 in fp32), "
        "compared on moderate inputs, deviation confirmed on x=100",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        b, dim = int(rng.randint(1, 40)), int(rng.randint(1, 16))
        dtype = torch.float64 if rng.rand() < 0.3 else torch.float32
        margin = [None, 0.1, 0.5, 1.0, 2.0][rng.randint(0, 5)]
        reduction = ["mean", "sum", "none"][rng.randint(0, 3)]
        a, p, n = (torch.from_numpy(rng.randn(b, dim)).to(dtype) for _ in range(3))
        if rng.rand() < 0.2:  # identical anchor/positive rows: zero distance
            p[: b // 2] = a[: b // 2]
        loss_b, grads_b = _grads(OmlTripletLoss(margin=margin, reduction=reduction), a, p, n)
        loss_a, grads_a = _grads(TripletLoss(margin=margin, reduction=reduction), a, p, n)
        r.close(loss_a, loss_b, "loss", 1e-5)
        for name, g_a, g_b in zip("apn", grads_a, grads_b):
            r.close(g_a, g_b, f"grad {name}", 1e-5)
        return f"B={b} D={dim} {dtype} margin={margin} reduction={reduction}"

    result = case_loop(result, n_cases, seed, body)
    result.start("deviation: soft margin at d_ap - d_an = 100")
    a, p, n = torch.zeros(1, 1), torch.tensor([[100.0]]), torch.zeros(1, 1)
    ours = TripletLoss(margin=None)(a, p, n)
    theirs = OmlTripletLoss(margin=None)(a, p, n)
    if not (math.isinf(float(theirs)) and abs(float(ours) - 100.0) < 1e-4):
        result.fail(f"expected OML inf and ours 100, got OML {float(theirs)} and ours {float(ours)}")
    result.end()
    return result


def _triplet_ids(features: torch.Tensor, triplets: tuple[torch.Tensor, ...]) -> list[tuple[int, int, int]]:
    """Maps the rows of (anchors, positives, negatives) back to batch indices (rows are unique)."""
    index = {tuple(row.tolist()): i for i, row in enumerate(features)}
    a, p, n = triplets
    return [
        (index[tuple(x.tolist())], index[tuple(y.tolist())], index[tuple(z.tolist())])
        for x, y, z in zip(a, p, n)
    ]


def check_hard_miner(n_cases: int, seed: int) -> Result:
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OmlHard

    from oml_fast.miners import HardTripletsMiner

    result = Result(
        "HardTripletsMiner",
        note="triplet indices on distinct features; OML counts the anchor among its positives "
        "(only matters for exact duplicates, documented by oml_fast)",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        labels = random_batch_labels(rng)
        features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(1, 16))).astype(np.float32))
        theirs = _triplet_ids(features, oml_call(OmlHard().sample, features, labels))
        ours = _triplet_ids(features, HardTripletsMiner().sample(features, labels))
        r.equal(ours, theirs, "triplets (a, p, n)")
        return f"B={len(labels)} labels={labels.tolist()}"

    return case_loop(result, n_cases, seed, body)


def check_all_miner(n_cases: int, seed: int) -> Result:
    from oml.miners.inbatch_all_tri import AllTripletsMiner as OmlAll

    from oml_fast.miners import AllTripletsMiner

    result = Result(
        "AllTripletsMiner",
        note="set of all triplets; with max_output_triplets: count and validity (random subset)",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        labels = random_batch_labels(rng)
        features = torch.from_numpy(rng.randn(len(labels), 4).astype(np.float32))
        theirs = sorted(_triplet_ids(features, oml_call(OmlAll().sample, features, labels)))
        ours = sorted(_triplet_ids(features, AllTripletsMiner().sample(features, labels)))
        r.equal(ours, theirs, "all triplets")
        limit = int(rng.randint(1, len(theirs) + 10))
        theirs_limited = _triplet_ids(
            features, oml_call(OmlAll(max_output_triplets=limit).sample, features, labels)
        )
        ours_limited = _triplet_ids(
            features, AllTripletsMiner(max_output_triplets=limit).sample(features, labels)
        )
        r.equal(len(ours_limited), len(theirs_limited), f"count with max_output_triplets={limit}")
        r.equal(len(set(ours_limited)), len(ours_limited), "no repeated triplet")
        r.equal(set(ours_limited) <= set(theirs), True, "limited triplets are valid triplets")
        return f"B={len(labels)} limit={limit}"

    return case_loop(result, n_cases, seed, body)


def check_nhard_miner(n_cases: int, seed: int) -> Result:
    from oml.miners.inbatch_nhard_tri import NHardTripletsMiner as OmlNHard

    from oml_fast.miners import NHardTripletsMiner

    result = Result(
        "NHardTripletsMiner",
        note="multiset of triplets, n as int (top n) and (lo, hi) ranges; OML raises when a range "
        "leaves an anchor without positives or negatives (skipped)",
    )

    def random_n(rng: np.random.RandomState) -> Any:
        if rng.rand() < 0.5:
            return int(rng.randint(1, 5))
        lo = int(rng.randint(1, 4))
        return (lo, lo + int(rng.randint(1, 3)))

    def body(rng: np.random.RandomState, r: Result) -> str:
        labels = random_batch_labels(rng)
        features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(1, 10))).astype(np.float32))
        n_pos, n_neg = random_n(rng), random_n(rng)
        theirs = sorted(_triplet_ids(features, oml_call(OmlNHard(n_pos, n_neg).sample, features, labels)))
        ours = sorted(_triplet_ids(features, NHardTripletsMiner(n_pos, n_neg).sample(features, labels)))
        r.equal(ours, theirs, "triplets")
        return f"B={len(labels)} n_positive={n_pos} n_negative={n_neg} labels={labels.tolist()}"

    return case_loop(result, n_cases, seed, body)


def check_triplet_with_miner(n_cases: int, seed: int) -> Result:
    from oml.losses.triplet import TripletLossWithMiner as OmlTLWM
    from oml.miners.inbatch_all_tri import AllTripletsMiner as OmlAll
    from oml.miners.inbatch_hard_tri import HardTripletsMiner as OmlHard
    from oml.miners.inbatch_nhard_tri import NHardTripletsMiner as OmlNHard

    from oml_fast.losses import TripletLossWithMiner
    from oml_fast.miners import AllTripletsMiner, HardTripletsMiner, NHardTripletsMiner

    result = Result(
        "TripletLossWithMiner",
        note="value and gradient wrt features with Hard / All / NHard(2,2) miners, mean and sum",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        labels = random_batch_labels(rng)
        features = torch.from_numpy(rng.randn(len(labels), int(rng.randint(2, 16))).astype(np.float32))
        margin = [None, 0.2, 1.0][rng.randint(0, 3)]
        reduction = ["mean", "sum"][rng.randint(0, 2)]
        which = ["hard", "all", "nhard"][rng.randint(0, 3)]
        miners = {
            "hard": (OmlHard(), HardTripletsMiner()),
            "all": (OmlAll(), AllTripletsMiner()),
            "nhard": (OmlNHard(2, 2), NHardTripletsMiner(2, 2)),
        }[which]
        oml_loss = OmlTLWM(margin=margin, miner=miners[0], reduction=reduction)
        our_loss = TripletLossWithMiner(margin=margin, miner=miners[1], reduction=reduction)
        loss_b, (grad_b,) = _grads(lambda f: oml_loss(f, labels), features)
        loss_a, (grad_a,) = _grads(lambda f: our_loss(f, labels), features)
        r.close(loss_a, loss_b, "loss", 1e-5)
        r.close(grad_a, grad_b, "grad", 1e-5)
        return f"B={len(labels)} miner={which} margin={margin} reduction={reduction}"

    return case_loop(result, n_cases, seed, body)


def check_arcface(n_cases: int, seed: int) -> Result:
    from oml.losses.arcface import ArcFaceLoss as OmlArcFace

    from oml_fast.losses import ArcFaceLoss

    result = Result(
        "ArcFaceLoss",
        note="same weights; value and gradients wrt x and weight; m, s, label smoothing with and "
        "without label2category; deviation: sine clamped (OML NaN gradient at |cos| = 1), compared "
        "at |cos| < 1",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        dim, n_classes, b = int(rng.randint(2, 16)), int(rng.randint(2, 12)), int(rng.randint(1, 30))
        m, s = float(rng.uniform(0.1, 0.8)), float(rng.choice([1.0, 16.0, 64.0]))
        eps = float(rng.choice([0.0, 0.1, 0.3]))
        label2category = None
        if eps and rng.rand() < 0.5:
            label2category = {i: ["a", "b", "c"][int(rng.randint(0, 3))] for i in range(n_classes)}
        reduction = ["mean", "sum", "none"][rng.randint(0, 3)]
        kwargs = {
            "m": m,
            "s": s,
            "smoothing_epsilon": eps,
            "label2category": label2category,
            "reduction": reduction,
        }
        theirs = OmlArcFace(dim, n_classes, **kwargs)
        ours = ArcFaceLoss(dim, n_classes, **kwargs)
        with torch.no_grad():
            ours.weight.copy_(theirs.weight)
        x = torch.from_numpy(rng.randn(b, dim).astype(np.float32)).requires_grad_(True)
        y = torch.from_numpy(rng.randint(0, n_classes, b)).long()
        x2 = x.detach().clone().requires_grad_(True)
        loss_b = theirs(x, y)
        loss_a = ours(x2, y)
        loss_b.sum().backward()
        loss_a.sum().backward()
        r.close(loss_a, loss_b, "loss", 1e-4)
        desc = f"B={b} D={dim} C={n_classes} {kwargs}"
        if bool(torch.isnan(x.grad).any() or torch.isnan(theirs.weight.grad).any()):
            # |cos| rounded to 1 (likely in low dimension): OML's sqrt(1 - cos^2) has a NaN gradient,
            # ours is clamped (documented deviation). Ours must stay finite.
            r.equal(bool(torch.isfinite(x2.grad).all()), True, "our grad x finite where OML's is NaN")
            r.equal(bool(torch.isfinite(ours.weight.grad).all()), True, "our grad weight finite")
            return desc + " (OML gradient NaN at |cos| = 1)"
        r.close(x2.grad, x.grad, "grad x", 1e-4)
        r.close(ours.weight.grad, theirs.weight.grad, "grad weight", 1e-4)
        return desc

    result = case_loop(result, n_cases, seed, body)
    result.start("label2category with smoothing_epsilon=0 (OML accepts and ignores it)")
    label2category = {0: "a", 1: "b", 2: "a"}
    theirs = OmlArcFace(4, 3, label2category=label2category)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    try:
        ours = ArcFaceLoss(4, 3, label2category=label2category)
        with torch.no_grad():
            ours.weight.copy_(theirs.weight)
        result.close(ours(x, y), theirs(x, y), "loss", 1e-5)
    except Exception as error:  # noqa: BLE001
        result.fail(
            f"ours raises {type(error).__name__}: {error}; OML returns {float(theirs(x, y).detach()):.4f}"
        )
    result.end()
    return result


def check_surrogate_precision(n_cases: int, seed: int) -> Result:
    from oml.functional.losses import surrogate_precision as oml_surrogate_precision
    from oml.losses.surrogate_precision import SurrogatePrecision as OmlSP

    from oml_fast.losses import SurrogatePrecision, surrogate_precision

    result = Result(
        "SurrogatePrecision",
        note="value and gradient; k, temperatures, reductions. The loss is compared in float64: OML's "
        "torch.cdist (matrix-multiply path above 25 rows) leaves the diagonal at ~1e-3 instead of 0 in "
        "float32, which moves OML's value by ~1e-4 at t2=1; the formula (surrogate_precision) is "
        "compared in float32 on identical distances",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        b, dim = int(rng.randint(2, 40)), int(rng.randint(1, 12))
        labels = torch.from_numpy(rng.randint(0, max(1, b // 3), b)).long()
        k = int(rng.randint(1, 6))
        t1, t2 = float(rng.choice([0.5, 1.0, 2.0])), float(rng.choice([0.01, 0.1, 1.0]))
        reduction = ["mean", "sum", "none"][rng.randint(0, 3)]
        features = torch.from_numpy(rng.randn(b, dim))
        loss_b, (grad_b,) = _grads(lambda f: OmlSP(k, t1, t2, reduction)(f, labels), features)
        loss_a, (grad_a,) = _grads(lambda f: SurrogatePrecision(k, t1, t2, reduction)(f, labels), features)
        r.close(loss_a, loss_b, "loss (float64)", 1e-6)
        r.close(grad_a, grad_b, "grad (float64)", 1e-6)
        distances = torch.cdist(features, features).float()
        mask = labels[:, None] == labels[None, :]
        args = {"k": k + 1, "t1": t1, "t2": t2, "reduction": reduction}
        value_b, (grad_d_b,) = _grads(lambda d: oml_surrogate_precision(d, mask, **args), distances)
        value_a, (grad_d_a,) = _grads(lambda d: surrogate_precision(d, mask, **args), distances)
        r.close(value_a, value_b, "surrogate_precision (float32)", 1e-5)
        r.close(grad_d_a, grad_d_b, "surrogate_precision grad (float32)", 1e-5)
        return f"B={b} D={dim} k={k} t1={t1} t2={t2} reduction={reduction}"

    return case_loop(result, n_cases, seed, body)


def _batch_structure(
    batches: list[list[int]], labels: np.ndarray, n_labels: int, n_instances: int
) -> list[str]:
    problems = []
    seen: set[Any] = set()
    counts = Counter(labels.tolist())
    for batch in batches:
        if len(batch) != n_labels * n_instances:
            problems.append(f"batch of {len(batch)} items")
        per_label = Counter(labels[batch].tolist())
        if len(per_label) != n_labels or any(v != n_instances for v in per_label.values()):
            problems.append(f"labels x counts {dict(per_label)}")
        if seen & set(per_label):
            problems.append("label repeated within the epoch")
        seen |= set(per_label)
        for label in per_label:
            items = [i for i in batch if labels[i] == label]
            if counts[label] >= n_instances and len(set(items)) != len(items):
                problems.append(f"label {label} with {counts[label]} items sampled with repeats")
    return problems


def check_balance_sampler(n_cases: int, seed: int) -> Result:
    from oml.samplers.balance import BalanceSampler as OmlBalance

    from oml_fast.samplers import BalanceSampler

    result = Result(
        "BalanceSampler",
        note="len, batch size and structure (n_labels x n_instances, no label twice in an epoch, "
        "no repeats unless a label is small); indices are random on both sides",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        n_unique = int(rng.randint(2, 30))
        counts = rng.randint(2, 10, n_unique)
        labels = np.repeat(rng.permutation(1000)[:n_unique], counts)
        labels = labels[rng.permutation(len(labels))]
        n_labels, n_instances = int(rng.randint(2, n_unique + 1)), int(rng.randint(2, 8))
        theirs = oml_call(OmlBalance, labels.tolist(), n_labels, n_instances)
        ours = BalanceSampler(labels.tolist(), n_labels, n_instances)
        r.equal(len(ours), len(theirs), "len")
        r.equal(ours.batch_size, theirs.batch_size, "batch_size")
        batches_b, batches_a = list(theirs), list(ours)
        r.equal(len(batches_a), len(batches_b), "batches per epoch")
        r.equal(_batch_structure(batches_b, labels, n_labels, n_instances), [], "OML batch structure")
        r.equal(_batch_structure(batches_a, labels, n_labels, n_instances), [], "our batch structure")
        return f"n_unique={n_unique} n_labels={n_labels} n_instances={n_instances}"

    return case_loop(result, n_cases, seed, body)


def _category_structure(
    batches: list[list[int]],
    labels: np.ndarray,
    label2category: dict[Any, Any],
    n_categories: int,
    n_labels: int,
    n_instances: int,
    distinct_labels: bool,
) -> list[str]:
    problems = []
    for batch in batches:
        if len(batch) != n_categories * n_labels * n_instances:
            problems.append(f"batch of {len(batch)} items")
        per_category = Counter(label2category[labels[i]] for i in batch)
        if len(per_category) != n_categories or any(
            v != n_labels * n_instances for v in per_category.values()
        ):
            problems.append(f"categories x counts {dict(per_category)}")
        per_label = Counter(labels[batch].tolist())
        if any(v % n_instances for v in per_label.values()):
            problems.append(f"label counts not multiples of n_instances: {dict(per_label)}")
        if distinct_labels and (
            any(v != n_instances for v in per_label.values()) or len(per_label) != n_categories * n_labels
        ):
            problems.append(f"labels x counts {dict(per_label)}")
    return problems


def check_category_samplers(n_cases: int, seed: int) -> Result:
    from oml.samplers.category_balance import CategoryBalanceSampler as OmlCategory
    from oml.samplers.distinct_category_balance import DistinctCategoryBalanceSampler as OmlDistinct

    from oml_fast.samplers import CategoryBalanceSampler, DistinctCategoryBalanceSampler

    result = Result(
        "Category/DistinctCategoryBalanceSampler",
        note="len, batch size and structure (categories x labels x instances) on both sides",
    )

    def body(rng: np.random.RandomState, r: Result) -> str:
        n_cat = int(rng.randint(1, 5))
        n_labels = int(rng.randint(2, 5))
        label2category: dict[int, int] = {}
        label = 0
        for category in range(n_cat):
            for _ in range(int(rng.randint(n_labels, n_labels + 4))):
                label2category[label] = category
                label += 1
        labels = np.repeat(np.arange(label), rng.randint(2, 7, label))
        labels = labels[rng.permutation(len(labels))]
        n_categories, n_instances = int(rng.randint(1, n_cat + 1)), int(rng.randint(2, 5))
        resample, weight = bool(rng.rand() < 0.5), bool(rng.rand() < 0.5)
        epoch_size = int(rng.randint(1, 12))
        args = (labels.tolist(), label2category, n_categories, n_labels, n_instances)
        pairs = [
            (
                oml_call(OmlCategory, *args, resample_labels=resample, weight_categories=weight),
                CategoryBalanceSampler(*args, resample_labels=resample, weight_categories=weight),
                not resample,
            ),
            (
                oml_call(OmlDistinct, *args, epoch_size=epoch_size),
                DistinctCategoryBalanceSampler(*args, epoch_size=epoch_size),
                True,
            ),
        ]
        for theirs, ours, distinct in pairs:
            name = type(ours).__name__
            r.equal(len(ours), len(theirs), f"{name} len")
            r.equal(ours.batch_size, theirs.batch_size, f"{name} batch_size")
            batches_b, batches_a = list(theirs), list(ours)
            r.equal(len(batches_a), len(batches_b), f"{name} batches per epoch")
            struct = (labels, label2category, n_categories, n_labels, n_instances, distinct)
            r.equal(_category_structure(batches_b, *struct), [], f"OML {name} structure")
            r.equal(_category_structure(batches_a, *struct), [], f"our {name} structure")
        return (
            f"n_cat={n_cat} n_categories={n_categories} n_labels={n_labels} n_instances={n_instances} "
            f"resample={resample} weight={weight} epoch_size={epoch_size}"
        )

    return case_loop(result, n_cases, seed, body)


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------

VALIDATION_CHECKS: dict[str, Callable[[int, int], Result]] = {
    "retrieval_metrics": check_retrieval_metrics,
    "fnmr": check_fnmr,
    "pcf": check_pcf,
    "retrieval_results": check_retrieval_results,
    "retrieval_results_qg": check_retrieval_results_qg,
    "embedding_metrics": check_embedding_metrics,
    "embedding_metrics_fnmr": check_embedding_metrics_fnmr,
    "thresholding": check_thresholding,
}
TRAINING_CHECKS: dict[str, Callable[[int, int], Result]] = {
    "triplet_loss": check_triplet_loss,
    "triplet_with_miner": check_triplet_with_miner,
    "hard_miner": check_hard_miner,
    "all_miner": check_all_miner,
    "nhard_miner": check_nhard_miner,
    "arcface": check_arcface,
    "surrogate_precision": check_surrogate_precision,
    "balance_sampler": check_balance_sampler,
    "category_samplers": check_category_samplers,
}


def print_table(results: list[Result]) -> None:
    header = (
        f"| {'check':<40} | {'status':<6} | {'cases':>5} | {'failed':>6} | {'skipped':>7} | {'max diff':>9} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for res in results:
        print(
            f"| {res.name:<40} | {res.status:<6} | {res.cases:>5} | {res.failed_cases:>6} | "
            f"{res.skipped_cases:>7} | {res.max_diff:>9.2g} |"
        )
    print()
    for res in results:
        line = f"- {res.name}: {res.note.strip()}"
        if res.skip_reason:
            line += f" SKIPPED: {res.skip_reason}"
        print(line)
    failing = [res for res in results if res.failures]
    if failing:
        print("\nFailures (first ones per check):")
        for res in failing:
            for failure in res.failures:
                print(f"  {res.name}: {failure}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=200, help="random cases per check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated check names (see --list)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument(
        "--checkout", default=str(_ROOT), help="oml_fast checkout with an in-place build (default: this one)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.checkout).resolve()))
    checks = {**VALIDATION_CHECKS, **TRAINING_CHECKS}
    if args.list:
        print("\n".join(checks))
        return 0
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(checks)
    unknown = [name for name in selected if name not in checks]
    if unknown:
        parser.error(f"unknown checks {unknown}; known: {list(checks)}")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    if peers.import_oml() is None:
        print(f"OML is not importable: {peers.unavailable_reason('oml')}")
        print("Create the peers venv with scripts/setup_peers.sh and run this script with it.")
        return 2
    import oml_fast

    print(
        f"torch {torch.__version__}; oml_fast from {Path(oml_fast.__file__).parent}; OML 4.0; {args.cases} cases"
    )
    training_skip = _training_available()
    results = []
    for name in selected:
        if name in TRAINING_CHECKS and training_skip:
            res = Result(name)
            res.skip_reason = training_skip
            results.append(res)
            continue
        try:
            results.append(checks[name](args.cases, args.seed))
        except Exception:  # noqa: BLE001 - report a check that cannot run at all as failed
            res = Result(name)
            res.failed_cases = 1
            res.failures.append(traceback.format_exc(limit=6))
            results.append(res)
        print(f"  done: {name} ({results[-1].status})", flush=True)
    print()
    print_table(results)
    return 1 if any(res.status == "FAIL" for res in results) else 0


if __name__ == "__main__":
    sys.exit(main())
