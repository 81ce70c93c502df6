"""The registry dict: ``name -> class or factory``, with an error that lists the valid names.

``REGISTRY[name] = Class`` adds a custom entry (it is a plain ``dict`` otherwise). Looking up a
name that is not there raises :class:`RegistryError` (a ``KeyError``) whose message lists the
valid names, suggests the closest one, and says so when the name is one of OML's that
``oml_fast`` does not implement.

>>> reg = Registry("optimizers", {"sgd": object}, not_implemented=("lbfgs_cuda",))
>>> reg["sgdd"]
Traceback (most recent call last):
...
oml_fast.registry.base.RegistryError: unknown optimizers name 'sgdd' (did you mean 'sgd'?); valid names: ['sgd']
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class RegistryError(KeyError):
    """Unknown registered name, or an argument the class does not take. The message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def suggest(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(dict):  # type: ignore[type-arg]
    """A ``dict`` of registered names; a missing name raises :class:`RegistryError` listing the valid ones.

    Args:
        kind: what the entries are (``"extractors"``), for the messages.
        entries: the initial entries.
        not_implemented: OML's names of this registry that oml_fast does not implement (a lookup says so).
    """

    def __init__(self, kind: str, entries: Mapping[str, Any], not_implemented: Iterable[str] = ()):
        super().__init__(entries)
        self.kind = kind
        self.not_implemented = frozenset(not_implemented)

    def __missing__(self, name: str) -> Any:
        valid = sorted(self)
        if name in self.not_implemented:
            raise RegistryError(
                f"{self.kind} '{name}' exists in OML but is not implemented in oml_fast; valid names: {valid}"
            )
        raise RegistryError(
            f"unknown {self.kind} name '{name}'{suggest(str(name), valid)}; valid names: {valid}"
        )


def to_plain_dict(cfg: Any) -> dict[str, Any]:
    """A config block as a plain ``dict`` (OmegaConf ``DictConfig`` converted; mappings copied)."""
    if not isinstance(cfg, Mapping):
        try:  # omegaconf is an optional dependency (the `pipeline` extra)
            from omegaconf import OmegaConf

            if OmegaConf.is_config(cfg):
                return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        except ImportError:
            pass
        raise TypeError(f"a config block must be a mapping with `name` and `args`, got {cfg!r}")
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}


def block_name_args(cfg: Any, **runtime_args: Any) -> tuple[str, dict[str, Any]]:
    """``(name, args)`` of a ``{name, args}`` block, with ``runtime_args`` added to ``args``."""
    cfg = to_plain_dict(cfg)
    if "name" not in cfg:
        raise RegistryError(f"a config block needs the key `name` (and `args`), got {cfg!r}")
    args = dict(cfg.get("args") or {})
    args.update(runtime_args)
    return str(cfg["name"]), args


def accepted_kwargs(constructor: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that ``constructor`` takes (all of them when it takes ``**kwargs``)."""
    params = inspect.signature(constructor).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


__all__ = ["Registry", "RegistryError", "accepted_kwargs", "block_name_args", "suggest", "to_plain_dict"]
