"""OML's module path ``oml.miners.inbatch_hard_tri`` (defined in :mod:`oml_fast.miners.hard_triplets`)."""

from oml_fast.miners.hard_triplets import HardTripletsMiner

__all__ = ["HardTripletsMiner"]
