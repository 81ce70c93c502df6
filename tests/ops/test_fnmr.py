"""The private ``_pair_distance_histogram`` op (one FNMR@FMR pass) against its pure-PyTorch twin.

The per-element formulas (csrc/retrieval/fnmr_common.h) are shared by the CPU and CUDA kernels; here they
are exercised through the CPU kernel, on every slot kind (below, bins, above), ties, endpoints, empty
tiles and each combination of exclusion keys.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oml_fast.ops.fnmr import pair_distance_histogram
from oml_fast.reference.fnmr import bin_of
from oml_fast.reference.fnmr import pair_distance_histogram as reference_histogram

INF = math.inf


def sample_inputs(rng: np.random.Generator, dtype: torch.dtype, kind: str):
    rows, n_gallery = int(rng.integers(0, 9)), int(rng.integers(1, 150))
    if kind == "ties":
        dist = rng.integers(0, 5, (rows, n_gallery)).astype(np.float64)
    elif kind == "equal":
        dist = np.full((rows, n_gallery), 1.25)
    else:
        dist = rng.standard_normal((rows, n_gallery)) * 3
    dist = torch.from_numpy(dist).to(dtype)

    def keys(n: int, high: int) -> torch.Tensor:
        return torch.from_numpy(rng.integers(0, high, n))

    ids = (keys(rows, 6), keys(n_gallery, 6)) if rng.random() < 0.6 else (None, None)
    groups = (keys(rows, 4), keys(n_gallery, 4)) if rng.random() < 0.4 else (None, None)
    return dist, keys(rows, 3), keys(n_gallery, 3), ids, groups


def _window(rng: np.random.Generator, dist: torch.Tensor, seed: int) -> tuple[float, float, int]:
    values = dist.double().flatten()
    if seed % 5 == 0 or values.numel() == 0:
        return -INF, INF, 1
    if seed % 5 == 1:  # a window between two values, or on them (endpoints inside)
        a, b = sorted(rng.choice(values.numpy(), 2))
        return float(a), float(b), int(rng.integers(1, 9))
    if seed % 5 == 2:  # half-infinite
        return (-INF, float(values.median()), 1) if seed % 2 else (float(values.median()), INF, 1)
    if seed % 5 == 3:  # a window of equal bounds
        v = float(rng.choice(values.numpy()))
        return v, v, int(rng.integers(1, 5))
    return float(values.min()) - 0.5, float(values.max()) + 0.5, int(rng.integers(1, 9))


def _sorted(t: torch.Tensor) -> torch.Tensor:
    return torch.sort(t).values


@pytest.mark.parametrize("seed", range(60))
def test_op_matches_reference(seed):
    rng = np.random.default_rng(seed)
    dtype = (torch.float32, torch.float64, torch.float16, torch.bfloat16)[seed % 4]
    kind = ("normal", "ties", "equal")[seed % 3]
    dist, ql, gl, (qid, gid), (qgr, ggr) = sample_inputs(rng, dtype, kind)
    lower, upper, n_bins = _window(rng, dist, seed)
    for collect in (False, True):
        for with_positives in (False, True):
            args = (dist, ql, gl, qid, gid, qgr, ggr, lower, upper, n_bins, collect, with_positives)
            got, expected = pair_distance_histogram(*args), reference_histogram(*args)
            for name in ("counts", "mins", "maxs"):
                g, e = getattr(got, name), getattr(expected, name)
                assert g.dtype == e.dtype and torch.equal(g, e), name
            for name in ("collected", "positives"):
                g, e = getattr(got, name), getattr(expected, name)
                assert g.dtype == dtype and torch.equal(_sorted(g), _sorted(e)), name
            assert int(got.counts.sum()) == int(expected.counts.sum())


def test_op_values_by_hand():
    dist = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])
    labels_q, labels_g = torch.tensor([0, 1]), torch.tensor([0, 1, 2, 2])
    ids_q, ids_g = torch.tensor([0, 1]), torch.tensor([0, 1, 2, 3])
    # Excluded: (0,0), (1,1); positives: none left; negatives: 1, 2, 3, 4, 6, 7.
    out = pair_distance_histogram(dist, labels_q, labels_g, ids_q, ids_g, lower=2.0, upper=6.0, n_bins=2)
    # window [2, 6] in bins [2, 4) and [4, 6]: below {1}, {2, 3}, {4, 6}, above {7}
    assert out.counts.tolist() == [1, 2, 2, 1]
    assert out.mins.tolist() == [1.0, 2.0, 4.0, 7.0] and out.maxs.tolist() == [1.0, 3.0, 6.0, 7.0]
    assert out.collected.numel() == 0 and out.positives.numel() == 0
    out = pair_distance_histogram(
        dist, labels_q, labels_g, lower=3.0, upper=5.0, collect=True, with_positives=True
    )
    assert sorted(out.collected.tolist()) == [3.0, 4.0] and sorted(out.positives.tolist()) == [0.0, 5.0]
    # without ids: positives 0, 5; negatives 1, 2 | 3, 4 | 6, 7
    assert out.counts.tolist() == [2, 2, 2] and out.mins.tolist() == [1.0, 3.0, 6.0]


def test_bins_are_consecutive_value_ranges():
    values = torch.linspace(-3, 5, 2001, dtype=torch.float64)
    for n_bins in (1, 2, 7, 64):
        bins = bin_of(values, -1.0, 4.0, n_bins)
        assert torch.all(bins[1:] >= bins[:-1]) and int(bins.min()) == 0 and int(bins.max()) == n_bins - 1


def test_op_errors_name_the_argument():
    dist = torch.zeros(2, 3)
    labels_q, labels_g = torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="dist"):
        pair_distance_histogram(torch.zeros(6), labels_q, labels_g)
    with pytest.raises(TypeError, match="dist"):
        pair_distance_histogram(torch.zeros(2, 3, dtype=torch.long), labels_q, labels_g)
    with pytest.raises(ValueError, match="gallery_labels"):
        pair_distance_histogram(dist, labels_q, labels_q)
    with pytest.raises(ValueError, match="gallery_ids"):
        pair_distance_histogram(dist, labels_q, labels_g, labels_q, None)
    with pytest.raises(ValueError, match="n_bins"):
        pair_distance_histogram(dist, labels_q, labels_g, lower=0.0, upper=1.0, n_bins=0)
    with pytest.raises(ValueError, match="n_bins"):
        pair_distance_histogram(dist, labels_q, labels_g, n_bins=4)  # infinite window
    with pytest.raises(ValueError, match="lower"):
        pair_distance_histogram(dist, labels_q, labels_g, lower=2.0, upper=1.0)
    with pytest.raises(ValueError, match="lower"):
        pair_distance_histogram(dist, labels_q, labels_g, lower=math.nan)
    with pytest.raises(ValueError, match="NaN"):
        pair_distance_histogram(torch.full((2, 3), math.nan), labels_q, labels_g + 1)


def test_nan_between_positive_or_excluded_pairs_is_ignored():
    dist = torch.tensor([[math.nan, 1.0, 2.0]])
    out = pair_distance_histogram(dist, torch.tensor([0]), torch.tensor([0, 1, 1]))
    assert out.counts.tolist() == [0, 2, 0]


def test_op_fake_kernel_under_fake_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        dist = torch.empty(4, 5)
        labels_q, labels_g = torch.zeros(4, dtype=torch.long), torch.zeros(5, dtype=torch.long)
        out = pair_distance_histogram(dist, labels_q, labels_g, lower=0.0, upper=1.0, n_bins=8)
    assert [tuple(t.shape) for t in out[:3]] == [(10,), (10,), (10,)]
    assert out.collected.dtype == torch.float32 and out.positives.dtype == torch.float32


def test_opcheck():
    rng = np.random.default_rng(0)
    dist, ql, gl, (qid, gid), _ = sample_inputs(rng, torch.float32, "ties")
    args = (dist, ql, gl, qid, gid, None, None, 1.0, 3.0, 4, True, True)
    torch.library.opcheck(torch.ops.oml_fast._pair_distance_histogram.default, args)

