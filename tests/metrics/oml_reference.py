"""A straightforward reference for validation metrics: full distance matrix, Python loops (OML 4.x rules)."""

from __future__ import annotations

import math

import numpy as np
import torch


def retrieve(dist: np.ndarray, excluded: np.ndarray, k: int) -> list[list[int]]:
    lists = []
    for q in range(dist.shape[0]):
        candidates = [g for g in range(dist.shape[1]) if not excluded[q, g]]
        candidates.sort(key=lambda g: (dist[q, g], g))
        lists.append(candidates[:k])
    return lists


def per_query(g: list[bool], n_gt: int, k: int) -> tuple[float, float, float]:
    if not g:
        return (1.0, 1.0, 1.0) if n_gt == 0 else (0.0, 0.0, 0.0)
    k = min(k, len(g))
    hits = sum(g[:k])
    cmc = 1.0 if hits > 0 else 0.0
    precision = hits / min(n_gt, k) if min(n_gt, k) > 0 else math.nan
    running, total = 0, 0.0
    for i, relevant in enumerate(g[:k], start=1):
        if relevant:
            running += 1
            total += running / i
    average_precision = total / hits if hits > 0 else 0.0
    return cmc, precision, average_precision


def pcf(embeddings: np.ndarray, variance: float) -> float:
    x = embeddings.astype(np.float64) - embeddings.astype(np.float64).mean(0)
    s = np.linalg.svd(x, compute_uv=False)
    ratio = s**2 / (s**2).sum()
    n = int(np.searchsorted(np.cumsum(ratio), variance, side="right")) + 1
    return min(n, x.shape[1]) / x.shape[1]


def reference_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    is_query: np.ndarray,
    is_gallery: np.ndarray,
    categories: np.ndarray | None,
    sequences: np.ndarray | None,
    cmc_top_k: tuple[int, ...],
    precision_top_k: tuple[int, ...],
    map_top_k: tuple[int, ...],
    fmr_vals: tuple[float, ...] = (),
    pcf_variance: tuple[float, ...] = (),
):
    """Returns (unreduced per-query dict per category, reduced dict, retrieved lists)."""
    q_ids, g_ids = np.flatnonzero(is_query), np.flatnonzero(is_gallery)
    e = torch.as_tensor(embeddings, dtype=torch.float64)
    dist = torch.cdist(e[q_ids], e[g_ids]).numpy()
    excluded = q_ids[:, None] == g_ids[None, :]
    if sequences is not None:
        excluded |= sequences[q_ids][:, None] == sequences[g_ids][None, :]
    same = labels[q_ids][:, None] == labels[g_ids][None, :]
    max_k = max(*cmc_top_k, *precision_top_k, *map_top_k)
    lists = retrieve(dist, excluded, max_k)
    values: dict = {"cmc": {k: [] for k in cmc_top_k}, "precision": {k: [] for k in precision_top_k}}
    values["map"] = {k: [] for k in map_top_k}
    for q, retrieved in enumerate(lists):
        g = [bool(same[q, j]) for j in retrieved]
        n_gt = int((same[q] & ~excluded[q]).sum())
        for k in cmc_top_k:
            values["cmc"][k].append(per_query(g, n_gt, k)[0])
        for k in precision_top_k:
            values["precision"][k].append(per_query(g, n_gt, k)[1])
        for k in map_top_k:
            values["map"][k].append(per_query(g, n_gt, k)[2])
    overall = {name: {k: np.array(v) for k, v in per_k.items()} for name, per_k in values.items()}
    unreduced = {"OVERALL": overall}
    if categories is not None:
        query_categories = categories[q_ids]
        for c in dict.fromkeys(query_categories.tolist()):
            mask = query_categories == c
            unreduced[c] = {name: {k: v[mask] for k, v in per_k.items()} for name, per_k in overall.items()}
    for c in unreduced:
        if pcf_variance:
            items = embeddings if c == "OVERALL" else embeddings[categories == c]
            unreduced[c]["pcf"] = {v: np.array(pcf(items, v)) for v in pcf_variance}
    if fmr_vals:
        valid = ~excluded
        pos, neg = dist[valid & same], dist[valid & ~same]
        thresholds = np.quantile(neg, fmr_vals) if len(neg) else np.full(len(fmr_vals), np.inf)
        unreduced["OVERALL"]["fnmr@fmr"] = {
            f: np.array((pos >= t).sum() / len(pos) if len(neg) and len(pos) else math.nan)
            for f, t in zip(fmr_vals, thresholds)
        }
    reduced = {
        c: {name: {k: float(np.mean(v)) for k, v in per_k.items()} for name, per_k in m.items()}
        for c, m in unreduced.items()
    }
    return unreduced, reduced, lists
