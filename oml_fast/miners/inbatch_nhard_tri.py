"""OML's module path ``oml.miners.inbatch_nhard_tri`` (the code lives in :mod:`oml_fast.miners.nhard_triplets`)."""

from .nhard_triplets import NHardTripletsMiner

__all__ = ["NHardTripletsMiner"]
