"""Model outputs over a whole dataset (OML's ``oml.inference``): embeddings, cached embeddings, pair scores.

Every function runs the model in eval mode under ``torch.no_grad`` (its mode is restored afterwards), in
batches of the dataset in its order, on the device of the model's parameters; the result is ordered by
dataset index. Inside an initialised ``torch.distributed`` process group, each rank runs its share of the
dataset (``patch_dataloader_to_ddp``) and every rank gets the whole result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from oml_fast.datasets.pairs import PairDataset
from oml_fast.ddp.patching import patch_dataloader_to_ddp
from oml_fast.ddp.utils import get_world_size_safe, is_ddp, sync_dicts_ddp
from oml_fast.errors import InvalidInputError
from oml_fast.interfaces.datasets import IBaseDataset, IIndexedDataset
from oml_fast.interfaces.models import IPairwiseModel
from oml_fast.utils.batches import inputs_to_device
from oml_fast.utils.misc_torch import get_device, temporary_setting_model_mode, unique_by_ids

logger = logging.getLogger(__name__)


def _check_loader_arguments(dataset: IIndexedDataset, batch_size: int, num_workers: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise InvalidInputError(f"`num_workers` must be a non-negative integer, got {num_workers!r}")
    if len(dataset) == 0:
        raise InvalidInputError(
            f"`dataset` ({type(dataset).__name__}) is empty: there is nothing to run the model on"
        )


@torch.no_grad()
def _inference(
    model: nn.Module,
    apply_model: Callable[[nn.Module, dict[str, Any]], Tensor],
    dataset: IIndexedDataset,
    num_workers: int,
    batch_size: int,
    verbose: bool,
    use_fp16: bool,
    accumulate_on_cpu: bool = True,
) -> Tensor:
    """``apply_model(model, batch)`` over every batch of ``dataset``; outputs concatenated by dataset index.

    Under DDP each rank gets a padded share of the dataset; the shares are gathered and the padding
    duplicates dropped by index, so every rank returns ``Tensor[len(dataset), ...]``.
    """
    _check_loader_arguments(dataset, batch_size, num_workers)
    loader = DataLoader(dataset=dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    if is_ddp():
        loader = patch_dataloader_to_ddp(loader)
    device = torch.device(get_device(model))
    batches = tqdm(loader, desc=str(device)) if verbose else loader
    outputs, ids = [], []
    # Half precision only where autocast has a float16 path worth having (CUDA); on CPU, like OML, the
    # model runs in its own precision.
    autocast = torch.autocast(
        device_type=device.type, dtype=torch.float16, enabled=use_fp16 and device.type == "cuda"
    )
    with autocast, temporary_setting_model_mode(model, set_train=False):
        for batch in batches:
            output = apply_model(model, batch)
            outputs.append(output.cpu() if accumulate_on_cpu else output)
            ids.extend(torch.as_tensor(batch[dataset.index_key]).long().tolist())
    result = torch.cat(outputs).detach()
    if is_ddp():
        synced = sync_dicts_ddp(
            {"outputs": result, "ids": ids}, world_size=get_world_size_safe(), device=result.device
        )
        ids, result = unique_by_ids(ids=synced["ids"], data=synced["outputs"])
    else:
        ids, result = unique_by_ids(ids=ids, data=result)
    if ids != list(range(len(dataset))):
        raise RuntimeError(
            f"The model outputs cover {len(ids)} distinct indices under `{dataset.index_key}`, expected every index "
            f"0..{len(dataset) - 1} once: the dataset must return its item index under `index_key`"
        )
    return result


@torch.no_grad()
def inference(
    model: nn.Module,
    dataset: IBaseDataset,
    batch_size: int,
    num_workers: int = 0,
    verbose: bool = False,
    use_fp16: bool = False,
    accumulate_on_cpu: bool = True,
) -> Tensor:
    """``model(batch[dataset.input_tensors_key])`` over the whole dataset, e.g. embeddings of an extractor.

    Args:
        model: any module; it runs on the device of its parameters (inputs are moved there).
        dataset: items with ``input_tensors_key`` and ``index_key`` (every ``oml_fast`` dataset).
        batch_size: items per forward pass. num_workers: DataLoader workers.
        verbose: show a progress bar.
        use_fp16: autocast to float16 on CUDA (ignored on CPU, as in OML).
        accumulate_on_cpu: move each batch's output to the CPU (otherwise it stays on the model's device).

    Returns:
        Tensor[len(dataset), ...]: row ``i`` is the output for ``dataset[i]``.

    >>> from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    >>> dataset = InMemoryQueryGalleryDataset(labels=[0, 1, 1], input_tensors=torch.eye(3))
    >>> inference(nn.Linear(3, 2), dataset, batch_size=2).shape
    torch.Size([3, 2])
    """
    device = get_device(model)
    key = dataset.input_tensors_key

    def apply(model_: nn.Module, batch: dict[str, Any]) -> Tensor:
        return model_(inputs_to_device(batch[key], device))

    return _inference(model, apply, dataset, num_workers, batch_size, verbose, use_fp16, accumulate_on_cpu)


def inference_cached(
    model: nn.Module,
    dataset: IBaseDataset,
    batch_size: int,
    num_workers: int = 0,
    use_fp16: bool = False,
    verbose: bool = True,
    accumulate_on_cpu: bool = True,
    cache_path: str = "inference_cache.pth",
) -> Tensor:
    """:func:`inference`, saved to ``cache_path``; when that file exists, its tensor is loaded instead.

    The cache holds a plain tensor (``torch.save``), loaded with ``weights_only=True`` on the CPU. A cache
    whose length differs from ``len(dataset)`` (made for another dataset) raises ``ValueError``.
    """
    path = Path(cache_path)
    if path.is_file():
        outputs = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(outputs, Tensor) or len(outputs) != len(dataset):
            found = f"{len(outputs)} rows" if isinstance(outputs, Tensor) else type(outputs).__name__
            raise InvalidInputError(
                f"`cache_path` {path} holds {found}, but the dataset has {len(dataset)} items: it was made for "
                "another dataset or model; delete it to recompute"
            )
        logger.info("Model outputs have been loaded from %s", path)
        return outputs
    outputs = inference(
        model=model,
        dataset=dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        verbose=verbose,
        use_fp16=use_fp16,
        accumulate_on_cpu=accumulate_on_cpu,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(outputs, path)
    logger.info("Model outputs have been saved to %s", path)
    return outputs


def pairwise_inference(
    model: IPairwiseModel,
    base_dataset: IBaseDataset,
    pair_ids: Sequence[tuple[int, int]],
    num_workers: int,
    batch_size: int,
    verbose: bool = True,
    use_fp16: bool = False,
    accumulate_on_cpu: bool = True,
) -> Tensor:
    """``model.predict(x1, x2)`` for every pair ``(i, j)`` of ``pair_ids`` (items of ``base_dataset``).

    Returns:
        Tensor[len(pair_ids)] (whatever ``predict`` returns per pair, in the order of ``pair_ids``).
    """
    n_items = len(base_dataset)
    bad = [pair for pair in pair_ids if len(pair) != 2 or not all(0 <= int(i) < n_items for i in pair)]
    if bad:
        raise InvalidInputError(
            f"`pair_ids` must be pairs of indices in [0, {n_items}) of `base_dataset`, got {bad[:5]}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        )
    device = get_device(model)
    dataset = PairDataset(base_dataset=base_dataset, pair_ids=pair_ids)
    key_1, key_2 = dataset.input_tensors_key_1, dataset.input_tensors_key_2

    def apply(model_: nn.Module, batch: dict[str, Any]) -> Tensor:
        x1, x2 = inputs_to_device(batch[key_1], device), inputs_to_device(batch[key_2], device)
        return model_.predict(x1, x2)  # type: ignore[operator]

    return _inference(model, apply, dataset, num_workers, batch_size, verbose, use_fp16, accumulate_on_cpu)


__all__ = ["inference", "inference_cached", "pairwise_inference"]
