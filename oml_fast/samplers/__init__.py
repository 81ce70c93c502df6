"""Batch samplers for ``DataLoader(batch_sampler=...)`` (OML names and semantics, seedable)."""

from .balance import BalanceSampler
from .base import IBatchSampler
from .category_balance import CategoryBalanceSampler, DistinctCategoryBalanceSampler

__all__ = ["IBatchSampler", "BalanceSampler", "CategoryBalanceSampler", "DistinctCategoryBalanceSampler"]
