"""Pairwise models (OML's ``oml.models.meta.siamese``): they score pairs, smaller meaning closer.

They plug into :class:`~oml_fast.retrieval.PairwiseReranker` and train with
:class:`~oml_fast.lightning.PairwiseModule`.

>>> model = LinearTrivialDistanceSiamese(feat_dim=2, identity_init=True)
>>> model(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
tensor([5.], grad_fn=<AddBackward0>)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from oml_fast.errors import InvalidInputError
from oml_fast.interfaces.models import IExtractor, IFreezable, IPairwiseModel
from oml_fast.models.base import checkpoint_state_dict
from oml_fast.models.meta.projection import make_mlp
from oml_fast.models.weights import load_checked


def elementwise_dist(x1: Tensor, x2: Tensor, p: int = 2) -> Tensor:
    """``||x1[i] - x2[i]||_p`` per row: ``Tensor[B, D], Tensor[B, D] -> Tensor[B]`` (OML's
    ``oml.utils.misc_torch.elementwise_dist``, which re-exports this one)."""
    if x1.ndim != 2 or x1.shape != x2.shape:
        raise InvalidInputError(
            f"`x1` and `x2` must be 2-D of the same shape, got {list(x1.shape)} and {list(x2.shape)}"
        )
    return torch.linalg.vector_norm(x1 - x2, ord=p, dim=1)


class LinearTrivialDistanceSiamese(IPairwiseModel):
    """L2 distance between linear projections of two embeddings (plus ``output_bias``); for development.

    Args:
        feat_dim: size of the input embeddings.
        identity_init: start from the identity projection (the model is then the plain L2 distance).
        output_bias: added to the outputs.
    """

    def __init__(self, feat_dim: int, identity_init: bool, output_bias: float = 0):
        super().__init__()
        self.feat_dim = feat_dim
        self.output_bias = output_bias
        self.proj = nn.Linear(feat_dim, feat_dim, bias=False)
        if identity_init:
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(feat_dim))

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        """``x1, x2 (Tensor[B, feat_dim])`` -> distances ``Tensor[B]``."""
        return elementwise_dist(self.proj(x1), self.proj(x2), p=2) + self.output_bias

    def predict(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.forward(x1=x1, x2=x2)


class TrivialDistanceSiamese(IPairwiseModel):
    """L2 distance between the extractor's embeddings of two inputs (plus ``output_bias``); for development."""

    pretrained_models: dict[str, Any] = {}

    def __init__(self, extractor: IExtractor, output_bias: float = 0) -> None:
        super().__init__()
        self.extractor = extractor
        self.output_bias = output_bias

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return elementwise_dist(self.extractor(x1), self.extractor(x2), p=2) + self.output_bias

    def predict(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.forward(x1=x1, x2=x2)


def concat_pair(x1: Any, x2: Any) -> Any:
    """The two inputs of a pair as one input of an extractor, for :class:`ConcatSiamese`.

    Tensors are joined along dim 2 (OML's rule): images ``[B, C, H, W] -> [B, C, 2H, W]`` (one above the
    other), audio ``[B, C, T] -> [B, C, 2T]`` (one after the other). Tokenised texts, mappings of
    ``[B, L]`` tensors (``input_ids``, ``attention_mask``), are joined along the tokens, ``[B, 2L]``:
    the two token sequences one after the other, each with its own special tokens and (masked) padding.
    """
    if isinstance(x1, Mapping) and isinstance(x2, Mapping):
        if set(x1) != set(x2):
            raise InvalidInputError(
                f"`x1` and `x2` must have the same keys, got {sorted(x1)} and {sorted(x2)}"
            )
        return {key: torch.cat([x1[key], x2[key]], dim=1) for key in x1}
    if isinstance(x1, Tensor) and isinstance(x2, Tensor):
        if x1.ndim < 3 or x1.shape != x2.shape:
            raise InvalidInputError(
                "`x1` and `x2` must be images [B, C, H, W] or audio [B, C, T] of the same shape, got "
                f"{list(x1.shape)} and {list(x2.shape)}"
            )
        return torch.cat([x1, x2], dim=2)
    raise InvalidInputError(
        "`x1` and `x2` must both be tensors (images, audio) or both mappings of tensors (tokenised texts), "
        f"got {type(x1).__name__} and {type(x2).__name__}"
    )


class ConcatSiamese(IPairwiseModel, IFreezable):
    """Concatenates the two inputs of a pair (:func:`concat_pair`: images one above the other, as OML
    does; audio clips and token sequences one after the other), embeds the result with ``extractor``
    and scores it with an MLP head (sigmoid activations, dropout 0.5, one output without bias).

    ``forward`` gives logits (train with ``BCEWithLogitsLoss`` against "is a negative pair");
    ``predict`` gives their sigmoid, averaged over both concatenation orders when ``use_tta``.

    Args:
        extractor: embeds the concatenated pairs (e.g. ``Tensor[B, C, 2H, W]``) into
            ``Tensor[B, extractor.feat_dim]``. A text model needs positions for ``2 * max_length`` tokens.
        mlp_hidden_dims: hidden sizes of the head.
        use_tta: average the predictions of both orders (affects ``predict`` only).
        weights: a path or URL of a state dict / checkpoint of the whole model, or ``None``.
    """

    pretrained_models: dict[str, Any] = {}

    def __init__(
        self,
        extractor: IExtractor,
        mlp_hidden_dims: Sequence[int],
        use_tta: bool = False,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.use_tta = use_tta
        self.head = make_mlp(
            int(extractor.feat_dim),  # type: ignore[arg-type]
            [*mlp_hidden_dims, 1],
            activation=nn.Sigmoid,
            dropout=0.5,
            last_bias=False,
            last_dropout=False,
        )
        self.train_backbone = True
        if weights:
            load_checked(self, checkpoint_state_dict(self, weights, trial_key="extractor."), weights)

    def forward(self, x1: Any, x2: Any) -> Tensor:
        """Logits ``Tensor[B]`` of pairs ``(x1[i], x2[i])`` (tensors, or mappings of tensors for texts)."""
        x = concat_pair(x1, x2)
        with torch.set_grad_enabled(self.train_backbone and torch.is_grad_enabled()):
            x = self.extractor(x)
        return self.head(x).view(len(x))

    def predict(self, x1: Any, x2: Any) -> Tensor:
        x = torch.sigmoid(self.forward(x1=x1, x2=x2))
        if self.use_tta:
            return (x + torch.sigmoid(self.forward(x1=x2, x2=x1))) / 2
        return x

    def freeze(self) -> None:
        self.train_backbone = False

    def unfreeze(self) -> None:
        self.train_backbone = True


__all__ = [
    "ConcatSiamese",
    "concat_pair",
    "LinearTrivialDistanceSiamese",
    "TrivialDistanceSiamese",
    "elementwise_dist",
]
