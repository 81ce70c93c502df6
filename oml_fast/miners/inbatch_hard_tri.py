"""OML's module path ``oml.miners.inbatch_hard_tri`` (the code lives in :mod:`oml_fast.miners.hard_triplets`)."""

from .hard_triplets import HardTripletsMiner

__all__ = ["HardTripletsMiner"]
