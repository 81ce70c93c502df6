"""OML's module paths for the pipelines (``oml.lightning.pipelines``).

The pipelines' code lives in :mod:`oml_fast.pipelines`; ``train``, ``validate``, ``predict`` and
``train_postprocessor`` re-export its entry functions under OML's paths. ``logging`` holds the
pipelines' logger classes. Submodules are imported on demand (``from oml_fast.lightning.pipelines.train
import extractor_training_pipeline``), as in OML.
"""
