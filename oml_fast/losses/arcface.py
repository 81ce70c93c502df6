"""ArcFace (additive angular margin) classification loss, with optional category-wise label smoothing."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..functional.label_smoothing import label_smoothing
from ..functional.losses import check_reduction
from ..ops.checks import labels_to_tensor

ACCURACY_KEY = "accuracy"


class ArcFaceLoss(nn.Module):
    """ArcFace loss (https://arxiv.org/abs/1801.07698) with its own ``num_classes x in_features``
    projection; the target logit is ``s * cos(theta + m)`` (with the usual linear fallback past
    ``theta > pi - m``), the others ``s * cos(theta)``, then cross-entropy.

    Args:
        in_features: embedding size D.
        num_classes: number of training classes.
        m: additive angular margin (0.3-0.5 usual).
        s: logit scale (30-64 usual).
        smoothing_epsilon: label smoothing strength in [0, 1) (0 = off).
        label2category: optional ``{label: category}``; label smoothing then stays inside the target's
            category.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    ``forward(x Tensor[B, D], y Tensor[B] int64) -> Tensor``; ``last_logs["accuracy"]`` is the batch
    classification accuracy.

    Difference from OML: OML computes ``sin = sqrt(1 - cos^2)`` unclamped, whose gradient is NaN when an
    embedding is exactly parallel to a class weight (|cos| = 1); here ``1 - cos^2`` is clamped away from 0.

    >>> torch.manual_seed(0) and None
    >>> criterion = ArcFaceLoss(in_features=8, num_classes=3)
    >>> criterion(torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([])
    """

    label2category: Tensor | None  # a non-persistent buffer (``None`` without ``label2category``)

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        m: float = 0.5,
        s: float = 64,
        smoothing_epsilon: float = 0,
        label2category: Mapping[Any, Any] | None = None,
        reduction: str = "mean",
    ):
        super().__init__()
        if not 0 <= smoothing_epsilon < 1:
            raise InvalidInputError(f"`smoothing_epsilon` must be in [0, 1), got {smoothing_epsilon}")
        if label2category is not None and not smoothing_epsilon:
            # OML accepts this combination and ignores the mapping; so do we, but say so.
            warnings.warn(
                "`label2category` only restricts label smoothing, which is off (`smoothing_epsilon=0`): it is ignored",
                stacklevel=2,
            )
        self.reduction = check_reduction(reduction)
        self.criterion = nn.CrossEntropyLoss(reduction=reduction)
        self.num_classes = num_classes
        self.smoothing_epsilon = smoothing_epsilon
        categories = None
        if label2category is not None:
            missing = [label for label in range(num_classes) if label not in label2category]
            if missing:
                raise InvalidInputError(f"`label2category` has no category for labels {missing[:10]}")
            codes = {
                cat: i
                for i, cat in enumerate(sorted({label2category[i] for i in range(num_classes)}, key=str))
            }
            categories = torch.tensor(
                [codes[label2category[i]] for i in range(num_classes)], dtype=torch.long
            )
        self.register_buffer("label2category", categories, persistent=False)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.rescale = s
        self.m = m
        self.cos_m = math.cos(m)
        self.sin_m = math.sin(m)
        self.th = -self.cos_m  # cos(pi - m)
        self.mm = self.sin_m * m
        self.last_logs: dict[str, float] = {}

    def fc(self, x: Tensor) -> Tensor:
        return F.linear(F.normalize(x, p=2), F.normalize(self.weight, p=2))

    def smooth_labels(self, y: Tensor) -> Tensor:
        return label_smoothing(y, self.num_classes, self.smoothing_epsilon, self.label2category)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        # Lists, arrays and integer tensors of any width; strings, bools and fractions are a clear error.
        y = labels_to_tensor(y, x.device, name="y")
        if y.dim() != 1 or len(y) != len(x):
            raise InvalidInputError(f"`y` must be 1-D with one label per row of `x`, got {tuple(y.shape)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise InvalidInputError(
                f"labels `y` must be in [0, {self.num_classes}), got [{int(y.min())}, {int(y.max())}]"
            )
        cos = self.fc(x)
        self._log_accuracy_on_batch(cos, y)
        # Clamp keeps d(sin)/d(cos) finite at |cos| = 1 (OML's unclamped sqrt gives NaN there).
        sin = torch.sqrt((1.0 - cos * cos).clamp_min(1e-7))
        cos_w_margin = cos * self.cos_m - sin * self.sin_m
        cos_w_margin = torch.where(cos > self.th, cos_w_margin, cos - self.mm)
        ohe = F.one_hot(y, self.num_classes).bool()
        logit = torch.where(ohe, cos_w_margin, cos) * self.rescale
        target = self.smooth_labels(y) if self.smoothing_epsilon else y
        return self.criterion(logit, target)

    @torch.no_grad()
    def _log_accuracy_on_batch(self, logits: Tensor, y: Tensor) -> None:
        self.last_logs[ACCURACY_KEY] = float((y == logits.argmax(dim=1)).float().mean()) if len(y) else 0.0


class ArcFaceLossWithMLP(nn.Module):
    """:class:`ArcFaceLoss` after an MLP projector (``Linear -> ReLU`` for each hidden size, a plain
    ``Linear`` last, as torchvision's ``MLP``).

    >>> criterion = ArcFaceLossWithMLP(in_features=8, num_classes=3, mlp_features=[16, 4])
    >>> criterion(torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        mlp_features: Sequence[int],
        m: float = 0.5,
        s: float = 64,
        smoothing_epsilon: float = 0,
        label2category: Mapping[Any, Any] | None = None,
        reduction: str = "mean",
    ):
        super().__init__()
        if len(mlp_features) == 0:
            raise InvalidInputError("`mlp_features` must list at least one layer size")
        layers: list[nn.Module] = []
        width = in_features
        for hidden in mlp_features[:-1]:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, mlp_features[-1]))
        self.mlp = nn.Sequential(*layers)
        self.arcface = ArcFaceLoss(
            mlp_features[-1], num_classes, m, s, smoothing_epsilon, label2category, reduction=reduction
        )

    @property
    def last_logs(self) -> dict[str, float]:
        return self.arcface.last_logs

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.arcface(self.mlp(x), y)


__all__ = ["ArcFaceLoss", "ArcFaceLossWithMLP", "label_smoothing"]
