"""OML's ``oml.lightning.pipelines.train_postprocessor``: trains a pairwise re-ranker on top of an extractor.

The code lives in :mod:`oml_fast.pipelines.entrypoints` (the pipelines sit above ``lightning``);
this module only gives it OML's import path.
"""

from oml_fast.pipelines.entrypoints import postprocessor_training_pipeline

__all__ = ["postprocessor_training_pipeline"]
