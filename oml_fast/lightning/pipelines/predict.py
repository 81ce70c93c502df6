"""OML's ``oml.lightning.pipelines.predict``: saves the embeddings of a folder of images (or, with
``modality``, of texts or audio files).

The code lives in :mod:`oml_fast.pipelines.entrypoints` (the pipelines sit above ``lightning``);
this module only gives it OML's import path.
"""

from oml_fast.pipelines.entrypoints import extractor_prediction_pipeline

__all__ = ["extractor_prediction_pipeline"]
