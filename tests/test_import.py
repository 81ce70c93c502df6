"""Importing oml_fast: the ops are registered, and a missing or mismatched build says how to rebuild."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import torch

import oml_fast

PACKAGE = Path(oml_fast.__file__).parent


def _import_copy(
    tmp_path: Path, keep_library: bool, built_for: str | None = None
) -> subprocess.CompletedProcess:
    ignore = shutil.ignore_patterns("__pycache__", *([] if keep_library else ["_C*.so"]))
    shutil.copytree(PACKAGE, tmp_path / "oml_fast", ignore=ignore)
    if built_for is not None:
        (tmp_path / "oml_fast" / "_build_info.py").write_text(
            f"TORCH_VERSION = {built_for!r}\nWITH_CUDA = False\n"
        )
    # An editable install's finder would resolve `oml_fast._C` to the real checkout: drop it so that
    # the copy is imported as a user's broken install would be.
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')];"
        " import oml_fast"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_ops_are_registered():
    for name in ["pairwise_distance", "knn", "retrieval_relevance", "retrieval_metrics", "hard_mining"]:
        assert hasattr(torch.ops.oml_fast, name)
    assert callable(oml_fast.ops.pairwise_distance)


def test_missing_library_says_how_to_rebuild(tmp_path):
    result = _import_copy(tmp_path, keep_library=False)
    assert result.returncode != 0
    assert "could not be loaded" in result.stderr and "pip install --no-build-isolation -e ." in result.stderr


def test_library_built_for_another_torch_says_so(tmp_path):
    result = _import_copy(tmp_path, keep_library=True, built_for="1.0.0")
    assert result.returncode != 0
    assert "built for torch 1.0.0" in result.stderr and "Rebuild" in result.stderr
