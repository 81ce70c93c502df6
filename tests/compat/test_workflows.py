"""OML's documented workflows, written as an OML user writes them, with ``oml`` renamed to ``oml_fast``.

One test per workflow of OML's README and docs: training with a miner and a sampler, validation,
retrieval with post-processing, categories, sequences, Lightning with the metric callback, and the
inference helpers. They run end to end on the mock dataset (scikit-learn's digits laid out as OML's
mock dataset, no download). Two things differ from OML's examples, both because of the offline,
CPU-only test machine: the extractor is our ``SmallCNNExtractor`` instead of a pretrained ViT (whose
weights would be downloaded), and the datasets are laid out in a temporary folder.

Only ``oml_fast``, ``torch`` and the standard library are imported, as in OML's examples.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.optim import Adam
from torch.utils.data import DataLoader

from oml_fast.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
from oml_fast.inference import inference, inference_cached, pairwise_inference
from oml_fast.losses import TripletLossWithMiner
from oml_fast.metrics import EmbeddingMetrics, calc_retrieval_metrics_rr
from oml_fast.miners import AllTripletsMiner, HardTripletsMiner
from oml_fast.models import SmallCNNExtractor, TrivialDistanceSiamese
from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding, PairwiseReranker, RetrievalResults
from oml_fast.samplers import BalanceSampler, CategoryBalanceSampler, DistinctCategoryBalanceSampler
from oml_fast.transforms import get_augs_torch, get_normalisation_resize_torch
from oml_fast.utils import get_mock_images_dataset
from oml_fast.utils.misc import set_global_seed


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The models here are tiny: with several intra-op threads on a busy machine, synchronising them costs
    # several times the work itself (measured 8x on 2 shared cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mock_dataset")
    get_mock_images_dataset(root)
    return root


def _extractor() -> SmallCNNExtractor:
    # Stands in for ViTExtractor.from_pretrained("vits16_dino") of OML's examples (no download here).
    return SmallCNNExtractor(feat_dim=16, width=8, normalise_features=True)


def _train(model, dataset, criterion, sampler, epochs: int, lr: float = 1e-3) -> list[float]:
    optimizer = Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        for batch in DataLoader(dataset, batch_sampler=sampler):
            embeddings = model(batch["input_tensors"])
            loss = criterion(embeddings, batch["labels"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    return losses


def test_training_with_a_miner_and_a_sampler(root):
    set_global_seed(42)
    df_train, _ = get_mock_images_dataset(root, global_paths=True)
    train = ImageLabeledDataset(df_train, transform=get_augs_torch(im_size=32))
    model = _extractor()
    before = [p.detach().clone() for p in model.parameters()]
    criterion = TripletLossWithMiner(0.1, AllTripletsMiner(), need_logs=True)
    sampler = BalanceSampler(train.get_labels(), n_labels=2, n_instances=2)

    losses = _train(model, train, criterion, sampler, epochs=1)

    assert len(losses) == len(sampler) and all(math.isfinite(x) for x in losses)
    assert {"active_tri", "pos_dist", "neg_dist"} <= set(criterion.last_logs)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_validation(root):
    set_global_seed(42)
    _, df_val = get_mock_images_dataset(root, global_paths=True)
    val = ImageQueryGalleryLabeledDataset(df_val, transform=get_normalisation_resize_torch(im_size=32))
    model = _extractor().eval()

    embeddings = inference(model, val, batch_size=4, num_workers=0)
    rr = RetrievalResults.from_embeddings(embeddings, val, n_items=5)
    metrics = calc_retrieval_metrics_rr(rr, map_top_k=(5,), cmc_top_k=(1, 5), precision_top_k=(5,))

    # the same numbers through EmbeddingMetrics fed batch by batch (OML's loop-style validation)
    calculator = EmbeddingMetrics(
        dataset=val, cmc_top_k=(1, 5), precision_top_k=(5,), map_top_k=(5,), verbose=False
    )
    calculator.setup(num_samples=len(val))
    with torch.no_grad():
        for batch in DataLoader(val, batch_size=16):
            calculator.update(model(batch["input_tensors"]), batch["idx"])
    by_calculator = calculator.compute_metrics()["OVERALL"]
    for name, values in metrics.items():
        for k, value in values.items():
            assert float(value) == pytest.approx(float(by_calculator[name][k]), abs=1e-6), (name, k)
    assert len(rr) == len(val.get_query_ids())


def test_retrieval_with_post_processing(root):
    set_global_seed(42)
    _, df_val = get_mock_images_dataset(root, global_paths=True)
    dataset = ImageQueryGalleryLabeledDataset(df_val)
    extractor = _extractor().eval()
    embeddings = inference(extractor, dataset, batch_size=16)
    rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=10)

    # a re-ranker whose pairwise distance is the extractor's own: the order must not change
    reranker = PairwiseReranker(
        top_n=5, pairwise_model=TrivialDistanceSiamese(extractor), batch_size=8, num_workers=0
    )
    rr_reranked = reranker.process(rr, dataset=dataset)
    for before, after in zip(rr.retrieved_ids, rr_reranked.retrieved_ids):
        assert torch.equal(before, after)

    # thresholds shorten the lists, never reorder them
    for postprocessor in (
        ConstantThresholding(th=float(rr.distances[0][2])),
        AdaptiveThresholding(n_std=2.0),
    ):
        rr_cut = postprocessor.process(rr)
        for before, after in zip(rr.retrieved_ids, rr_cut.retrieved_ids):
            assert torch.equal(before[: len(after)], after)
    assert len(ConstantThresholding(th=float(rr.distances[0][2])).process(rr).retrieved_ids[0]) == 2


@pytest.mark.parametrize("sampler_cls", [CategoryBalanceSampler, DistinctCategoryBalanceSampler])
def test_categories(root, sampler_cls):
    set_global_seed(42)
    df_train, df_val = get_mock_images_dataset(root, df_name="df_with_category.csv", global_paths=True)
    train = ImageLabeledDataset(df_train)
    val = ImageQueryGalleryLabeledDataset(df_val)
    model = _extractor()
    criterion = TripletLossWithMiner(0.1, HardTripletsMiner(), need_logs=True)
    args = {"n_categories": 2, "n_labels": 2, "n_instances": 2, "label2category": train.get_label2category()}
    if sampler_cls is DistinctCategoryBalanceSampler:
        args["epoch_size"] = 5
    sampler = sampler_cls(labels=train.get_labels(), **args)
    for batch_ids in list(sampler)[:3]:  # each batch: 2 categories x 2 labels x 2 instances
        labels = train.get_labels()[batch_ids]
        assert len(batch_ids) == 8 and len(set(labels.tolist())) == 4
        assert {train.get_label2category()[int(label)] for label in labels} == {"even", "odd"}
    _train(model, train, criterion, sampler, epochs=1)

    embeddings = inference(model.eval(), val, batch_size=16)
    rr = RetrievalResults.from_embeddings(embeddings, val, n_items=5)
    query_categories = df_val["category"].to_numpy()[val.get_query_ids().numpy()]
    metrics = calc_retrieval_metrics_rr(rr, query_categories=query_categories, cmc_top_k=(1,))
    assert set(metrics) == {"OVERALL", "even", "odd"}
    overall = float(metrics["OVERALL"]["cmc"][1])
    per_category = [float(metrics[c]["cmc"][1]) for c in ("even", "odd")]
    assert min(per_category) <= overall <= max(per_category)


def test_sequences(root):
    set_global_seed(42)
    _, df_val = get_mock_images_dataset(root, df_name="df_with_sequence.csv", global_paths=True)
    dataset = ImageQueryGalleryLabeledDataset(df_val)
    embeddings = inference(_extractor().eval(), dataset, batch_size=16)

    rr = RetrievalResults.from_embeddings(embeddings, dataset, n_items=10)
    metrics = calc_retrieval_metrics_rr(rr, map_top_k=(3, 5), precision_top_k=(5,), cmc_top_k=(3,))

    # items of the query's sequence (the query itself included) are never retrieved
    sequences = df_val["sequence"].to_numpy()
    for query, retrieved in zip(dataset.get_query_ids().tolist(), rr.retrieved_ids):
        assert not (sequences[retrieved.numpy()] == sequences[query]).any()
    assert 0.0 <= float(metrics["map"][5]) <= 1.0


@pytest.mark.slow
def test_lightning_module_with_metric_callback(root, tmp_path):
    import lightning.pytorch as pl

    from oml_fast.lightning import ExtractorModule, MetricValCallback

    set_global_seed(42)
    df_train, df_val = get_mock_images_dataset(root, global_paths=True, df_name="df_with_category.csv")
    extractor = _extractor()
    optimizer = Adam(extractor.parameters(), lr=1e-3)
    train_dataset = ImageLabeledDataset(df_train)
    criterion = TripletLossWithMiner(0.1, AllTripletsMiner(), need_logs=True)
    batch_sampler = BalanceSampler(train_dataset.get_labels(), n_labels=2, n_instances=3)
    train_loader = DataLoader(train_dataset, batch_sampler=batch_sampler)

    val_dataset = ImageQueryGalleryLabeledDataset(df_val)
    val_loader = DataLoader(val_dataset, batch_size=4)
    metric_callback = MetricValCallback(
        metric=EmbeddingMetrics(dataset=val_dataset, verbose=False), log_images=False
    )

    pl_model = ExtractorModule(extractor, criterion, optimizer)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[metric_callback],
        num_sanity_val_steps=0,
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(pl_model, train_dataloaders=train_loader, val_dataloaders=val_loader)

    logged = trainer.callback_metrics
    assert {"OVERALL/cmc/5", "OVERALL/precision/5", "OVERALL/map/5", "even/cmc/5", "odd/cmc/5"} <= set(logged)
    assert 0.0 < float(logged["OVERALL/cmc/5"]) <= 1.0


def test_inference_helpers(root, tmp_path):
    set_global_seed(42)
    _, df_val = get_mock_images_dataset(root, global_paths=True)
    dataset = ImageQueryGalleryLabeledDataset(df_val)
    extractor = _extractor()

    cache = tmp_path / "embeddings.pth"
    embeddings = inference_cached(extractor, dataset, batch_size=8, cache_path=str(cache), verbose=False)
    assert cache.is_file() and torch.equal(
        inference_cached(extractor, dataset, 8, cache_path=str(cache)), embeddings
    )
    assert torch.allclose(inference(extractor, dataset, batch_size=32), embeddings, atol=1e-5)

    pair_ids = [(0, 1), (0, 79), (40, 41)]
    scores = pairwise_inference(
        TrivialDistanceSiamese(extractor), dataset, pair_ids, num_workers=0, batch_size=2
    )
    expected = torch.stack([torch.dist(embeddings[i], embeddings[j]) for i, j in pair_ids])
    assert torch.allclose(scores, expected, atol=1e-4)


@pytest.mark.slow
def test_lightning_ddp_on_two_processes(root, tmp_path):
    """OML's "Lightning DDP" example (tests/compat/scripts/lightning_ddp.py), 2 CPU processes: both ranks
    finish the epoch and report the same validation metrics, computed over the whole validation set."""
    import json
    import os
    import subprocess
    import sys

    script = Path(__file__).with_name("scripts") / "lightning_ddp.py"
    output = tmp_path / "metrics.json"
    # the oml_fast of this checkout, not whichever one the interpreter has installed
    checkout = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [sys.executable, str(script), str(root), str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads(Path(f"{output}.rank{rank}").read_text()) for rank in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["metrics"]["OVERALL/cmc/5"] == ranks[1]["metrics"]["OVERALL/cmc/5"]
    assert 0.0 < ranks[0]["metrics"]["OVERALL/cmc/5"] <= 1.0
