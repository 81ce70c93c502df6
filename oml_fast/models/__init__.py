"""oml_fast.models: extractors (images, texts, audio -> embeddings), pairwise models, and weights loading
(OML's ``oml.models`` names; the architectures are written here, torchvision and timm are not needed)."""

from oml_fast.models.audio.ecapa_tdnn.extractor import ECAPATDNNExtractor
from oml_fast.models.base import Extractor, normalise
from oml_fast.models.meta.projection import ExtractorWithMLP
from oml_fast.models.meta.siamese import ConcatSiamese, LinearTrivialDistanceSiamese, TrivialDistanceSiamese
from oml_fast.models.resnet.extractor import ResnetExtractor
from oml_fast.models.small_cnn import SmallCNNExtractor
from oml_fast.models.texts.huggingface import HFWrapper
from oml_fast.models.vit_clip.extractor import ViTCLIPExtractor
from oml_fast.models.vit_dino.extractor import ViTExtractor
from oml_fast.models.vit_unicom.extractor import ViTUnicomExtractor
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
    "ViTCLIPExtractor",
    "ViTExtractor",
    "ViTUnicomExtractor",
    "WeightsLoadingError",
    "load_state_dict",
    "load_weights_into",
    "normalise",
]
