"""Pure-PyTorch twin of ``oml_fast.ops.pairwise_distance``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops import checks

METRICS = checks.METRICS

# Norms below this are treated as zero by the cosine metric (the cosine with a zero vector is 0). Rows
# are scaled to a largest |entry| of 1 before their norm is taken, so only an all-zero row is zero.
COSINE_EPS = 1e-12

# Data whose largest |entry| lies outside [2**-e, 2**e] (e = 20 for float32, 200 for float64) is scaled
# by a power of two before anything is squared (csrc/common/distance_math.h, same rule).
SAFE_EXPONENT = {torch.float32: 20, torch.float64: 200}


def scale_exponent(*tensors: Tensor) -> int:
    """The power of two that brings the largest ``|entry|`` of ``tensors`` into ``[1, 2)``, or 0 when it
    already lies in the safe range of their dtype (or is 0 / not finite)."""
    largest = max((float(t.abs().max()) for t in tensors if t.numel()), default=0.0)
    if not (largest > 0 and math.isfinite(largest)):
        return 0
    exponent = math.frexp(largest)[1] - 1  # largest = m * 2**exponent, m in [1, 2)
    safe = SAFE_EXPONENT[tensors[0].dtype]
    return 0 if -safe <= exponent < safe else -exponent


def scale_by_pow2(x: Tensor, exponent: int) -> Tensor:
    """``x * 2**exponent`` in steps whose factor stays representable in float32."""
    while exponent:
        step = max(-100, min(100, exponent))
        x = x * 2.0**step
        exponent -= step
    return x


def unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit length (an all-zero row stays zero), whatever their magnitude."""
    row_max = x.abs().amax(dim=1, keepdim=True)
    y = x / torch.where(row_max > 0, row_max, torch.ones_like(row_max))
    return y / y.norm(dim=1, keepdim=True).clamp_min(COSINE_EPS)


def pairwise_distance(x1: Tensor, x2: Tensor, metric: str = "euclidean") -> Tensor:
    """Distances between every row of ``x1`` and every row of ``x2``, smaller is closer.

    Args:
        x1 (Tensor[N, D]), x2 (Tensor[M, D]): float32, float64, float16 or bfloat16 embeddings (half
            precision computed in float32), same dtype and device.
        metric: ``euclidean`` (``|a - b|``), ``sqeuclidean`` (``|a - b|^2``), ``cosine``
            (``1 - cos(a, b)``, with ``cos = 0`` when a vector is zero) or ``dot`` (``-<a, b>``).

    Returns:
        Tensor[N, M] of the input dtype.

    >>> pairwise_distance(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[5., 0.]])
    """
    checks.check_pairwise_distance_inputs(x1, x2, metric)
    compute_dtype = torch.float64 if x1.dtype == torch.float64 else torch.float32
    a, b = x1.to(compute_dtype), x2.to(compute_dtype)
    if metric == "cosine":
        # Elementwise products (not a GEMM, whose rounding may depend on the position in the output):
        # equal rows give bitwise equal values, for every metric.
        return (1 - _pairwise_sum(unit_rows(a), unit_rows(b), lambda u, v: u * v)).clamp(0, 2).to(x1.dtype)
    exponent = scale_exponent(a, b)
    a, b = scale_by_pow2(a, exponent), scale_by_pow2(b, exponent)
    if metric == "dot":
        dist = -_pairwise_sum(a, b, lambda u, v: u * v)
    else:
        # Direct differences: exact for identical rows, no GEMM-expansion cancellation.
        squared = _pairwise_sum(a, b, lambda u, v: (u - v) ** 2)
        dist = squared if metric == "sqeuclidean" else squared.sqrt()
    return scale_by_pow2(dist, -exponent if metric == "euclidean" else -2 * exponent).to(x1.dtype)


def _pairwise_sum(a: Tensor, b: Tensor, term) -> Tensor:
    """``[N, M]``: ``term(a_i, b_j).sum()`` for every pair, in row chunks that keep the ``[rows, M, D]``
    intermediate small."""
    rows = max(1, (1 << 24) // max(1, b.shape[0] * b.shape[1]))
    parts = [term(a[i : i + rows, None, :], b[None, :, :]).sum(-1) for i in range(0, a.shape[0], rows)]
    return torch.cat(parts) if parts else a.new_zeros(0, b.shape[0])
