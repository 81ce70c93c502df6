"""An MLP projection head on top of any extractor (OML's ``oml.models.meta.projection``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from oml_fast.interfaces.models import IExtractor, IFreezable
from oml_fast.models.base import Extractor, checkpoint_state_dict
from oml_fast.models.vit_dino.extractor import ViTExtractor
from oml_fast.models.weights import load_checked


def make_mlp(
    in_features: int,
    features: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
    dropout: float = 0.0,
    last_bias: bool = True,
    last_dropout: bool = True,
) -> nn.Sequential:
    """Linear-activation-Dropout per hidden size, then Linear(-Dropout) to ``features[-1]``.

    The layer order is torchvision's ``ops.MLP``, so state dicts saved by OML models load here.

    >>> [type(m).__name__ for m in make_mlp(4, [8, 2])]
    ['Linear', 'ReLU', 'Dropout', 'Linear', 'Dropout']
    """
    if not features or any(int(f) <= 0 for f in features):
        raise ValueError(f"`features` must be a non-empty list of positive ints, got {list(features)}")
    layers: list[nn.Module] = []
    sizes = [int(in_features), *map(int, features)]
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(n_in, n_out), activation(), nn.Dropout(dropout)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=last_bias))
    layers.append(nn.Dropout(dropout) if last_dropout else nn.Identity())
    return nn.Sequential(*layers)


def _vits16_backbone() -> IExtractor:
    return ViTExtractor(None, "vits16", False, use_multi_scale=False)


class ExtractorWithMLP(Extractor, IFreezable):
    """``extractor`` followed by an MLP with the sizes ``mlp_features`` (ReLU between); ``feat_dim`` is the last size.

    ``forward``: what ``extractor`` takes -> ``FloatTensor[B, mlp_features[-1]]``.

    Args:
        extractor: the backbone (anything with ``feat_dim`` and ``forward(x) -> [B, feat_dim]``).
        mlp_features: output sizes of the linear layers.
        weights: ``None``, a path or URL of a state dict / checkpoint of the whole model, or a name of
            ``pretrained_models`` (``vits16_224_mlp_384_inshop``).
        train_backbone: ``False`` (OML's default): the backbone gets no gradients, only the head trains.

    >>> from oml_fast.models.small_cnn import SmallCNNExtractor
    >>> model = ExtractorWithMLP(SmallCNNExtractor(feat_dim=16, width=4), mlp_features=[32, 8])
    >>> tuple(model(torch.randn(2, 3, 8, 8)).shape), model.feat_dim
    ((2, 8), 8)
    """

    pretrained_models: dict[str, Any] = {
        "vits16_224_mlp_384_inshop": {
            "url": "https://oml.daloroserver.com/download/checkpoints/inshop/vits16_224_mlp_384_inshop.ckpt",
            "hash": "35244966",
            "fname": "vits16_224_mlp_384_inshop.ckpt",
            "init_args": {
                "extractor_creator": _vits16_backbone,
                "mlp_features": [384],
                "train_backbone": True,
            },
        }
    }

    def __init__(
        self,
        extractor: IExtractor,
        mlp_features: list[int],
        weights: str | Path | None = None,
        train_backbone: bool = False,
    ):
        super().__init__()
        self.extractor = extractor
        self.mlp_features = list(mlp_features)
        self.train_backbone = train_backbone
        self.projection = make_mlp(int(extractor.feat_dim), self.mlp_features)
        if weights:
            load_checked(self, checkpoint_state_dict(self, weights, trial_key="extractor."), weights)

    @property
    def feat_dim(self) -> int:
        return self.mlp_features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Unlike OML, no graph is built under `torch.no_grad()` even with `train_backbone=True`.
        with torch.set_grad_enabled(self.train_backbone and torch.is_grad_enabled()):
            features = self.extractor(x)
        return self.projection(features)

    def freeze(self) -> None:
        self.train_backbone = False

    def unfreeze(self) -> None:
        self.train_backbone = True

    @classmethod
    def from_pretrained(cls, weights: str, **kwargs: Any) -> ExtractorWithMLP:
        """As :meth:`IExtractor.from_pretrained`; the backbone of the record is built first (``extractor_creator``)."""
        if weights not in cls.pretrained_models:
            return super().from_pretrained(weights, **kwargs)  # type: ignore[return-value]
        init_args = dict(cls.pretrained_models[weights]["init_args"])
        creator = init_args.pop("extractor_creator")
        if "extractor" not in kwargs:
            init_args["extractor"] = creator()
        return cls(weights=weights, **{**init_args, **kwargs})


__all__ = ["ExtractorWithMLP", "make_mlp"]
