"""ECAPA-TDNN: the network (``architecture``) and OML's extractor around it (``extractor``)."""

from oml_fast.models.audio.ecapa_tdnn.architecture import ECAPATDNN
from oml_fast.models.audio.ecapa_tdnn.extractor import ECAPATDNNExtractor

__all__ = ["ECAPATDNN", "ECAPATDNNExtractor"]
