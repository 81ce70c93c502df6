"""OML's module path ``oml.samplers.distinct_category_balance`` (the code lives in :mod:`oml_fast.samplers.category_balance`)."""

from .category_balance import DistinctCategoryBalanceSampler

__all__ = ["DistinctCategoryBalanceSampler"]
