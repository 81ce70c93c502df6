"""Texts for tests, all offline: a corpus of Python's own docstrings (label = the module), a WordPiece
tokenizer trained on it with ``tokenizers``, and a tiny BERT built from a config (random weights)."""

from __future__ import annotations

import importlib
import inspect
import re

import pandas as pd

# Modules whose public functions / classes carry docstrings of their own topic, each with at least
# 100 texts of 24 words in CPython 3.11 (so every label gets the same number of texts).
CORPUS_MODULES = ("time", "statistics", "shutil", "subprocess", "pathlib", "decimal", "tarfile", "logging")


def _public_docstrings(module) -> list[str]:
    """Docstrings of a module's public functions and classes and of the classes' public methods."""
    docs = []
    for name in sorted(dir(module)):
        obj = getattr(module, name, None)
        if name.startswith("_") or getattr(obj, "__module__", module.__name__) not in (module.__name__, None):
            continue
        docs.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            docs += [
                inspect.getdoc(getattr(obj, m, None)) or ""
                for m in sorted(vars(obj))
                if not m.startswith("_")
            ]
    return docs


def docstring_corpus(
    modules: tuple[str, ...] = CORPUS_MODULES, words_per_text: int = 24, per_module: int = 60
) -> pd.DataFrame:
    """Python's documentation of ``modules`` cut into texts of ``words_per_text`` words, ``per_module``
    texts per module (fewer if its docs are shorter): columns ``text``, ``label`` (the module's
    position in ``modules``), ``module``. Deterministic for a given Python version."""
    rows = []
    for label, name in enumerate(modules):
        words = re.sub(r"\s+", " ", " ".join(_public_docstrings(importlib.import_module(name)))).split()
        for start in range(0, len(words) - words_per_text + 1, words_per_text)[:per_module]:
            rows.append(
                {"text": " ".join(words[start : start + words_per_text]), "label": label, "module": name}
            )
    return pd.DataFrame(rows)


def train_tokenizer(texts: list[str], vocab_size: int = 800):
    """A BERT-style WordPiece tokenizer trained on ``texts``, wrapped as ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_bert(vocab_size: int, hidden_size: int = 32, seed: int = 0):
    """A 2-layer BERT with random weights, built from a config (nothing downloaded)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,  # a few steps on a few texts: noise from dropout only slows them down
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config)


def write_mock_texts_folder(folder) -> tuple[str, str]:
    """OML's mock texts as ``folder/df.csv``, a tokenizer trained on them and a tiny BERT saved beside it
    (``folder/tokenizer``, ``folder/bert``): what a pipeline config points to. Returns the two folders."""
    from pathlib import Path

    from oml_fast.utils import get_mock_texts_dataset

    folder = Path(folder)
    df = pd.concat(get_mock_texts_dataset())
    df.to_csv(folder / "df.csv", index=False)
    train_tokenizer(df["text"].tolist(), vocab_size=300).save_pretrained(folder / "tokenizer")
    tiny_bert(300).save_pretrained(folder / "bert")
    return str(folder / "tokenizer"), str(folder / "bert")
