"""Label smoothing for classification losses (OML 4.x's ``oml.functional.label_smoothing``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidInputError


@torch.no_grad()
def label_smoothing(
    y: Tensor, num_classes: int, epsilon: float = 0.2, categories: Tensor | None = None
) -> Tensor:
    """Smoothed one-hot targets ``Tensor[B, num_classes]`` float.

    Without ``categories``: ``(1 - eps) * one_hot + eps / num_classes``. With ``categories``
    (``Tensor[num_classes]``, the category of each label), ``eps`` is spread uniformly over the labels
    of the target's category only (OML's behaviour).

    >>> label_smoothing(torch.tensor([0]), 4, 0.4).tolist()
    [[0.7000000476837158, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612]]
    >>> label_smoothing(torch.tensor([0]), 4, 0.4, categories=torch.tensor([0, 0, 1, 1])).tolist()
    [[0.800000011920929, 0.20000000298023224, 0.0, 0.0]]
    """
    if not 0 <= epsilon < 1:
        raise InvalidInputError(f"`epsilon` must be in [0, 1), got {epsilon}")
    if categories is None:
        ohe = F.one_hot(y, num_classes).float()
        return ohe * (1 - epsilon) + epsilon / num_classes
    if len(categories) != num_classes:
        raise InvalidInputError(
            f"`categories` must have one entry per class ({num_classes}), got {len(categories)}"
        )
    same_category = (categories[None, :] == categories[y][:, None]).float()
    smoothed = same_category * (epsilon / same_category.sum(dim=1, keepdim=True))
    smoothed[torch.arange(len(y), device=y.device), y] += 1 - epsilon
    return smoothed


__all__ = ["label_smoothing"]
