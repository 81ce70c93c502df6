"""State-dict helpers for checkpoints saved by OML, Lightning or the original authors, and OML's TorchScript
patchers for jitted models with a device or half precision baked in (OML's names).

>>> sd = {"model.norm.bias": 1, "model.head.weight": 2}
>>> remove_prefix_from_state_dict(sd, trial_key="norm.bias")
{'norm.bias': 1, 'head.weight': 2}
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, TypeVar

import torch

TStateDict = TypeVar("TStateDict", bound=MutableMapping[str, Any])

# Parameters of losses that Lightning checkpoints carry beside the model (OML's list).
CRITERION_KEYS = ("criterion.weight", "speaker_loss.weight")


def remove_criterion_in_state_dict(state_dict: TStateDict) -> TStateDict:
    """Drops the loss's parameters (``criterion.weight``, ...) from ``state_dict`` in place and returns it."""
    for key in CRITERION_KEYS:
        state_dict.pop(key, None)
    return state_dict


def find_prefix_in_state_dict(state_dict: MutableMapping[str, Any], trial_key: str) -> str:
    """The prefix in front of ``trial_key`` (e.g. ``"model."`` for ``"model.norm.bias"``), shared by every key.

    Raises ``KeyError`` when no key contains ``trial_key``, ``ValueError`` when some keys lack the prefix.
    """
    matching = [key for key in state_dict if trial_key in key]
    if not matching:
        raise KeyError(f"no key of the state dict contains '{trial_key}'; the keys are {list(state_dict)}")
    prefix = matching[0][: matching[0].index(trial_key)]
    other = [key for key in state_dict if not key.startswith(prefix)]
    if other:
        raise ValueError(f"keys without the prefix '{prefix}' found before '{trial_key}': {other}")
    return prefix


def remove_prefix_from_state_dict(state_dict: TStateDict, trial_key: str) -> TStateDict:
    """Strips from every key the prefix found in front of ``trial_key`` (see :func:`find_prefix_in_state_dict`).

    Works in place, keeping the order of the keys, and returns ``state_dict``.
    """
    prefix = find_prefix_in_state_dict(state_dict, trial_key)
    if prefix:
        items = list(state_dict.items())
        state_dict.clear()
        state_dict.update((key[len(prefix) :], value) for key, value in items)
    return state_dict


def filter_state_dict(state_dict: TStateDict, needed_keys: Iterable[str]) -> TStateDict:
    """Keeps only ``needed_keys`` in ``state_dict`` (in place) and returns it."""
    needed = set(needed_keys)
    for key in [key for key in state_dict if key not in needed]:
        del state_dict[key]
    return state_dict


# ----- TorchScript patchers (OML's, for jitted checkpoints with a device or half precision baked in) -----


def _graphs(module: Any) -> list[Any]:
    """The TorchScript graphs of ``module`` itself: its ``graph`` (when it has one) and ``forward1``'s."""
    try:
        graphs = [module.graph] if hasattr(module, "graph") else []
    except RuntimeError:  # a ScriptModule without forward has no graph
        graphs = []
    if hasattr(module, "forward1"):
        graphs.append(module.forward1.graph)
    return graphs


def patch_float(module: torch.nn.Module, float_node: torch.Node) -> None:
    """Rewrites, in the TorchScript graphs of ``module`` and its children, every ``aten::to`` whose dtype is
    half precision (the constant 5, ``torch.float16``) to the dtype constant of ``float_node`` (in place)."""
    for graph in _graphs(module):
        for node in graph.findAllNodes("aten::to"):
            inputs = list(node.inputs())
            for i in (1, 2):  # the dtype is the second or the third argument of aten::to
                if i < len(inputs) and "[value=5]" in repr(inputs[i]):
                    inputs[i].node().copyAttributes(float_node)
    for child in module.children():
        patch_float(child, float_node)


def patch_device(module: torch.nn.Module, device_node: torch.Node) -> None:
    """Rewrites, in the TorchScript graphs of ``module`` and its children, every CUDA device constant
    (``prim::Constant[value="cuda..."]``) to the device constant of ``device_node`` (in place)."""
    for graph in _graphs(module):
        for node in graph.findAllNodes("prim::Constant"):
            if "value" in node.attributeNames() and 'value="cuda' in repr(node):
                node.copyAttributes(device_node)
    for child in module.children():
        patch_device(child, device_node)


def patch_device_and_float(module: torch.nn.Module, device: str | torch.device = "cuda") -> None:
    """Makes a jitted model with a CUDA device (and half precision) baked in run on ``device``: the device
    constants become ``device``, and on ``"cpu"`` half-precision casts become float32 casts (in place)."""
    device_holder = torch.jit.trace(lambda: torch.ones([]).to(torch.device(device)), example_inputs=[])
    device_node = [n for n in device_holder.graph.findAllNodes("prim::Constant") if "Device" in repr(n)][-1]
    patch_device(module, device_node)
    if str(device) == "cpu":
        float_holder = torch.jit.trace(lambda: torch.ones([]).float(), example_inputs=[])
        float_node = list(float_holder.graph.findNode("aten::to").inputs())[1].node()
        patch_float(module, float_node)


__all__ = [
    "filter_state_dict",
    "find_prefix_in_state_dict",
    "remove_criterion_in_state_dict",
    "remove_prefix_from_state_dict",
    "patch_float",
    "patch_device",
    "patch_device_and_float",
]
