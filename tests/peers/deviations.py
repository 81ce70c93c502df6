"""Where oml_fast and OML 4.0 differ on purpose, and inputs on which OML 4.0 itself raises, by id.

The table with what OML does, what we do and why is docs/deviations_from_oml.md; this module holds
the same ids so that a cross-check which skips or adjusts a comparison names its reason in code
(``@adjusts_for("pcf-cap")``, ``skip_for("fnmr-all-pairs", ...)``). ``test_deviations.py`` asserts
that the ids here and the ids in the doc are the same set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

# Deliberate deviations: oml_fast's behaviour differs from OML 4.0's (docs/deviations_from_oml.md).
DEVIATIONS: dict[str, str] = {
    "pcf-cap": "PCF is capped at 1 (OML reports (D + 1) / D at variance 1.0)",
    "fnmr-all-pairs": "FNMR@FMR over all query-gallery pairs (OML: over the retrieved lists)",
    "tie-order": "equal distances are ordered by the smaller gallery index (OML: torch.topk order)",
    "exact-distances": "small Euclidean distances are exact (OML's torch.cdist may return 0 for 1e-4)",
    "joint-sequence-ids": "query and gallery sequence ids are factorised jointly (OML: separately)",
    "soft-margin-stable": "soft-margin triplet loss is a stable softplus (OML overflows to inf above ~88)",
    "arcface-sine-clamp": "ArcFace's 1 - cos^2 is clamped: finite gradient at |cos| = 1 (OML: NaN)",
    "hard-miner-anchor": "the hard miner never returns the anchor as its own positive",
    "cross-batch-bank-pairs": "the cross-batch miner draws bank pairs from existing ones (OML can loop forever)",
}

# Inputs on which OML 4.0 raises (where oml_fast returns a result), with the exception OML raises there;
# cross-check cases that hit one are skipped, naming the exception.
OML_RAISES: dict[str, tuple[type[Exception], str]] = {
    "oml-raises-single-query": (
        TypeError,
        "RetrievalResults.from_embeddings / EmbeddingMetrics with a single query",
    ),
    "oml-raises-adaptive-short-list": (
        ZeroDivisionError,
        "AdaptiveThresholding when the first list has < 2 items",
    ),
    "oml-raises-nhard-range": (
        ValueError,
        "NHardTripletsMiner ranges that leave an anchor without positives/negatives",
    ),
    "oml-raises-fnmr-no-negatives": (
        IndexError,
        "FNMR@FMR (calc_fnmr_at_fmr_rr, EmbeddingMetrics) without a negative pair",
    ),
}

_Test = TypeVar("_Test", bound=Callable[..., object])


def adjusts_for(*ids: str) -> Callable[[_Test], _Test]:
    """Marks a cross-check that adjusts its comparison for the deviations ``ids`` (checked at import)."""
    unknown = [key for key in ids if key not in DEVIATIONS]
    if unknown:
        raise KeyError(f"unknown deviation ids {unknown}; known: {sorted(DEVIATIONS)}")

    def cite(test: _Test) -> _Test:
        test.deviations = ids  # type: ignore[attr-defined]
        return test

    return cite


def skip_for(key: str, detail: str = "") -> NoReturn:
    """Skips the running case because of a deviation or a known OML failure, citing its id."""
    reason = f"{key}: {DEVIATIONS[key] if key in DEVIATIONS else OML_RAISES[key][1]}"
    pytest.skip(f"{reason} ({detail})" if detail else reason)
