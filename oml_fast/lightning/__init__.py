"""Lightning modules and the metric callback (OML's ``oml.lightning``), on ``lightning.pytorch``.

Needs the ``pipeline`` extra (``pip install oml_fast[pipeline]``).
"""

try:
    import lightning.pytorch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"{error}. oml_fast.lightning needs Lightning, which the core install does not bring: "
        "`pip install oml_fast[pipeline]`"
    ) from error

from oml_fast.lightning.callbacks.metric import MetricValCallback
from oml_fast.lightning.modules.ddp import ModuleDDP
from oml_fast.lightning.modules.extractor import ExtractorModule, ExtractorModuleDDP
from oml_fast.lightning.modules.pairwise_postprocessing import PairwiseModule, PairwiseModuleDDP
from oml_fast.lightning.pipelines import logging  # OML's oml.lightning.logging: the pipelines' loggers

__all__ = [
    "ExtractorModule",
    "ExtractorModuleDDP",
    "MetricValCallback",
    "ModuleDDP",
    "PairwiseModule",
    "PairwiseModuleDDP",
    "logging",
]
