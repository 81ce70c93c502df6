"""Every bad argument gets the same exception class and message from the eager op, the op under
``torch.compile(fullgraph=True)``, the fake kernel and the reference twin (oml_fast/ops/checks.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast import ops, reference
from oml_fast.ops import checks

X = torch.randn(4, 3)
G = torch.randn(6, 3)
LABELS = torch.tensor([0, 0, 1, 1])
RETRIEVED = torch.tensor([[0, 1], [2, -1]])
IS_RELEVANT = torch.zeros(2, 3, dtype=torch.bool)
N_GT = torch.tensor([1, 0])
N_RETRIEVED = torch.tensor([3, 0])
IDS_Q, IDS_G = torch.arange(4), torch.arange(6)


def distance(x1=X, x2=G, metric="euclidean"):
    return ("pairwise_distance", (x1, x2, metric))


def knn(queries=X, gallery=G, k=2, metric="euclidean", qid=None, gid=None, qgr=None, ggr=None):
    return ("knn", (queries, gallery, k, metric, qid, gid, qgr, ggr))


def relevance(retrieved=RETRIEVED, query_labels=LABELS[:2], gallery_labels=IDS_G, qid=None, gid=None):
    return ("retrieval_relevance", (retrieved, query_labels, gallery_labels, qid, gid, None, None))


def metrics(is_relevant=IS_RELEVANT, n_gt=N_GT, n_retrieved=N_RETRIEVED, cmc=(1,), precision=(1,), map_=(1,)):
    return ("retrieval_metrics", (is_relevant, n_gt, n_retrieved, cmc, precision, map_))


def mining(embeddings=X, labels=LABELS, n_positive=1, n_negative=1, metric="euclidean", anchor_mask=None):
    return ("hard_mining", (embeddings, labels, n_positive, n_negative, metric, anchor_mask))


# (case, expected class, expected message). Messages are written out in full: they are the contract shared
# by csrc/ and oml_fast/ops/checks.py.
CASES: list[tuple[tuple[str, tuple], type[Exception], str]] = [
    # pairwise_distance
    (
        distance(metric="manhattan"),
        ValueError,
        "`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot', got 'manhattan'",
    ),
    (distance(x1=torch.randn(3)), ValueError, "`x1` must be a 2-D tensor [N, D], got [3] float32 on cpu"),
    (
        distance(x2=torch.randn(2, 3, 3)),
        ValueError,
        "`x2` must be a 2-D tensor [N, D], got [2, 3, 3] float32 on cpu",
    ),
    (
        distance(x1=X.long(), x2=G.long()),
        TypeError,
        "`x1` must be float32, float64, float16 or bfloat16, got [4, 3] int64 on cpu",
    ),
    (
        distance(x2=G.double()),
        TypeError,
        "`x1` and `x2` must have the same dtype, got [4, 3] float32 on cpu and [6, 3] float64 on cpu",
    ),
    (
        distance(x2=torch.randn(6, 5)),
        ValueError,
        "`x1` and `x2` must have the same number of columns D, got [4, 3] float32 on cpu and [6, 5] float32 on cpu",
    ),
    # knn
    (knn(k=0), ValueError, "`k` must be a positive integer, got 0"),
    (
        knn(metric="l1"),
        ValueError,
        "`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot', got 'l1'",
    ),
    (knn(queries=X[0]), ValueError, "`queries` must be a 2-D tensor [N, D], got [3] float32 on cpu"),
    (
        knn(gallery=G.int()),
        TypeError,
        "`gallery` must be float32, float64, float16 or bfloat16, got [6, 3] int32 on cpu",
    ),
    (
        knn(gallery=G.half()),
        TypeError,
        "`queries` and `gallery` must have the same dtype, got [4, 3] float32 on cpu and [6, 3] float16 on cpu",
    ),
    (
        knn(qid=IDS_Q),
        ValueError,
        "`query_ids` and `gallery_ids` must be given together (or both omitted), got only `query_ids`",
    ),
    (
        knn(ggr=IDS_G),
        ValueError,
        "`query_groups` and `gallery_groups` must be given together (or both omitted), got only `gallery_groups`",
    ),
    (
        knn(qid=IDS_Q[:3], gid=IDS_G),
        ValueError,
        "`query_ids` must be a 1-D tensor of length 4, got [3] int64 on cpu",
    ),
    (knn(qid=IDS_Q, gid=IDS_G.float()), TypeError, "`gallery_ids` must be int64, got [6] float32 on cpu"),
    (
        knn(qgr=IDS_Q[:, None], ggr=IDS_G),
        ValueError,
        "`query_groups` must be a 1-D tensor of length 4, got [4, 1] int64 on cpu",
    ),
    (
        knn(queries=X.index_fill(0, torch.tensor([1]), float("nan"))),
        ValueError,
        "`queries` contains NaN or inf values ([4, 3] float32 on cpu); knn needs finite embeddings",
    ),
    (
        knn(gallery=G.index_fill(0, torch.tensor([5]), float("inf"))),
        ValueError,
        "`gallery` contains NaN or inf values ([6, 3] float32 on cpu); knn needs finite embeddings",
    ),
    # retrieval_relevance
    (
        relevance(retrieved=RETRIEVED[0]),
        ValueError,
        "`retrieved` must be a 2-D tensor [Nq, k], got [2] int64 on cpu",
    ),
    (
        relevance(retrieved=RETRIEVED.float()),
        TypeError,
        "`retrieved` must be int64, got [2, 2] float32 on cpu",
    ),
    (
        relevance(query_labels=LABELS),
        ValueError,
        "`query_labels` must be a 1-D tensor of length 2, got [4] int64 on cpu",
    ),
    (
        relevance(query_labels=LABELS[:2].float()),
        TypeError,
        "`query_labels` must be int64, got [2] float32 on cpu",
    ),
    (
        relevance(gallery_labels=IDS_G[None]),
        ValueError,
        "`gallery_labels` must be a 1-D tensor [Ng], got [1, 6] int64 on cpu",
    ),
    (
        relevance(gid=IDS_G),
        ValueError,
        "`query_ids` and `gallery_ids` must be given together (or both omitted), got only `gallery_ids`",
    ),
    (
        relevance(qid=IDS_Q[:2], gid=IDS_G[:2]),
        ValueError,
        "`gallery_ids` must be a 1-D tensor of length 6, got [2] int64 on cpu",
    ),
    (
        relevance(retrieved=torch.tensor([[0, 7], [1, 2]])),
        IndexError,
        "`retrieved` must hold gallery indices in [0, 6) or -1 for padding, got 7",
    ),
    (
        relevance(retrieved=torch.tensor([[0, 1], [-2, 2]])),
        IndexError,
        "`retrieved` must hold gallery indices in [0, 6) or -1 for padding, got -2",
    ),
    # retrieval_metrics
    (
        metrics(is_relevant=IS_RELEVANT[0]),
        ValueError,
        "`is_relevant` must be a 2-D tensor [Nq, K], got [3] bool on cpu",
    ),
    (
        metrics(is_relevant=IS_RELEVANT.float()),
        TypeError,
        "`is_relevant` must be bool, got [2, 3] float32 on cpu",
    ),
    (metrics(n_gt=N_GT.float()), TypeError, "`n_gt` must be int64, got [2] float32 on cpu"),
    (
        metrics(n_retrieved=N_RETRIEVED[:1]),
        ValueError,
        "`n_retrieved` must be a 1-D tensor of length 2, got [1] int64 on cpu",
    ),
    (metrics(cmc=()), ValueError, "`cmc_top_k` must be a non-empty sequence of positive integers, got []"),
    (
        metrics(precision=(0,)),
        ValueError,
        "`precision_top_k` must be a non-empty sequence of positive integers, got [0]",
    ),
    (
        metrics(map_=[2, -1]),
        ValueError,
        "`map_top_k` must be a non-empty sequence of positive integers, got [2, -1]",
    ),
    (
        metrics(n_retrieved=torch.tensor([4, 0])),
        ValueError,
        "`n_retrieved` must be in [0, 3] (the width of `is_relevant`), got 4 for query 0",
    ),
    (metrics(n_gt=torch.tensor([1, -1])), ValueError, "`n_gt` must be non-negative, got -1 for query 1"),
    (  # every n_retrieved is checked before any n_gt
        metrics(n_gt=torch.tensor([-1, 0]), n_retrieved=torch.tensor([3, 5])),
        ValueError,
        "`n_retrieved` must be in [0, 3] (the width of `is_relevant`), got 5 for query 1",
    ),
    (  # more relevant items retrieved than exist (issue 13: precision > 1 otherwise)
        metrics(is_relevant=torch.tensor([[True, True, False], [False, False, False]])),
        ValueError,
        "`n_gt` must be at least the number of relevant retrieved items, got 1 with 2 relevant retrieved "
        "for query 0",
    ),
    (  # the first bad entry in row-major order
        relevance(retrieved=torch.tensor([[0, 9], [-3, 1]])),
        IndexError,
        "`retrieved` must hold gallery indices in [0, 6) or -1 for padding, got 9",
    ),
    # hard_mining
    (mining(embeddings=X[0]), ValueError, "`embeddings` must be a 2-D tensor [N, D], got [3] float32 on cpu"),
    (
        mining(embeddings=X.long()),
        TypeError,
        "`embeddings` must be float32, float64, float16 or bfloat16, got [4, 3] int64 on cpu",
    ),
    (
        mining(labels=LABELS[:3]),
        ValueError,
        "`labels` must be a 1-D tensor of length 4, got [3] int64 on cpu",
    ),
    (mining(labels=LABELS.float()), TypeError, "`labels` must be int64, got [4] float32 on cpu"),
    (mining(n_positive=-1), ValueError, "`n_positive` must be >= 0, got -1"),
    (mining(n_negative=-2), ValueError, "`n_negative` must be >= 0, got -2"),
    (  # checked before the [B, n_positive] output is allocated (issue 13)
        mining(n_positive=2**40),
        ValueError,
        "`n_positive` must be at most max(B, 65536) = 65536 (an anchor has at most B - 1 positives), "
        "got 1099511627776",
    ),
    (
        mining(n_negative=65537),
        ValueError,
        "`n_negative` must be at most max(B, 65536) = 65536 (an anchor has at most B - 1 negatives), got 65537",
    ),
    (
        mining(embeddings=torch.tensor([[0.0], [float("inf")], [1.0], [2.0]])),
        ValueError,
        "`embeddings` contains NaN or inf values ([4, 1] float32 on cpu); hard_mining needs finite embeddings",
    ),
    (
        mining(metric="l2"),
        ValueError,
        "`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot', got 'l2'",
    ),
    (
        mining(anchor_mask=torch.ones(3, dtype=torch.bool)),
        ValueError,
        "`anchor_mask` must be a 1-D tensor of length 4, got [3] bool on cpu",
    ),
    (mining(anchor_mask=torch.ones(4)), TypeError, "`anchor_mask` must be bool, got [4] float32 on cpu"),
]

# Checks that read tensor values: a fake kernel cannot make them.
DATA_DEPENDENT = ("NaN or inf", "gallery indices", "for query")


def case_id(case: tuple) -> str:
    (op_name, _), error, message = case
    return f"{op_name}-{error.__name__}-{message[:40]}"


def call_wrapper(op_name: str, args: tuple) -> Any:
    return getattr(ops, op_name)(*args)


def raised(fn: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_eager_op_and_reference(case) -> None:
    (op_name, args), error, message = case
    for fn in (
        lambda: call_wrapper(op_name, args),
        lambda: getattr(torch.ops.oml_fast, op_name).default(
            *(list(a) if isinstance(a, tuple) else a for a in args)
        ),
        lambda: getattr(reference, op_name)(*args),
    ):
        exc = raised(fn)
        assert type(exc) is error, (type(exc), exc)
        assert str(exc) == message


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_compiled(case) -> None:
    (op_name, args), error, message = case
    torch._dynamo.reset()
    compiled = torch.compile(lambda *a: call_wrapper(op_name, a), fullgraph=True, backend="aot_eager")
    exc = raised(lambda: compiled(*args))
    assert type(exc) is error, (type(exc), exc)
    assert str(exc) == message


INDUCTOR_CASES = [
    distance(x1=torch.randn(3)),
    distance(x2=G.double()),
    knn(k=0),
    knn(qid=IDS_Q, gid=IDS_G.float()),
    relevance(retrieved=torch.tensor([[0, 7], [1, 2]])),
    metrics(n_gt=torch.tensor([1, -1])),
    metrics(precision=(1.5,)),
    mining(n_positive=-1),
]


@pytest.mark.parametrize("op_call", INDUCTOR_CASES, ids=lambda c: c[0])
def test_compiled_inductor(op_call) -> None:
    """Inductor too: the op stays in the graph (its outputs are used) and raises what eager raises."""
    op_name, args = op_call
    eager = raised(lambda: call_wrapper(op_name, args))
    torch._dynamo.reset()
    compiled = torch.compile(lambda *a: [t + 1 for t in call_wrapper(op_name, a)], fullgraph=True)
    exc = raised(lambda: compiled(*args))
    assert type(exc) is type(eager) and str(exc) == str(eager)


@pytest.mark.parametrize(
    "case", [c for c in CASES if not any(s in c[2] for s in DATA_DEPENDENT)], ids=case_id
)
def test_fake_kernel_outside_compile(case) -> None:
    """Fake tensors outside Dynamo (make_fx, meta shape propagation) are checked by the fake kernel."""
    (op_name, args), error, message = case
    mode = FakeTensorMode()
    fake_args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args)
    with mode:
        exc = raised(lambda: call_wrapper(op_name, fake_args))
    assert type(exc) is error, (type(exc), exc)
    assert str(exc) == message


@pytest.mark.parametrize("bad", [(1.5,), (True,), ("1",), [np.float32(1)]])
def test_top_k_entries_the_schema_cannot_carry(bad) -> None:
    """Non-integer entries are checked by the wrapper (the ``int[]`` schema cannot carry them); under
    torch.compile the wrapper defers the error to the graph's run, so the class is the same (numpy
    scalars excepted: Dynamo cannot trace the message built from them)."""
    message = f"`precision_top_k` must be a non-empty sequence of positive integers, got {list(bad)}"
    torch._dynamo.reset()
    compiled = torch.compile(ops.retrieval_metrics, fullgraph=True, backend="aot_eager")
    with_numpy = isinstance(bad[0], np.generic)
    for fn in (ops.retrieval_metrics, reference.retrieval_metrics, *(() if with_numpy else (compiled,))):
        exc = raised(lambda: fn(IS_RELEVANT, N_GT, N_RETRIEVED, [1], bad, [1]))  # noqa: B023
        assert type(exc) is ValueError and str(exc) == message, (fn, exc)


def test_top_k_accepts_numpy_integers() -> None:
    assert checks.check_top_k("cmc_top_k", np.array([1, 5])) == (1, 5)
    assert checks.check_top_k("cmc_top_k", 3) == (3,)


# ----- labels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        [3, 1, 3],
        (3, 1, 3),
        np.array([3, 1, 3]),
        np.array([3, 1, 3], dtype=np.uint8),
        torch.tensor([3, 1, 3]),
        torch.tensor([[3], [1], [3]]),
        torch.tensor([3, 1, 3], dtype=torch.int32),
        [3.0, 1.0, 3.0],
        np.array([3.0, 1.0, 3.0]),
        torch.tensor([3.0, 1.0, 3.0], dtype=torch.float16),
    ],
)
def test_labels_to_tensor_accepts(labels) -> None:
    out = checks.labels_to_tensor(labels)
    assert out.dtype == torch.int64 and out.tolist() == [3, 1, 3]


def test_labels_to_tensor_empty_and_device() -> None:
    assert checks.labels_to_tensor([]).dtype == torch.int64
    assert checks.labels_to_tensor(np.array([1, 2]), device="meta").device.type == "meta"


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (["a", "b"], TypeError, "`labels` must be integers, got strings; map them to integer ids first"),
        (
            np.array(["a", "b"]),
            TypeError,
            "`labels` must be integers, got strings (numpy dtype <U1); map them to integer ids first",
        ),
        ([0.5, 1.0], ValueError, "`labels` must hold integers, got 0.5 at position 0"),
        (torch.tensor([1.0, float("nan")]), ValueError, "`labels` must hold integers, got nan at position 1"),
        (torch.tensor([True, False]), TypeError, "`labels` must be integers, got [2] bool on cpu"),
        (
            torch.zeros(2, 2, dtype=torch.long),
            ValueError,
            "`labels` must be a 1-D tensor [N] (or [N, 1]), got [2, 2] int64 on cpu",
        ),
        (torch.tensor(3), ValueError, "`labels` must be a 1-D tensor [N] (or [N, 1]), got [] int64 on cpu"),
        (torch.tensor([1e20]), ValueError, "`labels` values must fit in int64, got [1] float32 on cpu"),
        (
            np.array([2**64 - 1], dtype=np.uint64),
            ValueError,
            "`labels` values must fit in int64, got values >= 2**63 ([1] uint64 on cpu)",
        ),
    ],
)
def test_labels_to_tensor_rejects(labels, error, message) -> None:
    exc = raised(lambda: checks.labels_to_tensor(labels))
    assert type(exc) is error and str(exc) == message


def test_labels_to_tensor_rejects_python_ints_beyond_int64() -> None:
    exc = raised(lambda: checks.labels_to_tensor([2**70, 1]))
    assert type(exc) is ValueError and str(exc).startswith("`labels` values must fit in int64")


# ----- the CPU half-precision policy -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", checks.METRICS)
def test_half_on_cpu_is_upcast(dtype, metric) -> None:
    x1, x2 = torch.randn(5, 8).to(dtype), torch.randn(7, 8).to(dtype)
    dist = ops.pairwise_distance(x1, x2, metric)
    assert dist.dtype == dtype  # distances in the input dtype
    expected = ops.pairwise_distance(x1.float(), x2.float(), metric).to(dtype)
    torch.testing.assert_close(dist, expected)
    torch.testing.assert_close(reference.pairwise_distance(x1, x2, metric), expected, atol=2e-2, rtol=2e-2)
    knn_dist, knn_idx = ops.knn(x1, x2, 3, metric)
    assert knn_dist.dtype == torch.float32  # knn: float32 distances for half inputs (documented)
    ref_dist, ref_idx = ops.knn(x1.float(), x2.float(), 3, metric)
    assert torch.equal(knn_idx, ref_idx)
    pos, neg = ops.hard_mining(torch.cat([x1, x2]), torch.arange(12) % 3, 1, 1, metric)
    assert pos.shape == neg.shape == (12, 1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_gradient_on_cpu(dtype) -> None:
    x1 = torch.randn(5, 8).to(dtype).requires_grad_()
    x2 = torch.randn(7, 8).to(dtype).requires_grad_()
    ops.pairwise_distance(x1, x2).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    assert x1.grad.dtype == dtype and x2.grad.dtype == dtype
    a, b = x1.detach().float().requires_grad_(), x2.detach().float().requires_grad_()
    ops.pairwise_distance(a, b).sum().backward()
    assert a.grad is not None and b.grad is not None
    torch.testing.assert_close(x1.grad.float(), a.grad, atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(x2.grad.float(), b.grad, atol=5e-2, rtol=5e-2)


def test_half_opcheck_on_cpu() -> None:
    x1, x2 = torch.randn(5, 8).half(), torch.randn(7, 8).half()
    torch.library.opcheck(torch.ops.oml_fast.pairwise_distance.default, (x1, x2, "euclidean"))
    torch.library.opcheck(
        torch.ops.oml_fast.knn.default,
        (x1, x2, 3, "cosine", None, None, None, None),
        test_utils="test_faketensor",
    )
