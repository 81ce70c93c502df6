"""Pairwise models on every modality: ``concat_pair`` joins images, audio clips and token sequences,
``ConcatSiamese`` scores text pairs through a Hugging Face model, and the batch helpers move and pick
tokenised inputs as they do tensors."""

from __future__ import annotations

import pytest
import torch

from oml_fast.errors import InvalidInputError
from oml_fast.models import ConcatSiamese, HFWrapper
from oml_fast.models.meta.siamese import concat_pair
from oml_fast.utils.batches import inputs_to_device, take_items


def test_concat_pair_joins_images_along_the_height_audio_along_time_texts_along_tokens():
    images = torch.arange(2 * 3 * 4 * 5).float().view(2, 3, 4, 5)
    assert torch.equal(concat_pair(images, images + 1), torch.cat([images, images + 1], dim=2))
    audio = torch.randn(2, 1, 800)
    assert concat_pair(audio, audio).shape == (2, 1, 1600)
    ids, mask = torch.tensor([[2, 7, 3, 0]]), torch.tensor([[1, 1, 1, 0]])
    pair = concat_pair(
        {"input_ids": ids, "attention_mask": mask}, {"input_ids": ids + 1, "attention_mask": mask}
    )
    assert pair["input_ids"].tolist() == [[2, 7, 3, 0, 3, 8, 4, 1]]
    assert pair["attention_mask"].tolist() == [[1, 1, 1, 0, 1, 1, 1, 0]]


@pytest.mark.parametrize(
    "x1, x2, message",
    [
        (
            torch.zeros(2, 8),
            torch.zeros(2, 8),
            r"images \[B, C, H, W\] or audio \[B, C, T\] of the same shape, got \[2, 8\]",
        ),
        (torch.zeros(2, 1, 8), torch.zeros(2, 1, 9), r"of the same shape, got \[2, 1, 8\] and \[2, 1, 9\]"),
        (
            {"input_ids": torch.zeros(1, 2)},
            {"ids": torch.zeros(1, 2)},
            r"the same keys, got \['input_ids'\] and \['ids'\]",
        ),
        (torch.zeros(1, 1, 2), {"input_ids": torch.zeros(1, 2)}, r"both be tensors .* got Tensor and dict"),
    ],
)
def test_concat_pair_names_bad_inputs(x1, x2, message):
    with pytest.raises(InvalidInputError, match=message):
        concat_pair(x1, x2)


def test_batch_helpers_treat_tokenised_texts_like_tensors():
    batch = {"input_ids": torch.arange(6).view(3, 2), "attention_mask": torch.ones(3, 2, dtype=torch.long)}
    picked = take_items(batch, torch.tensor([2, 2, 0]))
    assert picked["input_ids"].tolist() == [[4, 5], [4, 5], [0, 1]] and picked["attention_mask"].shape == (
        3,
        2,
    )
    moved = inputs_to_device(batch, "cpu")
    assert isinstance(moved, dict) and torch.equal(moved["input_ids"], batch["input_ids"])
    assert torch.equal(take_items(torch.arange(4), torch.tensor([3])), torch.tensor([3]))
    with pytest.raises(TypeError, match="a tensor or a mapping of tensors .* got list"):
        take_items([1, 2], torch.tensor([0]))
    with pytest.raises(TypeError, match="got str"):
        inputs_to_device("text", "cpu")


@pytest.mark.slow  # imports transformers: seconds
def test_concat_siamese_scores_text_pairs_and_hf_wrapper_names_too_many_tokens():
    pytest.importorskip("transformers")
    from tests.datasets.text_helpers import tiny_bert

    bert = tiny_bert(vocab_size=50, hidden_size=16)  # positions for 128 tokens
    model = ConcatSiamese(HFWrapper(bert, feat_dim=16), mlp_hidden_dims=[8]).eval()
    generator = torch.Generator().manual_seed(0)
    x1 = {
        "input_ids": torch.randint(5, 50, (3, 10), generator=generator),
        "attention_mask": torch.ones(3, 10),
    }
    x2 = {
        "input_ids": torch.randint(5, 50, (3, 10), generator=generator),
        "attention_mask": torch.ones(3, 10),
    }
    with torch.no_grad():
        scores = model.predict(x1, x2)
    assert scores.shape == (3,) and bool(((scores > 0) & (scores < 1)).all())
    long = {key: value.repeat(1, 7) for key, value in x1.items()}  # 70 tokens, 140 once joined
    with pytest.raises(
        ValueError, match=r"HFWrapper: 140 tokens per item, but the model has positions for 128"
    ):
        model(long, long)


@pytest.mark.slow  # trains a tokenizer, imports transformers: seconds
def test_pairwise_inference_takes_a_text_dataset():
    pytest.importorskip("transformers")
    from oml_fast.datasets import TextBaseDataset
    from oml_fast.inference import pairwise_inference
    from tests.datasets.text_helpers import tiny_bert, train_tokenizer

    texts = ["a red chair", "a blue chair", "a red lamp", "a tall lamp with a shade"]
    tokenizer = train_tokenizer(texts, vocab_size=60)
    dataset = TextBaseDataset(texts, tokenizer, max_length=12)
    bert = tiny_bert(vocab_size=len(tokenizer), hidden_size=16)
    model = ConcatSiamese(HFWrapper(bert, feat_dim=16), mlp_hidden_dims=[8], use_tta=True).eval()
    scores = pairwise_inference(
        model, dataset, [(0, 1), (2, 3), (1, 0)], num_workers=0, batch_size=2, verbose=False
    )
    first, second = ({k: v[None] for k, v in dataset[i]["input_tensors"].items()} for i in (0, 1))
    with torch.no_grad():
        one = model.predict(first, second)
    assert scores.shape == (3,) and torch.allclose(scores[0], one[0], atol=1e-6)
    assert torch.allclose(scores[0], scores[2], atol=1e-6)  # use_tta: both orders averaged
