"""Tensor helpers of OML's ``oml.utils.misc_torch``: row-wise gather / scatter, distances, running averages, PCA.

Same names, arguments and results as OML 4.0; invalid arguments raise ``InvalidInputError`` naming the
argument (a ``ValueError``, and an ``AssertionError`` as OML's asserts).

>>> take_2d(torch.tensor([[10, 11, 12], [20, 21, 22]]), torch.tensor([[2, 0], [1, 1]]))
tensor([[12, 10],
        [21, 21]])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from oml_fast.errors import InvalidInputError
from oml_fast.models.meta.siamese import elementwise_dist  # noqa: F401  (OML's name here too)
from oml_fast.ops.distance import pairwise_distance

TSingleValues = int | float | np.floating | np.integer | Tensor
TSequenceValues = list[float] | tuple[float, ...] | np.ndarray | Tensor
TOnlineValues = TSingleValues | TSequenceValues
TData = TypeVar("TData", list, tuple, np.ndarray, Tensor)


def _check_rows(name_x: str, x: Tensor, name_i: str, indices: Tensor) -> None:
    if x.ndim != 2 or indices.ndim != 2:
        raise InvalidInputError(
            f"`{name_x}` and `{name_i}` must be 2-D, got shapes {list(x.shape)} and {list(indices.shape)}"
        )
    if x.shape[0] != indices.shape[0]:
        raise InvalidInputError(
            f"`{name_x}` and `{name_i}` must have the same number of rows, got {x.shape[0]} and {indices.shape[0]}"
        )
    if indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise InvalidInputError(f"`{name_i}` must hold integers, got {indices.dtype}")


def _column_ids(indices: Tensor, n_columns: int) -> Tensor:
    """``indices`` as int64 with negative positions counted from the end of the row (as Python indexing)."""
    indices = indices.long()
    return torch.where(indices < 0, indices + n_columns, indices)


def take_2d(x: Tensor, indices: Tensor) -> Tensor:
    """Row-wise gather: ``out[i, j] = x[i, indices[i, j]]``.

    Args:
        x: Tensor[N, M].
        indices: integer Tensor[N, P]; a row may repeat an index (the element is taken again).

    Returns:
        Tensor[N, P] of ``x``'s dtype.
    """
    _check_rows("x", x, "indices", indices)
    return torch.gather(x, 1, _column_ids(indices, x.shape[1]).to(x.device))


def assign_2d(x: Tensor, indices: Tensor, new_values: Tensor) -> Tensor:
    """Row-wise scatter, in place: ``x[i, indices[i, j]] = new_values[i, j]``; returns ``x``.

    Args:
        x: Tensor[N, M] (modified).
        indices: integer Tensor[N, P], ``P <= M``.
        new_values: Tensor[N, P].

    >>> assign_2d(torch.zeros(2, 3), torch.tensor([[0], [2]]), torch.tensor([[5.0], [7.0]]))
    tensor([[5., 0., 0.],
            [0., 0., 7.]])
    """
    _check_rows("x", x, "indices", indices)
    if indices.shape != new_values.shape:
        raise InvalidInputError(
            f"`indices` and `new_values` must have the same shape, got {list(indices.shape)} and "
            f"{list(new_values.shape)}"
        )
    ids = _column_ids(indices, x.shape[1]).to(x.device)
    x.scatter_(1, ids, new_values.to(device=x.device, dtype=x.dtype))
    return x


def cat_two_sorted_tensors_and_keep_it_sorted(x1: Tensor, x2: Tensor, eps: float = 1e-6) -> Tensor:
    """Concatenates row-wise ascending ``x1 [N, M]`` and ``x2 [N, P]`` into ascending rows ``[N, M + P]``.

    Where a row of ``x1`` ends above the first value of ``x2``, that row of ``x1`` is rescaled by
    ``x2[:, 0] / x1[:, -1]`` and shifted down by ``eps`` (its order is kept, and it stays in front of
    ``x2``). ``x1`` is modified in place, as in OML. The result is float32.

    >>> cat_two_sorted_tensors_and_keep_it_sorted(torch.tensor([[1.0, 4.0]]), torch.tensor([[2.0, 3.0]]), eps=0.0)
    tensor([[0.5000, 2.0000, 2.0000, 3.0000]])
    """
    if eps < 0:
        raise InvalidInputError(f"`eps` must be non-negative, got {eps}")
    if not x1.numel():
        return x2
    if not x2.numel():
        return x1
    if x1.shape[0] != x2.shape[0]:
        raise InvalidInputError(
            f"`x1` and `x2` must have the same number of rows, got {x1.shape[0]} and {x2.shape[0]}"
        )
    need = x1[:, -1] > x2[:, 0]
    scale = (x2[:, 0] / x1[:, -1]).to(x1.dtype)
    x1[need] = x1[need] * scale[need, None] - eps
    return torch.cat([x1, x2], dim=1).float()


def pairwise_dist(x1: Tensor, x2: Tensor, p: int = 2) -> Tensor:
    """``p``-norm distances between all rows: ``x1 [N, D]``, ``x2 [M, D]`` -> ``[N, M]``.

    ``p == 2`` runs the compiled ``oml_fast.pairwise_distance`` op (exact for near-identical rows);
    other ``p`` use ``torch.cdist``.
    """
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise InvalidInputError(
            f"`x1` and `x2` must be 2-D with the same number of columns, got {list(x1.shape)} and {list(x2.shape)}"
        )
    if p == 2 and x1.dtype == x2.dtype and x1.dtype in (torch.float32, torch.float64):
        return pairwise_distance(x1, x2, "euclidean")
    return torch.cdist(x1, x2, p=p)


def normalise(x: Tensor, p: int = 2) -> Tensor:
    """Rows of ``x [N, D]`` divided by their ``p``-norm (the norm is not differentiated through, as in OML)."""
    if x.ndim != 2:
        raise InvalidInputError(f"`x` must be 2-D, got shape {list(x.shape)}")
    norms = torch.linalg.vector_norm(x, ord=p, dim=1).detach()
    return x / norms[:, None]


def get_device(model: nn.Module) -> str:
    """The device of ``model``'s first parameter (or buffer) as a string; ``"cpu"`` for a model without any."""
    for tensor in (*model.parameters(), *model.buffers()):
        return str(tensor.device)
    return "cpu"


