"""OML's module path ``oml.miners.inbatch_all_tri``: the all-triplets miner (defined in :mod:`oml_fast.miners.all_triplets`)."""

from oml_fast.miners.all_triplets import AllTripletsMiner, get_available_triplets

__all__ = ["AllTripletsMiner", "get_available_triplets"]
