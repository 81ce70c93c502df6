"""Functions run on each rank of a real gloo group by tests/inference (imported by name in the spawned processes)."""

from __future__ import annotations

import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.inference import inference, pairwise_inference
from oml_fast.models import LinearTrivialDistanceSiamese


def inference_on_ranks(rank: int, world_size: int, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every rank runs the same model over the same dataset (11 items: the last rank's share is padded)."""
    torch.manual_seed(0)  # the same weights on every rank
    model = torch.nn.Linear(features.shape[1], 3)
    dataset = InMemoryQueryGalleryDataset(labels=list(range(len(features))), input_tensors=features)
    pairs = [(i, (i + 1) % len(features)) for i in range(len(features))]
    pairwise = LinearTrivialDistanceSiamese(features.shape[1], identity_init=True)
    return {
        "weight": model.weight.detach().clone(),
        "bias": model.bias.detach().clone(),
        "outputs": inference(model, dataset, batch_size=2),
        "pairwise": pairwise_inference(pairwise, dataset, pairs, num_workers=0, batch_size=3, verbose=False),
    }