def is_sorted_tensor(x: Tensor) -> bool:
    """Whether 1-D ``x`` is ascending, treating steps within ``10 * eps`` of the dtype as equal values."""
    if x.ndim != 1:
        raise InvalidInputError(f"`x` must be 1-D, got shape {list(x.shape)}")
    if len(x) < 2:
        return True
    steps = x[1:] - x[:-1]
    tolerance = 10 * torch.finfo(x.dtype).eps if x.dtype.is_floating_point else 0
    return bool(((steps >= 0) | (steps.abs() < tolerance)).all())


def unique_by_ids(ids: list[int], data: TData) -> tuple[list[int], TData]:
    """Sorts ``data`` by ``ids`` and keeps the first record of each id.

    Args:
        ids: list of ``N`` integer ids.
        data: ``N`` records (list, tuple, array or tensor indexed along the first axis).

    Returns:
        ``(sorted unique ids, their records)``; a list or tuple comes back as a list.

    >>> unique_by_ids([2, 0, 2, 1], ["c", "a", "c'", "b"])
    ([0, 1, 2], ['a', 'b', 'c'])
    """
    if not isinstance(ids, list) or not ids:
        raise InvalidInputError(
            f"`ids` must be a non-empty list, got {type(ids).__name__} of length {len(ids)}"
        )
    if len(ids) != len(data):
        raise InvalidInputError(f"`ids` and `data` must have the same length, got {len(ids)} and {len(data)}")
    unique_ids, first_positions = np.unique(np.asarray(ids), return_index=True)
    if isinstance(data, (list, tuple)):
        picked: Any = [data[i] for i in first_positions]
    elif isinstance(data, Tensor):
        picked = data[torch.from_numpy(first_positions).to(data.device)]
    else:
        picked = data[first_positions]
    return unique_ids.tolist(), picked


