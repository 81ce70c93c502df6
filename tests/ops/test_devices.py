"""The numerically hostile cases of ``knn``, ``pairwise_distance`` and ``hard_mining`` on every device
(issue 14, item 4): ``cpu`` always, ``cuda`` when present (the ``cuda`` marker skips it otherwise), and on
CUDA also with TF32 allowed. Results equal the float64 reference twin: indices exactly, distances to a
stated tolerance.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import oml_fast
from oml_fast import reference
from oml_fast.ops import hard_mining, knn, pairwise_distance

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")
DEVICES = [
    pytest.param(("cpu", False), id="cpu"),
    pytest.param(("cuda", False), id="cuda", marks=pytest.mark.cuda),
    pytest.param(("cuda", True), id="cuda-tf32", marks=pytest.mark.cuda),
]


@contextlib.contextmanager
def tf32(allowed: bool):
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def run_knn(setting, queries, gallery, k, metric="euclidean", **keys):
    device, allow_tf32 = setting
    with tf32(allow_tf32):
        dist, idx = knn(
            queries.to(device), gallery.to(device), k, metric, **{n: t.to(device) for n, t in keys.items()}
        )
    assert dist.device.type == device
    return dist.cpu(), idx.cpu()


def expected_knn(queries, gallery, k, metric="euclidean", **keys):
    return reference.knn(queries.double(), gallery.double(), k, metric, **keys)


@pytest.mark.parametrize("setting", DEVICES)
@pytest.mark.parametrize("metric", METRICS)
def test_far_from_origin(setting, metric):
    """Offset 1000, noise 0.01, D = 16: the GEMM expansion loses every digit of the distances."""
    generator = torch.Generator().manual_seed(0)
    gallery = (1000 + 0.01 * torch.randn(2000, 16, generator=generator, dtype=torch.float64)).float()
    queries = (1000 + 0.01 * torch.randn(30, 16, generator=generator, dtype=torch.float64)).float()
    dist, idx = run_knn(setting, queries, gallery, 10, metric)
    ref_dist, ref_idx = expected_knn(queries, gallery, 10, metric)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist.double(), ref_dist, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("setting", DEVICES)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [5, 1100])
def test_duplicates_ties_and_exclusions(setting, metric, k):
    """Integer rows with many exact duplicates: ties go to the smaller index; k > 1024 too."""
    generator = torch.Generator().manual_seed(1)
    base = torch.randint(-2, 3, (12, 6), generator=generator).float()
    gallery = base[torch.randint(0, 12, (1500,), generator=generator)]
    queries = base[torch.randint(0, 12, (40,), generator=generator)]
    keys = {
        "query_ids": torch.arange(40),
        "gallery_ids": torch.arange(1500),
        "query_groups": torch.arange(40) % 5,
        "gallery_groups": torch.arange(1500) % 7,
    }
    dist, idx = run_knn(setting, queries, gallery, k, metric, **keys)
    ref_dist, ref_idx = expected_knn(queries, gallery, k, metric, **keys)
    torch.testing.assert_close(dist.double(), ref_dist, rtol=1e-6, atol=1e-6)
    if metric != "cosine":
        assert torch.equal(idx, ref_idx)  # every distance is exact on the integer grid
        return
    # The cosine divides: rows that are multiples of each other have equal cosines mathematically, which
    # two formulas may round apart. Same padding; where indices differ, the items are at equal distance.
    assert torch.equal(idx < 0, ref_idx < 0)
    full = reference.pairwise_distance(queries.double(), gallery.double(), "cosine")
    rows = torch.arange(len(queries))[:, None].expand_as(idx)
    valid = idx >= 0
    torch.testing.assert_close(full[rows[valid], idx[valid]], full[rows[valid], ref_idx[valid]])


@pytest.mark.parametrize("setting", DEVICES)
def test_zero_rows_under_cosine(setting):
    gallery = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [1e-30, 0.0]])
    queries = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1e-25, 0.0]])
    dist, idx = run_knn(setting, queries, gallery, 5, "cosine")
    ref_dist, ref_idx = expected_knn(queries, gallery, 5, "cosine")
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist.double(), ref_dist)


@pytest.mark.parametrize("setting", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(setting, dtype):
    generator = torch.Generator().manual_seed(2)
    gallery = torch.randn(600, 12, generator=generator).to(dtype)
    queries = torch.randn(20, 12, generator=generator).to(dtype)
    dist, idx = run_knn(setting, queries, gallery, 7)
    assert dist.dtype == torch.float32
    ref_dist, ref_idx = expected_knn(queries.float(), gallery.float(), 7)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist.double(), ref_dist, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("setting", DEVICES)
@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distance_hostile(setting, metric):
    device, allow_tf32 = setting
    generator = torch.Generator().manual_seed(3)
    x = (1000 + 0.01 * torch.randn(50, 16, generator=generator, dtype=torch.float64)).float()
    x[7] = 0
    x[8] = x[9]
    with tf32(allow_tf32):
        got = pairwise_distance(x.to(device), x.to(device), metric).cpu().double()
    want = reference.pairwise_distance(x.double(), x.double(), metric)
    if metric in ("euclidean", "sqeuclidean"):
        assert (got.diagonal() == 0).all() and got[8, 9] == 0
        # Entries recomputed from the differences where the expansion cancels: relative accuracy.
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6 * (1 if metric == "euclidean" else 1e3))
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-3 if metric == "dot" else 1e-6)


@pytest.mark.parametrize("setting", DEVICES)
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "dot"])  # exact keys on an integer grid
def test_hard_mining_duplicates_and_magnitudes(setting, metric):
    device, allow_tf32 = setting
    generator = torch.Generator().manual_seed(4)
    base = torch.randint(-3, 4, (10, 5), generator=generator).double()
    x = (base[torch.randint(0, 10, (80,), generator=generator)] * 2.0**40).float()
    labels = torch.randint(0, 4, (80,), generator=generator)
    with tf32(allow_tf32):
        got = hard_mining(x.to(device), labels.to(device), 2, 3, metric)
    want = reference.hard_mining(x.double(), labels, 2, 3, metric)
    assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])


# The ops of csrc/oml_fast.cpp (schemas defined in C++); Python-defined helpers such as _deferred_error are
# composite and run on every device.
COMPILED_OPS = (
    "pairwise_distance",
    "pairwise_distance.out",
    "_pairwise_distance_backward",
    "knn",
    "retrieval_relevance",
    "retrieval_metrics",
    "_pair_distance_histogram",
    "hard_mining",
)


@pytest.mark.parametrize("name", COMPILED_OPS)
def test_every_compiled_op_has_a_cuda_kernel(name):
    """A CUDA build has the real kernels; a CPU-only build registers one that explains (below)."""
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"oml_fast::{name}", "CUDA")


@pytest.mark.skipif(oml_fast.WITH_CUDA, reason="this library has its CUDA kernels")
def test_cpu_only_build_given_cuda_tensors_says_how_to_rebuild():
    """Dispatching to the CUDA kernel of a CPU-only build (what CUDA tensors do) names the fix, not the
    dispatcher's "Could not run ... with arguments from the 'CUDA' backend"."""
    cuda = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    x = torch.randn(4, 3)
    labels = torch.tensor([0, 0, 1, 1])
    calls = {
        "pairwise_distance": lambda: torch.ops.oml_fast.pairwise_distance.default.redispatch(
            cuda, x, x, "cosine"
        ),
        "knn": lambda: torch.ops.oml_fast.knn.default.redispatch(
            cuda, x, x, 2, "euclidean", None, None, None, None
        ),
        "hard_mining": lambda: torch.ops.oml_fast.hard_mining.default.redispatch(
            cuda, x, labels, 1, 1, "dot", None
        ),
    }
    for name, call in calls.items():
        with pytest.raises(NotImplementedError, match="rebuilt without CUDA: set FORCE_CUDA=1") as info:
            call()
        assert f"oml_fast::{name} got CUDA tensors" in str(info.value)
