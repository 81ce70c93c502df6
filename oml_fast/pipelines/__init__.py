"""oml_fast.pipelines: configs (Hydra), the four pipelines on Lightning, OML's entry functions, the demo, the CLI."""

from oml_fast.pipelines.config import ConfigError, load_config
from oml_fast.pipelines.entrypoints import (
    extractor_prediction_pipeline,
    extractor_training_pipeline,
    extractor_validation_pipeline,
    postprocessor_training_pipeline,
)
from oml_fast.pipelines.registry import REGISTRIES, RegistryError, build
from oml_fast.pipelines.runs import RunResult, predict, train, train_postprocessor, validate

__all__ = [
    "REGISTRIES",
    "ConfigError",
    "RegistryError",
    "RunResult",
    "build",
    "extractor_prediction_pipeline",
    "extractor_training_pipeline",
    "extractor_validation_pipeline",
    "load_config",
    "postprocessor_training_pipeline",
    "predict",
    "train",
    "train_postprocessor",
    "validate",
]
