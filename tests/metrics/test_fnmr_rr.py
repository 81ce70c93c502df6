"""calc_fnmr_at_fmr_rr: OML's FNMR@FMR over the retrieved lists only (OML 4.x name and output)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.functional import calc_fnmr_at_fmr
from oml_fast.metrics import calc_fnmr_at_fmr_rr
from oml_fast.retrieval import RetrievalResults


def test_uses_retrieved_pairs_only():
    rr = RetrievalResults(
        distances=[torch.tensor([0.1, 0.4, 0.8]), torch.tensor([0.2, 0.3]), torch.tensor([])],
        retrieved_ids=[torch.tensor([2, 0, 1]), torch.tensor([1, 2]), torch.tensor([], dtype=torch.long)],
        gt_ids=[torch.tensor([0, 3]), torch.tensor([1]), torch.tensor([0])],
    )
    result = calc_fnmr_at_fmr_rr(rr, fmr_vals=(0.0, 0.5, 1.0))
    # positives: 0.4 (query 0, id 0), 0.2 (query 1, id 1); negatives: 0.1, 0.8, 0.3.
    expected = calc_fnmr_at_fmr(np.array([0.4, 0.2]), np.array([0.1, 0.8, 0.3]), (0.0, 0.5, 1.0))
    assert list(result) == ["fnmr@fmr"]
    assert list(result["fnmr@fmr"]) == [0.0, 0.5, 1.0]
    for value, want in zip(result["fnmr@fmr"].values(), expected):
        assert float(value) == pytest.approx(float(want))
    # Hand check at fmr=0.5: T = median(0.1, 0.3, 0.8) = 0.3; positives >= 0.3: {0.4} -> 1/2.
    assert float(result["fnmr@fmr"][0.5]) == pytest.approx(0.5)


def test_empty_fmr_vals_gives_nothing():
    rr = RetrievalResults([torch.tensor([0.1])], [torch.tensor([0])], [torch.tensor([0])])
    assert calc_fnmr_at_fmr_rr(rr, fmr_vals=()) == {}
