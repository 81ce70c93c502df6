"""OML's module path ``oml.retrieval.postprocessors.algo``: the thresholdings (defined in :mod:`oml_fast.retrieval.postprocessors.thresholding`)."""

from oml_fast.retrieval.postprocessors.thresholding import AdaptiveThresholding, ConstantThresholding

__all__ = ["AdaptiveThresholding", "ConstantThresholding"]
