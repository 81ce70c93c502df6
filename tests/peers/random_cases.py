"""Seeded random inputs for the OML cross-checks, and the same data as an OML and an oml_fast dataset.

Every case is reproduced by its seed alone: ``rng = seeded(seed)`` seeds numpy's and torch's global
generators too (OML's samplers and ArcFace's weight initialisation draw from them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import peers
import torch

# Random cases per check (the old script's default): ~4,600 cases, ~1 minute on 2 quiet cores (7.5 under
# a load of 5). OML_FAST_PEER_CASES=20 for a quick look.
N_CASES = int(os.environ.get("OML_FAST_PEER_CASES", "200"))
SEEDS = range(N_CASES)
# Checks on large inputs (N up to 1500) run on a tenth of the seeds.
LARGE_SEEDS = range(max(1, N_CASES // 10))


def seeded(seed: int) -> np.random.RandomState:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return np.random.RandomState(seed)


def random_top_k(rng: np.random.RandomState, upper: int) -> tuple[int, ...]:
    return tuple(sorted({int(k) for k in rng.randint(1, upper + 1, size=rng.randint(1, 4))}))


def random_categories(rng: np.random.RandomState, n: int) -> np.ndarray:
    """1 to 3 categories, as ints or as strings."""
    n_cat = rng.randint(1, 4)
    if rng.rand() < 0.5:
        return rng.randint(0, n_cat, size=n)
    return np.array(["cat", "dog", "eel"])[rng.randint(0, n_cat, size=n)]


def random_batch_labels(rng: np.random.RandomState) -> torch.Tensor:
    """At least 2 labels, each with at least 2 items (what OML's miners assert), shuffled."""
    n_labels = int(rng.randint(2, 7))
    counts = rng.randint(2, 6, size=n_labels)
    labels = np.repeat(rng.permutation(100)[:n_labels], counts)
    return torch.from_numpy(rng.permutation(labels)).long()


@dataclass
class QueryGalleryData:
    """A validation set as arrays: embeddings, labels, query/gallery masks, optional columns."""

    embeddings: torch.Tensor
    labels: np.ndarray
    is_query: np.ndarray
    is_gallery: np.ndarray
    categories: np.ndarray | None = None
    sequences: np.ndarray | None = None

    @property
    def queries(self) -> torch.Tensor:
        return self.embeddings[torch.from_numpy(np.flatnonzero(self.is_query))]

    @property
    def gallery(self) -> torch.Tensor:
        return self.embeddings[torch.from_numpy(np.flatnonzero(self.is_gallery))]

    def oml_dataset(self) -> Any:
        return peers.make_oml_query_gallery_dataset(
            self.labels, self.is_query, self.is_gallery, self.categories, self.sequences, self.embeddings
        )

    def our_dataset(self) -> Any:
        from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset

        return InMemoryQueryGalleryDataset(
            labels=self.labels,
            is_query=self.is_query,
            is_gallery=self.is_gallery,
            categories=self.categories,
            sequences=self.sequences,
        )


def random_query_gallery_data(rng: np.random.RandomState) -> QueryGalleryData:
    """2-80 items, 1-vs-rest / disjoint / overlapping query and gallery sets, optional int or string
    categories and sequences. Continuous embeddings: no tied distances (deviation ``tie-order``)."""
    n = int(rng.randint(2, 80))
    dim = int(rng.randint(1, 12))
    labels = rng.randint(0, max(1, n // int(rng.randint(1, 6))), size=n)
    mode = rng.randint(0, 3)
    if mode == 0:  # every item query and gallery (1 vs rest)
        is_query, is_gallery = np.ones(n, bool), np.ones(n, bool)
    elif mode == 1:  # disjoint sets
        is_query = rng.rand(n) < 0.4
        is_gallery = ~is_query
    else:  # random overlap
        is_query, is_gallery = rng.rand(n) < 0.6, rng.rand(n) < 0.7
    is_query[rng.randint(n)] = True
    if not is_gallery.any():
        is_gallery[rng.randint(n)] = True
    if mode == 1 and is_gallery.sum() == n:  # keep disjoint sets disjoint
        is_gallery[np.flatnonzero(is_query)] = False
        if not is_gallery.any():
            is_gallery[0], is_query[0] = True, False
            is_query[-1] = True
            is_gallery[-1] = n == 1
    categories = random_categories(rng, n) if rng.rand() < 0.5 else None
    sequences = None
    if rng.rand() < 0.4:
        sequences = rng.randint(0, max(1, n // 3), size=n)
        if rng.rand() < 0.5:
            sequences = np.array([f"s{v}" for v in sequences])
    embeddings = torch.from_numpy(rng.randn(n, dim).astype(np.float32))
    return QueryGalleryData(embeddings, labels, is_query, is_gallery, categories, sequences)
