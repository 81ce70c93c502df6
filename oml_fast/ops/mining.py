"""``hard_mining``: typed wrapper and fake kernel of the compiled op."""

from __future__ import annotations

import torch
from torch import Tensor

from . import checks

__all__ = ["hard_mining"]


def hard_mining(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str = "euclidean",
    anchor_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per anchor, the ``n_positive`` farthest same-label items and the ``n_negative`` nearest others.

    One fused pass over the batch: inner products are computed tile by tile (GEMM) and reduced at once,
    so memory is ``O(B * (n_positive + n_negative))`` plus a fixed tile buffer; the ``B x B`` distance
    matrix is never kept. Indices only (not differentiable): losses recompute the few selected
    distances themselves.

    Args:
        embeddings (Tensor[B, D]): float32 / float64 (float16 / bfloat16 are reduced in float32, on every
            device). Gradients are not tracked (the input is used detached). NaN or inf values raise a
            ``ValueError`` (reads the data: the op's one device sync on CUDA; while a CUDA graph is being
            captured it is a device-side assert instead); the miners and losses built on this op handle
            such batches themselves (docs/hostile_inputs.md, "NaN policy").
        labels (Tensor[B]): integer labels; integer tensors of other widths are widened to int64, lists
            and numpy arrays converted (:func:`oml_fast.ops.checks.labels_to_tensor`); float or bool
            tensors are rejected (``TypeError``).
        n_positive: positives per anchor, ``0 <= n_positive <= max(B, 65536)`` (columns past ``B - 1`` are
            padding; larger counts are rejected before the outputs are allocated).
        n_negative: negatives per anchor, with the same bounds.
        metric: ``"euclidean"`` (default), ``"sqeuclidean"``, ``"cosine"`` or ``"dot"`` (as in
            :func:`oml_fast.ops.pairwise_distance`).
        anchor_mask (Tensor[B] bool, optional): ``True`` where the row may be an anchor; other rows
            get ``-1`` everywhere (they can still be positives and negatives of other anchors).

    Returns:
        ``(positives, negatives)``: ``Tensor[B, n_positive]`` and ``Tensor[B, n_negative]`` int64,
        hardest first (positives by decreasing, negatives by increasing distance), ties broken by the
        smaller index, padded with ``-1`` when an anchor has fewer candidates. An anchor is never its
        own positive (other items identical to it are). Items at a NaN distance (an overflow) are never
        selected.
        Deterministic and exact on every device: the GEMM only screens (every item whose key lies within
        the GEMM's proven error band of the n-th best is kept); the choice and its order come from
        float64 keys computed from the rows (squared distances from the differences for the euclidean
        metrics, ``-<x, y>`` of the unit rows for cosine and of the rows for dot), bitwise the same on the CPU
        and on CUDA (cosine: up to the rounding of the row normalisation, which each device computes),
        whatever the GEMM's precision (TF32 included).

    >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0], [10.0]])
    >>> pos, neg = hard_mining(x, torch.tensor([0, 0, 1, 1, 1]), n_positive=2, n_negative=1)
    >>> pos.tolist()
    [[1, -1], [0, -1], [4, 3], [4, 2], [2, 3]]
    >>> neg.flatten().tolist()
    [2, 2, 1, 1, 1]
    """
    # Tensors are only widened (int32 -> int64): their shape and dtype are the op's to check, so that a
    # bad tensor gets the op's error in eager and compiled mode alike (the converter reads values).
    if not isinstance(labels, Tensor):
        labels = checks.labels_to_tensor(labels, device=embeddings.device)
    elif not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool):
        labels = labels.long()
    return torch.ops.oml_fast.hard_mining.default(
        embeddings.detach(), labels, int(n_positive), int(n_negative), metric, anchor_mask
    )


@torch.library.register_fake("oml_fast::hard_mining")
def _hard_mining_fake(
    embeddings: Tensor,
    labels: Tensor,
    n_positive: int,
    n_negative: int,
    metric: str = "euclidean",
    anchor_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    if not checks.checks_deferred():
        checks.check_hard_mining_inputs(embeddings, labels, n_positive, n_negative, metric, anchor_mask)
    batch = embeddings.shape[0] if embeddings.dim() > 0 else 0
    # A negative count (an error at run time) gets one column, not an empty output: Inductor drops ops
    # whose outputs are empty, and with them the error.
    positives = embeddings.new_empty((batch, n_positive if n_positive >= 0 else 1), dtype=torch.long)
    negatives = embeddings.new_empty((batch, n_negative if n_negative >= 0 else 1), dtype=torch.long)
    return positives, negatives


# ---- _triplet_distances (private): the triplet losses' distances, read from the batch ----------------


@torch.library.register_fake("oml_fast::_triplet_distances")
def _triplet_distances_fake(
    embeddings: Tensor, anchors: Tensor | None, positives: Tensor, negatives: Tensor
) -> tuple[Tensor, Tensor]:
    n = positives.shape[0] if positives.dim() == 1 else 0
    return embeddings.new_empty((n,)), embeddings.new_empty((n,))


@torch.library.register_fake("oml_fast::_triplet_distances_backward")
def _triplet_distances_backward_fake(
    grad_ap: Tensor,
    grad_an: Tensor,
    embeddings: Tensor,
    anchors: Tensor | None,
    positives: Tensor,
    negatives: Tensor,
    dist_ap: Tensor,
    dist_an: Tensor,
) -> Tensor:
    return torch.empty_like(embeddings)


def _triplet_distances_setup_context(ctx, inputs, output) -> None:
    embeddings, anchors, positives, negatives = inputs
    dist_ap, dist_an = output
    ctx.save_for_backward(embeddings, anchors, positives, negatives, dist_ap, dist_an)


def _triplet_distances_backward(ctx, grad_ap: Tensor | None, grad_an: Tensor | None):
    embeddings, anchors, positives, negatives, dist_ap, dist_an = ctx.saved_tensors
    grad_ap = torch.zeros_like(dist_ap) if grad_ap is None else grad_ap
    grad_an = torch.zeros_like(dist_an) if grad_an is None else grad_an
    if torch.is_grad_enabled():
        # backward(create_graph=True): the fused backward op has no derivative of its own (a second
        # derivative would silently come out as zero), so the same formula runs in differentiable ops.
        return _triplet_distances_backward_differentiable((grad_ap, grad_an), ctx.saved_tensors[:4])
    grad = torch.ops.oml_fast._triplet_distances_backward.default(
        grad_ap, grad_an, embeddings, anchors, positives, negatives, dist_ap, dist_an
    )
    return grad, None, None, None


def _triplet_distances_backward_differentiable(grads: tuple[Tensor, Tensor], inputs: tuple):
    """The backward formula in differentiable ops, for (embeddings, anchors, positives, negatives)."""
    grad_ap, grad_an = grads
    embeddings, anchors, positives, negatives = inputs
    rows = embeddings if anchors is None else embeddings.index_select(0, anchors)
    grad = torch.zeros_like(embeddings)
    for grad_end, ids in ((grad_ap, positives), (grad_an, negatives)):
        diff = rows - embeddings.index_select(0, ids)
        dist = torch.linalg.vector_norm(diff, dim=1)
        safe = torch.where(dist > 0, dist, torch.ones_like(dist))  # no 0 / 0 in the graph
        end = diff * torch.where(dist > 0, grad_end / safe, torch.zeros_like(dist))[:, None]
        grad = grad + (end if anchors is None else torch.zeros_like(embeddings).index_add(0, anchors, end))
        grad = grad.index_add(0, ids, -end)
    return grad, None, None, None


torch.library.register_autograd(
    "oml_fast::_triplet_distances",
    _triplet_distances_backward,
    setup_context=_triplet_distances_setup_context,
)
