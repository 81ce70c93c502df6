"""Losses (OML names and semantics): triplet, contrastive, ArcFace, surrogate precision."""

from ..functional.label_smoothing import label_smoothing
from .arcface import ArcFaceLoss, ArcFaceLossWithMLP
from .contrastive import ContrastiveLoss
from .surrogate_precision import (  # the function (it shadows the module)
    SurrogatePrecision,
    surrogate_precision,
)
from .triplet import TripletLoss, TripletLossPlain, TripletLossWithMiner, get_tri_ids_in_plain

__all__ = [
    "TripletLoss",
    "TripletLossPlain",
    "TripletLossWithMiner",
    "get_tri_ids_in_plain",
    "ContrastiveLoss",
    "ArcFaceLoss",
    "ArcFaceLossWithMLP",
    "label_smoothing",
    "SurrogatePrecision",
    "surrogate_precision",
]
