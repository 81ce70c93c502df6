"""Losses (OML names and semantics): triplet, contrastive, ArcFace, surrogate precision."""

from .arcface import ArcFaceLoss, ArcFaceLossWithMLP, label_smoothing
from .contrastive import ContrastiveLoss
from .surrogate_precision import SurrogatePrecision, surrogate_precision
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
