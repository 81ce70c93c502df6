"""hard_mining: compiled kernel vs the pure-PyTorch reference, properties, errors, opcheck, compile."""

from __future__ import annotations

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast.ops import hard_mining
from oml_fast.reference import hard_mining as hard_mining_ref

METRICS = ["euclidean", "sqeuclidean", "cosine", "dot"]
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def random_labels(generator: torch.Generator, batch: int, n_classes: int) -> torch.Tensor:
    return torch.randint(0, n_classes, (batch,), generator=generator)


def sample_inputs(device: str = "cpu", dtype: torch.dtype = torch.float64, batch: int = 37, dim: int = 5):
    g = torch.Generator().manual_seed(batch * 31 + dim)
    x = torch.randn(batch, dim, generator=g, dtype=dtype).to(device)
    labels = random_labels(g, batch, max(2, batch // 4)).to(device)
    return x, labels


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", range(12))
def test_matches_reference_on_random_label_sets(metric: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    batch = int(torch.randint(1, 90, (1,), generator=g))
    dim = int(torch.randint(1, 40, (1,), generator=g))
    n_classes = int(torch.randint(1, 12, (1,), generator=g))
    x = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    labels = random_labels(g, batch, n_classes)
    n_pos, n_neg = int(torch.randint(0, 6, (1,), generator=g)), int(torch.randint(0, 6, (1,), generator=g))
    mask = torch.rand(batch, generator=g) > 0.3 if seed % 2 else None
    got = hard_mining(x, labels, n_pos, n_neg, metric, mask)
    want = hard_mining_ref(x, labels, n_pos, n_neg, metric, mask)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)


@pytest.mark.parametrize("batch", [1, 2, 100, 700])  # 700 spans several tiles and both threads
def test_float32_selections_are_the_hardest(batch: int) -> None:
    """Property: the chosen positive is a farthest same-label item, the negative a nearest other one."""
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 16, generator=g)
    labels = random_labels(g, batch, max(1, batch // 5))
    pos, neg = hard_mining(x, labels, 3, 3)
    d = torch.cdist(x.double(), x.double())
    same = labels[:, None] == labels[None, :]
    for i in range(batch):
        cand_p = torch.nonzero(same[i] & (torch.arange(batch) != i)).flatten()
        cand_n = torch.nonzero(~same[i]).flatten()
        assert int((pos[i] >= 0).sum()) == min(3, len(cand_p))
        assert int((neg[i] >= 0).sum()) == min(3, len(cand_n))
        if len(cand_p):
            assert labels[pos[i, 0]] == labels[i] and pos[i, 0] != i
            assert d[i, pos[i, 0]] >= d[i, cand_p].max() - 1e-4
        if len(cand_n):
            assert labels[neg[i, 0]] != labels[i]
            assert d[i, neg[i, 0]] <= d[i, cand_n].min() + 1e-4
        valid_p = pos[i][pos[i] >= 0]
        assert torch.all(d[i, valid_p][:-1] >= d[i, valid_p][1:] - 1e-4)  # hardest first


def test_ties_and_duplicates_take_the_smaller_index() -> None:
    # Integer coordinates make every distance exact, so the ties are real ties for any summation order.
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 1, 0, 1, 1])
    pos, neg = hard_mining(x, labels, 2, 4)
    # Anchor 0: its only positive is the exact duplicate 3 (distance 0): it is a valid positive.
    assert pos[0].tolist() == [3, -1]
    # All four negatives are at distance 1: ascending indices.
    assert neg[0].tolist() == [1, 2, 4, 5]
    # Anchor 1: positives 4 (distance 2), then 2 and 5 tie at sqrt(2): smaller index first.
    assert pos[1].tolist() == [4, 2]
    assert neg[1].tolist() == [0, 3, -1, -1]
    want = hard_mining_ref(x, labels, 2, 4)
    assert torch.equal(pos, want[0]) and torch.equal(neg, want[1])


def test_single_class_and_singleton_labels() -> None:
    x, _ = sample_inputs(batch=6)
    pos, neg = hard_mining(x, torch.zeros(6, dtype=torch.long), 2, 2)
    assert (neg == -1).all() and (pos[:, :2] >= 0).all()
    pos, neg = hard_mining(x, torch.arange(6), 1, 1)  # every label has one item
    assert (pos == -1).all() and (neg >= 0).all()


def test_anchor_mask_rows_are_empty_but_still_candidates() -> None:
    x, labels = sample_inputs(batch=20)
    mask = torch.zeros(20, dtype=torch.bool)
    mask[:5] = True
    pos, neg = hard_mining(x, labels, 2, 2, anchor_mask=mask)
    assert (pos[5:] == -1).all() and (neg[5:] == -1).all()
    full = hard_mining(x, labels, 2, 2)
    assert torch.equal(pos[:5], full[0][:5]) and torch.equal(neg[:5], full[1][:5])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_embeddings_are_rejected(bad: float) -> None:
    """The op ranks by distance: a NaN / inf row would silently never be selected (issue 13)."""
    x = torch.tensor([[0.0], [1.0], [bad], [3.0], [4.0]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    message = (
        "`embeddings` contains NaN or inf values ([5, 1] float32 on cpu); hard_mining needs finite embeddings"
    )
    for fn in (hard_mining, hard_mining_ref):
        with pytest.raises(ValueError) as info:
            fn(x, labels, 3, 3)
        assert str(info.value) == message


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_dtypes_and_empty_outputs(dtype: torch.dtype) -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(6, 2).to(dtype)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    pos, neg = hard_mining(x, labels, 1, 1)
    assert pos.dtype == neg.dtype == torch.long
    assert pos.flatten().tolist() == [2, 0, 0, 5, 3, 3] and neg.flatten().tolist() == [3, 3, 3, 2, 2, 2]
    pos, neg = hard_mining(x, labels, 0, 0)
    assert pos.shape == (6, 0) and neg.shape == (6, 0)
    pos, neg = hard_mining(x[:0], labels[:0], 2, 1)
    assert pos.shape == (0, 2) and neg.shape == (0, 1)


def test_labels_of_other_integer_dtypes_and_non_contiguous_input() -> None:
    x, labels = sample_inputs(batch=30, dim=8)
    xt = torch.randn(8, 30, dtype=torch.float64).T  # non-contiguous
    for emb in (x, xt):
        want = hard_mining_ref(emb, labels, 2, 2)
        got = hard_mining(emb, labels.to(torch.int32), 2, 2)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_large_batch_without_bxb_memory() -> None:
    # 6000^2 fp32 would be 144 MB; the kernel only holds tiles. Checked against a blockwise reference.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6000, 32, generator=g)
    labels = torch.randint(0, 1500, (6000,), generator=g)
    pos, neg = hard_mining(x, labels, 1, 1)
    rows = torch.arange(0, 6000, 97)
    d = torch.cdist(x[rows].double(), x.double())
    same = labels[rows][:, None] == labels[None, :]
    same[torch.arange(len(rows)), rows] = False
    has_pos = same.any(1)
    best_p = d.masked_fill(~same, -1).amax(1)
    best_n = d.masked_fill(labels[rows][:, None] == labels[None, :], float("inf")).amin(1)
    torch.testing.assert_close(d[torch.arange(len(rows)), neg[rows, 0]], best_n, rtol=1e-5, atol=1e-5)
    got_p = d[torch.arange(len(rows)), pos[rows, 0].clamp_min(0)]
    torch.testing.assert_close(got_p[has_pos], best_p[has_pos], rtol=1e-5, atol=1e-5)
    assert (pos[rows, 0][~has_pos] == -1).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, y: hard_mining(x[0], y, 1, 1), "embeddings"),
        (lambda x, y: hard_mining(x.long(), y, 1, 1), "embeddings"),
        (lambda x, y: hard_mining(x, y[:-1], 1, 1), "labels"),
        (lambda x, y: hard_mining(x, y[:, None], 1, 1), "labels"),
        (lambda x, y: hard_mining(x, y, -1, 1), "n_positive"),
        (lambda x, y: hard_mining(x, y, 1, -2), "n_negative"),
        (lambda x, y: hard_mining(x, y, 1, 1, "manhattan"), "metric"),
        (lambda x, y: hard_mining(x, y, 1, 1, anchor_mask=torch.ones(len(y))), "anchor_mask"),
        (lambda x, y: hard_mining(x, y, 1, 1, anchor_mask=torch.ones(3, dtype=torch.bool)), "anchor_mask"),
    ],
)
def test_bad_input_names_the_argument(call, match: str) -> None:
    x, labels = sample_inputs(batch=8)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, labels)


