"""OML's ``oml.lightning.pipelines.validate``: validates a feature extractor.

The code lives in :mod:`oml_fast.pipelines.entrypoints` (the pipelines sit above ``lightning``);
this module only gives it OML's import path.
"""

from oml_fast.pipelines.entrypoints import extractor_validation_pipeline

__all__ = ["extractor_validation_pipeline"]
