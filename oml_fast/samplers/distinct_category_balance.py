"""OML's module path ``oml.samplers.distinct_category_balance`` (defined in :mod:`oml_fast.samplers.category_balance`)."""

from oml_fast.samplers.category_balance import DistinctCategoryBalanceSampler

__all__ = ["DistinctCategoryBalanceSampler"]
