"""What the CUDA kernels' GEMM screening computes, imitated on the host (csrc/common/distance_math.h):
shared by the host imitations of the CUDA selections (test_knn_cuda_selection.py,
test_mining_cuda_selection.py)."""

from __future__ import annotations

import torch


def round_mantissa(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` rounded to ``bits`` significant bits (11: TF32), as the tensor cores read float32 inputs."""
    mantissa, exponent = torch.frexp(x.double())
    return torch.ldexp(torch.round(mantissa * 2.0**bits) / 2.0**bits, exponent).to(x.dtype)


def error_factor(dim: int, mantissa_bits: int) -> float:
    """distance_math.h: error_factor(dim, gemm_unit_roundoff(bits))."""
    unit_roundoff = 2.0**-24 if mantissa_bits >= 24 else 2.0**-mantissa_bits
    return 2.5 * (dim + 8.0) * unit_roundoff


def ranking_terms(gallery: torch.Tensor, metric: str, alpha: float):
    """distance_math.h: ranking_coefficients -> (bias, scale, e_self, e_cross) per gallery item, float64."""
    norm = gallery.double().norm(dim=1)
    floor = (gallery.shape[1] + 2.0) * 2.0**-149 + 2.0**-126
    if metric in ("euclidean", "sqeuclidean"):
        return norm**2, torch.full_like(norm, -2.0), alpha * norm**2 + 2 * floor, 2 * alpha * norm
    if metric == "cosine":
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
        positive = norm > 0
        return (
            torch.zeros_like(norm),
            torch.where(positive, -1.0 / safe, torch.zeros_like(norm)),
            torch.where(positive, floor / safe, torch.zeros_like(norm)),
            torch.full_like(norm, alpha),
        )
    return torch.zeros_like(norm), torch.full_like(norm, -1.0), torch.full_like(norm, floor), alpha * norm


def order_by(keys: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Permutation sorting by (key, index), as the kernel's bitonic sort of (key, index) pairs."""
    by_index = torch.argsort(index)
    return by_index[torch.sort(keys[by_index], stable=True).indices]
