"""oml_fast.models: extractors (images, texts, audio -> embeddings) and weights loading."""

from oml_fast.models.backbones import ResnetExtractor, ViTExtractor
from oml_fast.models.base import Extractor, normalise
from oml_fast.models.ecapa_tdnn import ECAPATDNNExtractor
from oml_fast.models.huggingface import HFWrapper
from oml_fast.models.mlp import ExtractorWithMLP
from oml_fast.models.siamese import ConcatSiamese, LinearTrivialDistanceSiamese, TrivialDistanceSiamese
from oml_fast.models.small_cnn import SmallCNNExtractor
from oml_fast.models.weights import WeightsLoadingError, load_state_dict, load_weights_into

__all__ = [
    "ConcatSiamese",
    "LinearTrivialDistanceSiamese",
    "TrivialDistanceSiamese",
    "ECAPATDNNExtractor",
    "Extractor",
    "ExtractorWithMLP",
    "HFWrapper",
    "ResnetExtractor",
    "SmallCNNExtractor",
    "ViTExtractor",
    "WeightsLoadingError",
    "load_state_dict",
    "load_weights_into",
    "normalise",
]
