"""OML's pipeline entry functions, with OML's names and signatures, over :mod:`oml_fast.pipelines.runs`.

An OML script ``@hydra.main(...) def main(cfg): extractor_training_pipeline(cfg)`` runs as it is
with ``oml`` renamed to ``oml_fast``: the composed ``cfg`` (or a plain ``dict``) is completed with
the defaults and checked like a config file.
"""

from __future__ import annotations

from typing import Any

from oml_fast.pipelines.runs import predict, train, train_postprocessor, validate


def extractor_training_pipeline(cfg: Any) -> None:
    """Trains and validates a feature extractor (``oml-fast train``)."""
    train(cfg)


def extractor_validation_pipeline(cfg: Any) -> tuple[Any, list[dict[str, float]]]:
    """Validates a feature extractor (``oml-fast validate``); returns ``(trainer, logs)`` as OML does."""
    result = validate(cfg)
    return result.trainer, [result.flat_metrics]


def extractor_prediction_pipeline(cfg: Any) -> None:
    """Saves the embeddings of a folder of images, texts or audio files (``modality``) to
    ``<save_dir>/predictions.json`` (``oml-fast predict``)."""
    predict(cfg)


def postprocessor_training_pipeline(cfg: Any) -> None:
    """Trains a pairwise re-ranker on top of an extractor (``oml-fast train-postprocessor``)."""
    train_postprocessor(cfg)


__all__ = [
    "extractor_prediction_pipeline",
    "extractor_training_pipeline",
    "extractor_validation_pipeline",
    "postprocessor_training_pipeline",
]
