"""Any Hugging Face ``transformers`` encoder as an extractor (OML's ``HFWrapper``; extra ``texts``).

The wrapper imports nothing from ``transformers``: it is given a model object (``AutoModel.from_pretrained``
or ``AutoModel.from_config`` for random weights) and calls it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

from oml_fast.errors import require_extra
from oml_fast.models.base import Extractor

THFModel = Any  # a transformers PreTrainedModel (or any module with its call signature)
TBatchEncoding = Any  # a mapping with "input_ids" and "attention_mask", LongTensor[B, L] each


def check_model_type(model: THFModel) -> None:
    """Warns when ``model`` is not a ``transformers`` model (when ``transformers`` is installed).

    OML warns for anything but BERT, RoBERTa and DistilBERT; any encoder whose output has
    ``last_hidden_state`` works here, so only non-``transformers`` objects are reported.
    """
    try:
        import transformers
    except ImportError:
        return
    if not isinstance(model, transformers.PreTrainedModel):
        warnings.warn(
            f"Unexpected model type: {type(model).__name__}; HFWrapper expects a transformers model whose "
            "output has `last_hidden_state`",
            stacklevel=3,
        )


class HFWrapper(Extractor):
    """Embeds token batches with a Hugging Face model: the last hidden state of the first token ([CLS]).

    Args:
        model: a ``transformers`` model whose output has ``last_hidden_state`` (FloatTensor[B, L, H]),
            e.g. ``AutoModel.from_pretrained(name)`` or ``AutoModel.from_config(config)``.
        feat_dim: the embedding size ``H`` (the model's ``config.hidden_size``).

    ``forward(x)``: ``x["input_ids"]``, ``x["attention_mask"]`` (LongTensor[B, L], from a text dataset)
    -> FloatTensor[B, feat_dim].
    """

    def __init__(self, model: THFModel, feat_dim: int):
        super().__init__()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"HFWrapper: `model` must be a transformers model (a torch Module), got {model!r:.80}"
            )
        if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
            raise ValueError(f"HFWrapper: `feat_dim` must be a positive int, got {feat_dim!r}")
        hidden = getattr(getattr(model, "config", None), "hidden_size", None)
        if isinstance(hidden, int) and hidden != feat_dim:
            raise ValueError(
                f"HFWrapper: `feat_dim`={feat_dim} but the model's config.hidden_size is {hidden}"
            )
        check_model_type(model)
        self.model = model
        self._feat_dim = feat_dim

    @property
    def feat_dim(self) -> int:
        return self._feat_dim

    def forward(self, x: TBatchEncoding) -> torch.Tensor:  # type: ignore[override]
        if not isinstance(x, Mapping) or "input_ids" not in x or "attention_mask" not in x:
            raise ValueError(
                "HFWrapper expects a mapping with 'input_ids' and 'attention_mask' (LongTensor[B, L]), "
                f"as text datasets give; got {type(x).__name__}"
            )
        input_ids, attention_mask = x["input_ids"], x["attention_mask"]
        positions = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if isinstance(positions, int) and input_ids.ndim == 2 and input_ids.shape[1] > positions:
            raise ValueError(
                f"HFWrapper: {input_ids.shape[1]} tokens per item, but the model has positions for "
                f"{positions} (config.max_position_embeddings); shorten the texts (`max_length` of the "
                "dataset; ConcatSiamese joins two texts, so there at most half of it)"
            )
        output = self.model(input_ids, attention_mask=attention_mask)
        hidden = (
            output["last_hidden_state"] if isinstance(output, dict) or hasattr(output, "keys") else output[0]
        )
        return hidden[:, 0, :]


def hf_wrapper(model: str, feat_dim: int | None = None, random_weights: bool = False) -> HFWrapper:
    """:class:`HFWrapper` around the ``transformers`` model ``model`` (a local folder, or a hub name that
    ``transformers`` finds in its cache or downloads), for configs: ``{name: hf_wrapper, args: {model: ...}}``.

    Args:
        model: what ``AutoModel.from_pretrained`` takes.
        feat_dim: the embedding size; default the model's ``config.hidden_size``.
        random_weights: build the architecture from its config only (``AutoModel.from_config``).
    """
    transformers = require_extra("transformers", "hf_wrapper")
    if random_weights:
        network = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(model))
    else:
        network = transformers.AutoModel.from_pretrained(model)
    # from_pretrained returns the model in eval mode; a fresh extractor trains (dropout on) like any module.
    network.train()
    return HFWrapper(network, feat_dim=int(feat_dim or network.config.hidden_size))


__all__ = ["HFWrapper", "check_model_type", "hf_wrapper"]
