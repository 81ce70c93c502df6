"""``pairwise_distance``: typed wrapper, fake kernel and autograd formula of the compiled op."""

from __future__ import annotations

import torch
from torch import Tensor

from . import checks

__all__ = ["pairwise_distance", "pairwise_distance_out"]


def pairwise_distance(x1: Tensor, x2: Tensor, metric: str = "euclidean") -> Tensor:
    """Distances between every row of ``x1`` and every row of ``x2`` (smaller is closer).

    Args:
        x1 (Tensor[N, D]): float32, float64, float16 or bfloat16. Half precision is computed in float32
            (on the CPU the inputs are upcast, on CUDA the accumulation is float32) and the result is
            returned in the input dtype.
        x2 (Tensor[M, D]): same dtype and device as ``x1``.
        metric: ``"euclidean"`` (default, ``|a - b|``), ``"sqeuclidean"`` (``|a - b|^2``),
            ``"cosine"`` (``1 - cos(a, b)``; the cosine with an all-zero vector is 0) or ``"dot"``
            (``-<a, b>``).

    Magnitudes: right from 1e-20 to 1e18 in float32 and to 1e150 in float64 -- data far from 1 is scaled
    by a power of two before anything is squared, and the result scaled back (a result beyond the dtype,
    e.g. ``|a - b|^2`` of 1e20 rows in float32, is ``inf``, never NaN).

    Returns:
        Tensor[N, M] of the input dtype. Identical rows give exactly 0 for the euclidean metrics:
        entries that are small relative to the norms are recomputed from the differences rather than
        taken from the GEMM expansion ``|a|^2 + |b|^2 - 2<a, b>``. Empty inputs give an empty output.

    Differentiable in ``x1`` and ``x2`` (half precision too: gradients in the input dtype); the euclidean
    gradient at zero distance is 0 (no NaN). Not twice differentiable: ``backward(create_graph=True)``
    raises ``NotImplementedError`` (never a silently zero second derivative). NaN or inf inputs propagate to the entries they touch.

    Raises ``ValueError`` (metric, shapes, devices) or ``TypeError`` (dtypes), in eager mode and under
    ``torch.compile`` alike (messages: :mod:`oml_fast.ops.checks`).

    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> pairwise_distance(x, x)
    tensor([[0., 5.],
            [5., 0.]])
    >>> pairwise_distance(x, x, "sqeuclidean")[0, 1].item()
    25.0
    """
    return torch.ops.oml_fast.pairwise_distance.default(x1, x2, metric)


def pairwise_distance_out(x1: Tensor, x2: Tensor, metric: str = "euclidean", *, out: Tensor) -> Tensor:
    """:func:`pairwise_distance` written into ``out`` (Tensor[N, M], x1's dtype and device, contiguous).

    The same values as ``pairwise_distance(x1, x2, metric)``, without allocating the output: a caller
    that streams tiles (FNMR@FMR over all pairs) reuses one buffer. Not differentiable.

    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> buffer = torch.empty(2, 2)
    >>> pairwise_distance_out(x[1:], x, out=buffer[:1])
    tensor([[5., 0.]])
    """
    return torch.ops.oml_fast.pairwise_distance.out(x1, x2, metric, out=out)


@torch.library.register_fake("oml_fast::pairwise_distance.out")
def _pairwise_distance_out_fake(x1: Tensor, x2: Tensor, metric: str = "euclidean", *, out: Tensor) -> Tensor:
    if not checks.checks_deferred():
        checks.check_pairwise_distance_inputs(x1, x2, metric)
    return out


@torch.library.register_fake("oml_fast::pairwise_distance")
def _pairwise_distance_fake(x1: Tensor, x2: Tensor, metric: str = "euclidean") -> Tensor:
    # Under torch.compile the checks are left to the real kernel (see checks.checks_deferred), so the
    # output shape must not assume valid input.
    if not checks.checks_deferred():
        checks.check_pairwise_distance_inputs(x1, x2, metric)
    return x1.new_empty((_rows(x1), _rows(x2)))


def _rows(t: Tensor) -> int:
    return t.shape[0] if t.dim() > 0 else 0


@torch.library.register_fake("oml_fast::_pairwise_distance_backward")
def _pairwise_distance_backward_fake(
    grad: Tensor, x1: Tensor, x2: Tensor, dist: Tensor, metric: str
) -> tuple[Tensor, Tensor]:
    return torch.empty_like(x1), torch.empty_like(x2)


def _setup_context(ctx, inputs, output) -> None:
    x1, x2, metric = inputs
    ctx.save_for_backward(x1, x2, output)
    ctx.metric = metric


def _backward(ctx, grad: Tensor):
    if torch.is_grad_enabled():
        # backward(create_graph=True): the fused backward op has no derivative of its own, so a second
        # derivative would silently come out as zero. Say so instead.
        raise NotImplementedError(
            "double backward through oml_fast pairwise_distance is not supported (the gradient is computed "
            "by a fused op that is not differentiable); use torch.cdist or oml_fast.reference.pairwise_distance "
            "where second derivatives are needed"
        )
    x1, x2, dist = ctx.saved_tensors
    grad_x1, grad_x2 = torch.ops.oml_fast._pairwise_distance_backward.default(
        grad.contiguous(), x1, x2, dist, ctx.metric
    )
    return grad_x1, grad_x2, None


torch.library.register_autograd("oml_fast::pairwise_distance", _backward, setup_context=_setup_context)
