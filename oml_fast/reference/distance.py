"""Pure-PyTorch twin of ``oml_fast.ops.pairwise_distance``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops import checks

METRICS = checks.METRICS

# Norms below this are treated as zero by the cosine metric (the cosine with a zero vector is 0).
COSINE_EPS = 1e-12


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
    if metric == "dot":
        dist = -(a @ b.T)
    elif metric == "cosine":
        a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(COSINE_EPS)
        b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(COSINE_EPS)
        dist = (1 - a_unit @ b_unit.T).clamp(0, 2)
    else:
        # Direct differences: exact for identical rows, no GEMM-expansion cancellation.
        # Row chunks keep the [rows, M, D] difference tensor small.
        rows = max(1, (1 << 24) // max(1, b.shape[0] * b.shape[1]))
        parts = [
            ((a[i : i + rows, None, :] - b[None, :, :]) ** 2).sum(-1) for i in range(0, a.shape[0], rows)
        ]
        squared = torch.cat(parts) if parts else a.new_zeros(0, b.shape[0])
        dist = squared if metric == "sqeuclidean" else squared.sqrt()
    return dist.to(x1.dtype)
