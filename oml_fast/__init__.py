"""oml_fast: metric learning with the API of open-metric-learning and compiled hot paths.

Importing the package loads the compiled op library (``torch.ops.oml_fast.*``) and registers
the fake kernels and autograd formulas of :mod:`oml_fast.ops`.
"""

from __future__ import annotations

import torch

__version__ = "0.1.0"

_REBUILD_HINT = (
    "Rebuild it against the installed torch with `pip install --no-build-isolation -e .` "
    "(or `bash scripts/setup.sh`) from the oml_fast source folder."
)

try:
    from . import _C  # type: ignore[attr-defined]  # noqa: F401  (loading the library registers the ops with the dispatcher)
except ImportError as error:  # missing file, or undefined symbols of another torch's ABI
    raise ImportError(
        f"oml_fast's compiled library `oml_fast._C` could not be loaded: {error}. It is missing or was "
        f"built for another torch than the installed {torch.__version__}. {_REBUILD_HINT}"
    ) from error

try:
    from ._build_info import TORCH_VERSION as _BUILT_FOR_TORCH
    from ._build_info import WITH_CUDA as WITH_CUDA
except ImportError:  # pragma: no cover - only when built by hand without setup.py
    _BUILT_FOR_TORCH, WITH_CUDA = torch.__version__, False

if _BUILT_FOR_TORCH.split("+")[0] != torch.__version__.split("+")[0]:
    raise ImportError(
        f"oml_fast._C was built for torch {_BUILT_FOR_TORCH}, but torch {torch.__version__} is installed. "
        f"{_REBUILD_HINT}"
    )

from . import ops  # noqa: E402  (registers fake kernels and autograd; needs _C loaded first)

__all__ = ["ops", "WITH_CUDA", "__version__"]
