"""The cross-check against OML 4.0: every test here is marked ``peers``; the modules that call OML
(``test_vs_oml_*.py``) are not collected unless OML 4.x imports (``test_harness.py`` then reports
one skipped test with the reason, instead of one line per check).

OML lives in its own venv (``bash scripts/setup_peers.sh .venv-peers``), never in the project's.
``OML_FAST_REQUIRE_OML=1`` turns a missing OML into an error (CI sets it in the peers step, so that a
broken peers venv cannot pass as "all skipped").
"""

from __future__ import annotations

import os
from pathlib import Path

import peers
import pytest

HERE = Path(__file__).parent
OML_MODULES = "test_vs_oml_*.py"


OML_UNAVAILABLE = peers.why_oml_is_unavailable()
if OML_UNAVAILABLE and os.environ.get("OML_FAST_REQUIRE_OML") == "1":
    raise pytest.UsageError(f"OML_FAST_REQUIRE_OML=1 but {OML_UNAVAILABLE}")
collect_ignore_glob = [OML_MODULES] if OML_UNAVAILABLE else []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Random inputs make both sides warn as designed (queries without positives, FNMR's cost, ...);
    # those warnings are tested where they are raised, here they would only bury the summary.
    quiet = pytest.mark.filterwarnings("ignore::UserWarning")
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.peers)
        if item.path.match(OML_MODULES):
            item.add_marker(quiet)
