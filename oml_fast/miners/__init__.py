"""Miners: pick triplets or pairs inside a batch (OML names and semantics)."""

from .all_triplets import AllTripletsMiner, get_available_triplets
from .base import (
    InBatchTripletsMiner,
    ITripletsMiner,
    ITripletsMinerInBatch,
    check_batch_labels,
    labels_to_tensor,
)
from .cross_batch import TripletMinerWithMemory
from .hard_cluster import HardClusterMiner
from .hard_triplets import HardTripletsMiner
from .miner_with_bank import MinerWithBank
from .nhard_triplets import NHardTripletsMiner
from .pairs import PairsMiner

__all__ = [
    "ITripletsMiner",
    "InBatchTripletsMiner",
    "ITripletsMinerInBatch",
    "AllTripletsMiner",
    "get_available_triplets",
    "HardTripletsMiner",
    "NHardTripletsMiner",
    "HardClusterMiner",
    "TripletMinerWithMemory",
    "MinerWithBank",
    "PairsMiner",
    "labels_to_tensor",
    "check_batch_labels",
]
