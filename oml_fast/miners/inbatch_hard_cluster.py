"""OML's module path ``oml.miners.inbatch_hard_cluster`` (the code lives in :mod:`oml_fast.miners.hard_cluster`)."""

from .hard_cluster import HardClusterMiner

__all__ = ["HardClusterMiner"]
