"""OML's module path ``oml.miners.inbatch_hard_cluster`` (defined in :mod:`oml_fast.miners.hard_cluster`)."""

from oml_fast.miners.hard_cluster import HardClusterMiner

__all__ = ["HardClusterMiner"]
