"""oml_fast.inference: OML's inference helpers over the mock digits dataset, in one process and on 2 ranks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from oml_fast.datasets import ImageQueryGalleryLabeledDataset
from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.distributed import run_on_local_processes
from oml_fast.inference import inference, inference_cached, pairwise_inference
from oml_fast.models import TrivialDistanceSiamese
from oml_fast.utils import get_mock_images_dataset
from tests.inference import inference_workers


class Flat(nn.Module):
    """A tiny extractor: flatten, project, with a BatchNorm so that train / eval mode matters."""

    def __init__(self, in_features: int = 3 * 32 * 32, dim: int = 8):
        super().__init__()
        self.fc = nn.Linear(in_features, dim)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x.flatten(1)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> ImageQueryGalleryLabeledDataset:
    _, df_val = get_mock_images_dataset(tmp_path_factory.mktemp("mock"), global_paths=True)
    return ImageQueryGalleryLabeledDataset(df_val)


def _one_by_one(model: nn.Module, dataset) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(dataset[i]["input_tensors"][None]) for i in range(len(dataset))])


def test_inference_is_the_model_on_every_item_in_order(dataset):
    model = Flat().train()
    outputs = inference(model, dataset, batch_size=7)  # 80 items: the last batch is partial
    assert model.training  # mode restored
    assert outputs.shape == (len(dataset), 8) and not outputs.requires_grad
    assert torch.allclose(outputs, _one_by_one(model, dataset), atol=1e-5)
    verbose = inference(model, dataset, batch_size=32, verbose=True, accumulate_on_cpu=False)
    assert torch.allclose(verbose, outputs, atol=1e-5)


def test_inference_cached_saves_then_loads(dataset, tmp_path):
    cache = tmp_path / "sub" / "cache.pth"
    first = inference_cached(Flat(), dataset, batch_size=16, verbose=False, cache_path=str(cache))
    assert cache.is_file()
    # another model: the cache answers, the model is not run
    second = inference_cached(Flat(dim=3), dataset, batch_size=16, cache_path=str(cache))
    assert torch.equal(first, second)
    small = InMemoryQueryGalleryDataset(labels=[0, 1], input_tensors=torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="holds 80 rows, but the dataset has 2 items"):
        inference_cached(Flat(), small, batch_size=2, cache_path=str(cache))


def test_pairwise_inference_scores_the_given_pairs(dataset):
    extractor = Flat()
    pairs = [(0, 1), (5, 5), (79, 3), (10, 40), (2, 0)]
    scores = pairwise_inference(
        TrivialDistanceSiamese(extractor), dataset, pairs, num_workers=0, batch_size=2
    )
    embeddings = _one_by_one(extractor, dataset)
    expected = torch.stack([torch.dist(embeddings[i], embeddings[j]) for i, j in pairs])
    assert scores.shape == (len(pairs),)
    assert torch.allclose(scores, expected, atol=1e-4)
    assert scores[1].abs() < 1e-5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "`batch_size` must be a positive integer"),
        ({"batch_size": 2, "num_workers": -1}, "`num_workers` must be a non-negative integer"),
    ],
)
def test_bad_arguments_are_named(dataset, kwargs, match):
    with pytest.raises(ValueError, match=match):
        inference(Flat(), dataset, **kwargs)


def test_empty_dataset_and_bad_pairs_are_named(dataset):
    empty = InMemoryQueryGalleryDataset(labels=torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="is empty"):
        inference(Flat(), empty, batch_size=2)
    with pytest.raises(ValueError, match=r"`pair_ids` must be pairs of indices in \[0, 80\)"):
        pairwise_inference(TrivialDistanceSiamese(Flat()), dataset, [(0, 80)], num_workers=0, batch_size=2)


@pytest.mark.slow
def test_two_ranks_get_the_whole_result_in_order():
    features = torch.randn(11, 4)
    ranks = run_on_local_processes(inference_workers.inference_on_ranks, world_size=2, args=(features,))
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(ranks[0]["weight"])
        model.bias.copy_(ranks[0]["bias"])
        expected = model(features)
    pairs_expected = torch.linalg.vector_norm(features - features.roll(-1, dims=0), dim=1)
    for result in ranks:
        assert torch.allclose(result["outputs"], expected, atol=1e-6)
        assert torch.allclose(result["pairwise"], pairs_expected, atol=1e-5)
