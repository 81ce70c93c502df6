"""oml_fast.pipelines: config API, train / validate / predict on Lightning, the demo and the CLI."""

from oml_fast.pipelines.config import ConfigError, load_config
from oml_fast.pipelines.registry import REGISTRIES, RegistryError, build
from oml_fast.pipelines.runs import RunResult, predict, train, validate

__all__ = [
    "REGISTRIES",
    "ConfigError",
    "RegistryError",
    "RunResult",
    "build",
    "load_config",
    "predict",
    "train",
    "validate",
]