def test_opcheck() -> None:
    x, labels = sample_inputs(batch=12, dtype=torch.float32)
    mask = torch.rand(12) > 0.5
    for args in [(x, labels, 2, 3, "euclidean", None), (x, labels, 1, 1, "cosine", mask)]:
        torch.library.opcheck(torch.ops.oml_fast.hard_mining.default, args)


def test_torch_compile_fullgraph() -> None:
    x, labels = sample_inputs(batch=16, dtype=torch.float32)

    @torch.compile(fullgraph=True, backend="eager")
    def mine(e: torch.Tensor, y: torch.Tensor):
        return torch.ops.oml_fast.hard_mining(e, y, 2, 2, "euclidean", None)

    got = mine(x, labels)
    want = hard_mining(x, labels, 2, 2)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(metric: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 24, generator=g, dtype=dtype)
    labels = torch.randint(0, 40, (300,), generator=g)
    mask = torch.rand(300, generator=g) > 0.2
    want = hard_mining(x, labels, 3, 4, metric, mask)
    got = hard_mining(x.cuda(), labels.cuda(), 3, 4, metric, mask.cuda())
    assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])


@pytest.mark.cuda
@requires_cuda
def test_cuda_ties_and_half() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 1, 0, 1, 1])
    want = hard_mining(x, labels, 2, 4)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        got = hard_mining(x.cuda().to(dtype), labels.cuda(), 2, 4)
        assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])
