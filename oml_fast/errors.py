"""Exception classes shared by every layer: invalid input, and a missing optional extra.

``InvalidInputError`` is both a ``ValueError`` and an ``AssertionError``: OML checks many arguments with
``assert``, so code written for OML catches ``AssertionError``, while our own convention (and Python's) is
``ValueError`` for a bad value. Raising both keeps either ``except`` clause working.

``MissingExtraError`` is raised when a feature needs a package of an optional extra (``pipeline``:
pandas, lightning, omegaconf, matplotlib, pillow, ...); it names the extra to install. The core install
(``torch``, ``numpy``, ``tqdm``) imports none of them: modules that need one import it through
:func:`require_extra` where it is used.

This module imports nothing from the package, so that every other module may import it.

>>> isinstance(InvalidInputError("x"), ValueError), isinstance(InvalidInputError("x"), AssertionError)
(True, True)
>>> require_extra("json").__name__
'json'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

# Top-level module -> the extra of ``pyproject.toml`` that brings it.
EXTRA_OF_MODULE: dict[str, str] = {
    "pandas": "pipeline",
    "lightning": "pipeline",
    "pytorch_lightning": "pipeline",
    "omegaconf": "pipeline",
    "matplotlib": "pipeline",
    "PIL": "pipeline",
    "sklearn": "pipeline",
    "tensorboard": "pipeline",
    "transformers": "texts",
    "tokenizers": "texts",
    "soundfile": "audio",
    "albumentations": "albu",
    "cv2": "albu",
}


# Top-level module -> the name to install it by, where they differ.
DISTRIBUTION_OF_MODULE = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "pytorch_lightning": "lightning",
    "cv2": "opencv-python-headless",
}


class InvalidInputError(ValueError, AssertionError):
    """An argument has an invalid value (where OML asserts, so ``except AssertionError`` still works)."""


class MissingExtraError(ModuleNotFoundError):
    """A feature needs an optional package; the message names the extra that installs it."""


def missing_extra_message(module: str, feature: str | None = None) -> str:
    """The text of :class:`MissingExtraError` for ``module`` (a top-level package name).

    >>> missing_extra_message("pandas", "ImageLabeledDataset")
    "ImageLabeledDataset needs `pandas`, which oml_fast's core install does not bring: pip install 'oml_fast[pipeline]'"
    """
    top = module.split(".")[0]
    extra = EXTRA_OF_MODULE.get(top, "pipeline")
    who = feature or "this feature of oml_fast"
    return f"{who} needs `{DISTRIBUTION_OF_MODULE.get(top, top)}`, which oml_fast's core install does not bring: pip install 'oml_fast[{extra}]'"


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<where[name]>`` on first access of ``name``.

    For packages whose names need an optional extra: ``import package`` stays light, and the extra is
    imported (or :class:`MissingExtraError` raised) only when such a name is used.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(require_extra(f"{package}.{where[name]}", f"{package}.{name}"), name)

    return __getattr__


def require_extra(module: str, feature: str | None = None) -> ModuleType:
    """Imports ``module`` (e.g. ``"pandas"``), or raises :class:`MissingExtraError` naming the extra.

    Args:
        module: the module to import (``"lightning.pytorch"`` is fine; also a module of ours whose imports
            need an extra).
        feature: what needs it, for the message (e.g. ``"RetrievalResults.visualize"``).
    """
    try:
        return importlib.import_module(module)
    except MissingExtraError:
        raise
    except ModuleNotFoundError as error:
        # Only a missing optional package is translated; a missing submodule of ours is a bug to see as is.
        missing = (error.name or module).split(".")[0]
        if missing not in EXTRA_OF_MODULE:
            raise
        raise MissingExtraError(missing_extra_message(missing, feature), name=error.name) from error


__all__ = [
    "InvalidInputError",
    "MissingExtraError",
    "require_extra",
    "missing_extra_message",
    "EXTRA_OF_MODULE",
    "DISTRIBUTION_OF_MODULE",
]
