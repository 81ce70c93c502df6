"""The private ``_triplet_distances`` op (the triplet losses' distances, read from the batch): CPU kernel
vs its pure-PyTorch twin and the composite kernel, gradients (gradcheck in float64), opcheck, errors."""

from __future__ import annotations

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast.reference.mining import triplet_distances as triplet_distances_ref

op = torch.ops.oml_fast._triplet_distances.default


def random_triplets(seed: int, batch: int, dim: int, n: int | None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=g, dtype=dtype)
    n_triplets = batch if n is None else n
    anchors = None if n is None else torch.randint(0, batch, (n,), generator=g)
    positives = torch.randint(0, batch, (n_triplets,), generator=g)
    negatives = torch.randint(0, batch, (n_triplets,), generator=g)
    return x, anchors, positives, negatives


@pytest.mark.parametrize("n", [None, 1, 7, 300])
@pytest.mark.parametrize("dim", [1, 3, 64, 130])  # 130: several column tasks of the backward
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_match_the_reference(n, dim: int, dtype: torch.dtype) -> None:
    x, anchors, positives, negatives = random_triplets(dim + (n or 0), 50, dim, n, dtype)
    x[3] = x[4]  # a zero distance wherever 3 and 4 meet: gradient 0
    mine, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    got = op(mine, anchors, positives, negatives)
    want = triplet_distances_ref(ref, anchors, positives, negatives)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(got, want, **tol)
    weights = torch.randn(2, len(positives), dtype=dtype, generator=torch.Generator().manual_seed(1))
    (got[0] * weights[0] + got[1] * weights[1]).sum().backward()
    (want[0] * weights[0] + want[1] * weights[1]).sum().backward()
    torch.testing.assert_close(mine.grad, ref.grad.nan_to_num(0.0), **tol)


@pytest.mark.parametrize("check", [torch.autograd.gradcheck, torch.autograd.gradgradcheck])
@pytest.mark.parametrize("n", [15, None])
def test_first_and_second_derivatives_float64(check, n) -> None:
    """gradgradcheck: backward(create_graph=True) runs the formula in differentiable ops, so second
    derivatives are right too (the fused backward op has no derivative of its own)."""
    x, anchors, positives, negatives = random_triplets(6, 9, 4, n)
    assert check(lambda t: op(t, anchors, positives, negatives), (x.requires_grad_(),))


def test_one_output_used_and_half_inputs() -> None:
    x, anchors, positives, negatives = random_triplets(2, 30, 8, 40)
    x.requires_grad_()
    op(x, anchors, positives, negatives)[1].sum().backward()
    assert torch.isfinite(x.grad).all()
    # float16 / bfloat16 go through the composite kernel: the twin's values in that dtype.
    for dtype in (torch.float16, torch.bfloat16):
        h = x.detach().to(dtype)
        got = op(h, anchors, positives, negatives)
        want = triplet_distances_ref(h.float(), anchors, positives, negatives)
        assert got[0].dtype == dtype
        torch.testing.assert_close(got[0].float(), want[0], rtol=2e-2, atol=2e-2)


def test_cpu_kernel_equals_the_composite_kernel() -> None:
    x, anchors, positives, negatives = random_triplets(3, 40, 33, 64)
    composite = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    got = op(x, anchors, positives, negatives)
    want = op.redispatch(composite, x, anchors, positives, negatives)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grads = (torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64))
    backward = torch.ops.oml_fast._triplet_distances_backward.default
    got_grad = backward(*grads, x, anchors, positives, negatives, *got)
    want_grad = backward.redispatch(composite, *grads, x, anchors, positives, negatives, *got)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)


def test_opcheck() -> None:
    x, anchors, positives, negatives = random_triplets(4, 10, 4, 6)
    torch.library.opcheck(op, (x.requires_grad_(), anchors, positives, negatives))
    x2, _, p2, n2 = random_triplets(5, 10, 4, None)
    torch.library.opcheck(op, (x2.requires_grad_(), None, p2, n2))


@pytest.mark.parametrize(
    "args, error, match",
    [
        (
            (torch.randn(4), None, torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)),
            ValueError,
            "embeddings",
        ),
        (
            (torch.randn(4, 2), None, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)),
            ValueError,
            "one triplet per row",
        ),
        (
            (torch.randn(4, 2), None, torch.zeros(4, dtype=torch.long), torch.zeros(3, dtype=torch.long)),
            ValueError,
            "negatives",
        ),
        ((torch.randn(4, 2), None, torch.zeros(4), torch.zeros(4, dtype=torch.long)), TypeError, "positives"),
        (
            (torch.randn(4, 2), None, torch.tensor([0, 1, 2, 4]), torch.zeros(4, dtype=torch.long)),
            IndexError,
            "positives",
        ),
        (
            (torch.randn(4, 2), torch.tensor([-1]), torch.tensor([0]), torch.tensor([1])),
            IndexError,
            "anchors",
        ),
        (
            (
                torch.randn(4, 2, dtype=torch.float64).long(),
                None,
                torch.zeros(4, dtype=torch.long),
                torch.zeros(4, dtype=torch.long),
            ),
            TypeError,
            "floating",
        ),
    ],
)
def test_bad_input_names_the_argument(args, error, match: str) -> None:
    with pytest.raises(error, match=match):
        op(*args)
