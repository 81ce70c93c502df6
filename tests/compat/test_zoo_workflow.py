"""OML's README example "retrieval with a pretrained model", as an OML user writes it (``oml`` renamed to
``oml_fast``): ``ViTExtractor.from_pretrained("vits16_dino")``, the checkpoint's transforms, inference over
the mock dataset, retrieval, post-processing and metrics.

The test machine is offline, so the download is stood in for by a checkpoint in DINO's own layout placed
where ``from_pretrained`` looks (``$OML_FAST_CACHE/weights/vits16_dino.ckpt``), with the zoo record's hash
set to that file's; everything after that line is OML's example as it stands.
"""

from __future__ import annotations

import pytest
import torch

from oml_fast.datasets import ImageQueryGalleryLabeledDataset
from oml_fast.inference import inference
from oml_fast.metrics import calc_retrieval_metrics_rr
from oml_fast.models import ViTExtractor
from oml_fast.models.weights import file_digest
from oml_fast.registry import get_transforms_for_pretrained
from oml_fast.retrieval import AdaptiveThresholding, RetrievalResults
from oml_fast.utils import get_mock_images_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def offline_vits16_dino(tmp_path, monkeypatch):
    """A ViT-S/16 checkpoint in DINO's layout where the zoo looks for ``vits16_dino``; returns its weights."""
    monkeypatch.setenv("OML_FAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OML_FAST_OFFLINE", "1")
    torch.manual_seed(0)
    weights = ViTExtractor(None, "vits16", normalise_features=False).model.state_dict()
    path = tmp_path / "cache" / "weights" / "vits16_dino.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    monkeypatch.setitem(ViTExtractor.pretrained_models["vits16_dino"], "hash", file_digest(path)[:6])
    return weights


@pytest.mark.slow  # ViT-S/16 over 80 images of 224 px on CPU
def test_retrieval_with_a_pretrained_model(offline_vits16_dino, tmp_path):
    model = ViTExtractor.from_pretrained("vits16_dino").to("cpu").eval()
    transform, _ = get_transforms_for_pretrained("vits16_dino")

    _, df_test = get_mock_images_dataset(tmp_path / "mock", global_paths=True)
    dataset = ImageQueryGalleryLabeledDataset(df_test, transform=transform)

    embeddings = inference(model, dataset, batch_size=4, num_workers=0)
    rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=5)
    rr = AdaptiveThresholding(n_std=2).process(rr)
    metrics = calc_retrieval_metrics_rr(rr, map_top_k=(3,), cmc_top_k=(1,))

    assert embeddings.shape == (len(df_test), 384)
    assert all(param.equal(offline_vits16_dino[name]) for name, param in model.model.state_dict().items())
    assert 0 <= float(metrics["cmc"][1]) <= 1 and 0 <= float(metrics["map"][3]) <= 1
