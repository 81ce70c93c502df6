"""The shipped ``postprocessor=pairwise_reranker`` option: OML's pairwise model (``trivial_distance_siamese``),
over the config's own extractor; it builds, passes the pipelines' checks for every modality, and validates."""

from __future__ import annotations

import pytest
import torch

from oml_fast.models import SmallCNNExtractor, TrivialDistanceSiamese
from oml_fast.pipelines import validate
from oml_fast.pipelines.config import load_config
from oml_fast.pipelines.data import check_modality
from oml_fast.registry.postprocessors import get_postprocessor_by_cfg
from oml_fast.retrieval import PairwiseReranker


def test_the_shipped_reranker_builds_omls_pairwise_model_over_the_configs_extractor():
    cfg = load_config("validate_digits", ["postprocessor=pairwise_reranker", "extractor.args.feat_dim=8"])
    postprocessor = get_postprocessor_by_cfg(cfg.postprocessor)
    assert isinstance(postprocessor, PairwiseReranker)
    assert postprocessor.top_n == 3  # OML's value
    assert isinstance(postprocessor.model, TrivialDistanceSiamese)
    assert isinstance(postprocessor.model.extractor, SmallCNNExtractor)
    assert postprocessor.model.extractor.feat_dim == 8  # the interpolated `${extractor}`
    assert check_modality(cfg)[0] == "images"


def test_the_shipped_reranker_follows_the_modality_of_the_extractor():
    overrides = [
        "postprocessor=pairwise_reranker",
        "modality=texts",
        "+dataset_args.tokenizer=t",
        "extractor=hf_wrapper",
        "extractor.args.model=m",
    ]
    cfg = load_config("validate_digits", overrides)
    assert cfg.postprocessor.args.pairwise_model.args.extractor.name == "hf_wrapper"
    assert check_modality(cfg)[0] == "texts"  # no ConfigError: the re-ranker embeds texts too


def test_validate_with_the_shipped_reranker_on_the_digits(digits_root, tmp_path):
    """With the extractor's weights the trivial re-ranker re-scores the top 3 by the very distance that
    ranked them: the metrics stay the extractor's."""
    torch.manual_seed(0)
    weights = tmp_path / "small_cnn.pth"
    torch.save(SmallCNNExtractor(feat_dim=64, width=32, normalise_features=True).state_dict(), weights)
    base = [
        f"dataset_root={digits_root}",
        f"logs_root={tmp_path / 'logs'}",
        f"extractor.args.weights={weights}",
        "accelerator=cpu",
        "log_images=false",
    ]
    plain = validate(load_config("validate_digits", [*base, "logs_folder=plain"]))
    reranked = validate(
        load_config("validate_digits", [*base, "logs_folder=reranked", "postprocessor=pairwise_reranker"])
    )
    for metric, by_k in plain.metrics["OVERALL"].items():
        for k, value in by_k.items():
            assert float(reranked.metrics["OVERALL"][metric][k]) == pytest.approx(float(value), abs=1e-6), (
                metric,
                k,
            )


def test_a_reranker_over_embeddings_is_still_refused_by_name(tmp_path):
    from oml_fast.pipelines.schema import ConfigError

    overrides = [
        f"logs_root={tmp_path}",
        "allow_untrained=true",
        "postprocessor=pairwise_reranker",
        "pairwise_model@postprocessor.args.pairwise_model=linear_siamese",
    ]
    with pytest.raises(ConfigError, match="'linear_siamese', which scores pairs of embeddings"):
        validate(load_config("validate_digits", overrides))
