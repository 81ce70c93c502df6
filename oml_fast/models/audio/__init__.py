"""Audio extractors (OML's ``oml.models.audio``): ECAPA-TDNN."""

from oml_fast.models.audio.ecapa_tdnn.extractor import ECAPATDNNExtractor

__all__ = ["ECAPATDNNExtractor"]
