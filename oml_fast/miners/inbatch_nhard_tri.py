"""OML's module path ``oml.miners.inbatch_nhard_tri`` (defined in :mod:`oml_fast.miners.nhard_triplets`)."""

from oml_fast.miners.nhard_triplets import NHardTripletsMiner

__all__ = ["NHardTripletsMiner"]