@contextmanager
def temporary_setting_model_mode(model: nn.Module, set_train: bool) -> Iterator[nn.Module]:
    """Puts ``model`` in train (``True``) or eval (``False``) mode inside the block, then restores its mode."""
    was_training = model.training
    model.train(set_train)
    try:
        yield model
    finally:
        model.train(was_training)


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (Tensor, np.ndarray)):
        return value.ndim > 0
    try:
        len(value)
    except TypeError:
        return False
    return True


class OnlineCalc(ABC):
    """A statistic of a stream of numbers; ``result`` holds its current value.

    ``update`` takes one number or a sequence of them (list, tuple, array, tensor).
    """

    def __init__(self, val: TOnlineValues | None = None):
        self.result: float = 0.0
        if val is not None:
            self.update(val)

    def update(self, val: TOnlineValues) -> None:
        if _is_sequence(val):
            self.calc_with_batch(val)  # type: ignore[arg-type]
        else:
            self.calc_with_single_value(val)  # type: ignore[arg-type]

    def calc_with_single_value(self, val: TSingleValues) -> None:
        self.calc_with_batch([val])  # type: ignore[list-item]

    @abstractmethod
    def calc_with_batch(self, val: TSequenceValues) -> None:
        """Feeds a sequence of values."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"


class AvgOnline(OnlineCalc):
    """Running mean. ``AvgOnline([1, 2]).update(6)`` -> ``result == 3``.

    >>> calc = AvgOnline([1.0, 2.0]); calc.update(6.0); calc.result
    3.0
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self.n = 0
        super().__init__(*args, **kwargs)

    def calc_with_batch(self, val: TSequenceValues) -> None:
        n_new = len(val)
        if n_new == 0:
            return
        total = float(sum(val)) + self.result * self.n  # type: ignore[arg-type]
        self.n += n_new
        self.result = total / self.n


class SumOnline(OnlineCalc):
    """Running sum."""

    def calc_with_batch(self, val: TSequenceValues) -> None:
        self.result += float(sum(val))  # type: ignore[arg-type]


