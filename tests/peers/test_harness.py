"""The peers harness (benchmarks/peers.py) reports each optional peer, present or not.

Runs in a subprocess: the OML stand-ins register import hooks for torchvision & co., which must not
leak into the test session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import peers
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_available_peers_names_every_peer_with_a_version_or_a_reason():
    out = _run(
        """
        import sys; sys.path.insert(0, "benchmarks")
        import peers
        report = peers.available_peers()
        assert set(report) == {"oml", "pytorch_metric_learning", "faiss"}, report
        for name, info in report.items():
            assert info["available"] == (info["reason"] is None), (name, info)
            assert info["available"] or info["reason"], (name, info)
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


def test_stand_ins_serve_module_level_imports_and_base_classes():
    out = _run(
        """
        import sys; sys.path.insert(0, "benchmarks")
        import peers
        peers.OML_STAND_IN_PACKAGES = ("oml_fast_test_absent_pkg",)
        assert peers.install_oml_stand_ins() == ["oml_fast_test_absent_pkg"]
        from oml_fast_test_absent_pkg.ops import MLP
        import oml_fast_test_absent_pkg.transforms as T

        class Head(MLP):  # OML subclasses torchvision classes at module level
            pass

        Head(3, [4])
        assert T.InterpolationMode.BICUBIC is not None
        try:
            MLP(1, [2])(0)
        except RuntimeError as error:
            assert "stand-in" in str(error)
        else:
            raise AssertionError("calling a stand-in must fail loudly")
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


def test_oml_cross_check_runs_here():
    """Stands for the ``test_vs_oml_*.py`` modules, which conftest.py does not collect without OML."""
    reason = peers.why_oml_is_unavailable()
    if reason:
        pytest.skip(f"OML cross-check not run: {reason}")
