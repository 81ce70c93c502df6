"""An MLP projection head on top of any extractor (OML's ``ExtractorWithMLP``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from oml_fast.interfaces.models import IFreezable
from oml_fast.models.base import Extractor
from oml_fast.models.weights import load_state_dict


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


class ExtractorWithMLP(Extractor, IFreezable):
    """``extractor`` followed by an MLP with the sizes ``mlp_features`` (ReLU between); ``feat_dim`` is the last size.

    Args:
        extractor: the backbone (anything with ``feat_dim`` and ``forward(x) -> [B, feat_dim]``).
        mlp_features: output sizes of the linear layers.
        weights: a local path or URL of a state dict / checkpoint of the whole model, or ``None``.
        train_backbone: ``False`` (OML's default): the backbone gets no gradients, only the head trains.
        normalise_features: (oml_fast addition, keyword) divide the output by its (detached) L2 norm.

    >>> from oml_fast.models.small_cnn import SmallCNNExtractor
    >>> model = ExtractorWithMLP(SmallCNNExtractor(feat_dim=16, width=4), mlp_features=[32, 8])
    >>> tuple(model(torch.randn(2, 3, 8, 8)).shape), model.feat_dim
    ((2, 8), 8)
    """

    pretrained_models: dict[str, dict[str, object]] = {}

    def __init__(
        self,
        extractor: nn.Module,
        mlp_features: Sequence[int],
        weights: str | Path | None = None,
        train_backbone: bool = False,
        *,
        normalise_features: bool = False,
    ):
        super().__init__()
        self.extractor = extractor
        self.mlp_features = list(mlp_features)
        self.train_backbone = bool(train_backbone)
        self.projection = make_mlp(int(extractor.feat_dim), self.mlp_features)  # type: ignore[arg-type]
        self.normalise_features = bool(normalise_features)
        if weights:
            state_dict = load_state_dict(weights)
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("criterion.")}
            self.load_state_dict(state_dict, strict=True)

    @property
    def feat_dim(self) -> int:
        return self.mlp_features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.train_backbone and torch.is_grad_enabled()):
            features = self.extractor(x)
        return self._maybe_normalise(self.projection(features))

    def freeze(self) -> None:
        self.train_backbone = False

    def unfreeze(self) -> None:
        self.train_backbone = True