class OnlineDict(MutableMapping):  # type: ignore[type-arg]
    """A dict of :class:`OnlineCalc`: assigning a key starts a statistic, ``update`` feeds it, reading gives ``result``.

    >>> d = OnlineAvgDict({"loss": 1.0}); d.update({"loss": 3.0}); dict(d)
    {'loss': 2.0}
    """

    online_calculator: type[OnlineCalc]

    def __init__(self, input_dict: dict[Hashable, TOnlineValues] | None = None):
        self.dict: dict[Hashable, OnlineCalc] = {}
        if input_dict:
            self.update(input_dict)

    def __setitem__(self, key: Hashable, value: TOnlineValues) -> None:
        self.dict[key] = self.online_calculator(value)

    def __getitem__(self, key: Hashable) -> float:
        return self.dict[key].result

    def __delitem__(self, key: Hashable) -> None:
        del self.dict[key]

    def __len__(self) -> int:
        return len(self.dict)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.dict)

    def update(self, input_dict: dict[Hashable, TOnlineValues]) -> None:  # type: ignore[override]
        for key, value in input_dict.items():
            if key in self.dict:
                self.dict[key].update(value)
            else:
                self[key] = value

    def get_dict_with_results(self) -> dict[Hashable, float]:
        return dict(self.items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({ {k: v.result for k, v in self.dict.items()} })"


class OnlineAvgDict(OnlineDict):
    online_calculator = AvgOnline


class OnlineSumDict(OnlineDict):
    online_calculator = SumOnline


class PCA:
    """Principal component analysis of an embeddings matrix, on tensors (OML's ``PCA``).

    Fitted at construction on ``embeddings [N, D]`` through the SVD of the centred matrix
    ``X - mean = U S V^T``; the rows of ``V^T`` are the principal axes.

    Attributes:
        components: Tensor[K, D], ``K = min(N, D)`` (``D`` when ``N < D``): principal axes, by decreasing
            explained variance, each with its largest-magnitude coordinate positive (deterministic signs;
            they may differ in sign from scikit-learn's, which fixes signs on ``U``).
        singular_values: Tensor[K].
        explained_variance: Tensor[K], ``S**2 / (N - 1)``, the covariance eigenvalues.
        explained_variance_ratio: Tensor[K], the above divided by its sum.
        mean: Tensor[1, D], the per-feature mean.

    >>> embeddings = torch.rand(100, 5)
    >>> pca = PCA(embeddings)
    >>> torch.allclose(pca.inverse_transform(pca.transform(embeddings)), embeddings, atol=1e-5)
    True
    >>> PCA(torch.eye(4, 10)).calc_principal_axes_number(pcf_variance=(0.5, 1))
    tensor([2, 5])
    """

    components: Tensor
    mean: Tensor
    singular_values: Tensor
    explained_variance: Tensor
    explained_variance_ratio: Tensor

    def __init__(self, embeddings: Tensor):
        """
        Args:
            embeddings: Tensor[N, D] of floats, ``N >= 2``.
        """
        self._fit(embeddings)

    def _fit(self, embeddings: Tensor) -> None:
        if embeddings.ndim != 2 or embeddings.shape[0] < 2:
            raise InvalidInputError(
                f"`embeddings` must be 2-D with at least 2 rows, got shape {list(embeddings.shape)}"
            )
        n_samples, dim = embeddings.shape
        self.mean = embeddings.mean(dim=0, keepdim=True)
        centred = embeddings - self.mean
        # With fewer rows than columns, the full V is needed to have D axes (as OML and scikit-learn).
        _, self.singular_values, self.components = torch.linalg.svd(centred, full_matrices=n_samples < dim)
        self.explained_variance = self.singular_values**2 / (n_samples - 1)
        self.explained_variance_ratio = self.explained_variance / self.explained_variance.sum()
        largest = self.components.abs().argmax(dim=1, keepdim=True)
        signs = torch.sign(self.components.gather(1, largest))
        self.components = self.components * torch.where(signs == 0, torch.ones_like(signs), signs)

    def _check_dimensions(self, n_components: int) -> None:
        if n_components > self.components.shape[0]:
            raise InvalidInputError(
                f"The embeddings cannot be transformed: expected at most {self.components.shape[0]} components, "
                f"got {n_components}"
            )

    def transform(self, embeddings: Tensor, n_components: int | None = None) -> Tensor:
        """Projects ``embeddings [M, D]`` on the first ``n_components`` axes (all when ``None``): ``[M, n]``."""
        n_components = n_components or embeddings.shape[1]
        self._check_dimensions(n_components)
        centred = embeddings.to(self.mean) - self.mean
        return (centred @ self.components[:n_components].T).to(embeddings)

    def inverse_transform(self, embeddings: Tensor) -> Tensor:
        """Maps ``embeddings [M, n]`` (``n <= D`` components) back to the original space: ``[M, D]``."""
        n_components = embeddings.shape[1]
        self._check_dimensions(n_components)
        return embeddings @ self.components[:n_components] + self.mean

    def calc_principal_axes_number(self, pcf_variance: Sequence[float]) -> Tensor:
        """For each fraction ``r`` in ``pcf_variance``, the number of leading axes needed to explain more than ``r``
        of the variance: the smallest ``n`` such that the first ``n - 1`` ratios sum to at most ``r`` and the
        first ``n`` to more (``D + 1`` can come out at ``r = 1``, as in OML). Returns LongTensor[len(pcf_variance)].
        """
        cumulative = torch.cumsum(self.explained_variance_ratio, dim=0)
        thresholds = torch.tensor(pcf_variance, dtype=cumulative.dtype, device=cumulative.device)
        return torch.searchsorted(cumulative, thresholds, right=True) + 1


__all__ = [
    "elementwise_dist",
    "cat_two_sorted_tensors_and_keep_it_sorted",
    "pairwise_dist",
    "OnlineCalc",
    "AvgOnline",
    "SumOnline",
    "OnlineDict",
    "OnlineAvgDict",
    "OnlineSumDict",
    "take_2d",
    "assign_2d",
    "PCA",
    "unique_by_ids",
    "normalise",
    "is_sorted_tensor",
    "get_device",
    "temporary_setting_model_mode",
]
