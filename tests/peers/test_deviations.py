"""The deviation ids cited by the cross-checks and the table in docs/deviations_from_oml.md are one list.

Runs without OML (it reads files only).
"""

from __future__ import annotations

import re
from pathlib import Path

import deviations

DOC = Path(__file__).resolve().parents[2] / "docs" / "deviations_from_oml.md"
TESTS = Path(__file__).resolve().parent


def _ids_in_doc() -> list[str]:
    """The ids of the doc's tables: the first cell of a row, in backticks."""
    return re.findall(r"^\| `([a-z0-9-]+)` \|", DOC.read_text(), flags=re.MULTILINE)


def test_every_id_in_the_code_is_a_row_of_the_doc_and_back() -> None:
    in_doc = _ids_in_doc()
    in_code = [*deviations.DEVIATIONS, *deviations.OML_RAISES]
    assert len(in_doc) == len(set(in_doc)), f"an id appears twice in {DOC.name}: {sorted(in_doc)}"
    assert set(in_code) == set(in_doc), (
        f"only in tests/peers/deviations.py: {sorted(set(in_code) - set(in_doc))}; "
        f"only in {DOC.name}: {sorted(set(in_doc) - set(in_code))}"
    )


def test_every_id_cited_by_a_cross_check_is_known() -> None:
    """``adjusts_for`` checks its ids at import; this also covers ids cited as ``raises="..."``."""
    known = {*deviations.DEVIATIONS, *deviations.OML_RAISES}
    cited = {
        key
        for module in TESTS.glob("test_vs_oml_*.py")
        for key in re.findall(r"""(?:adjusts_for\(|raises=)([^)]*)""", module.read_text())
        for key in re.findall(r'"([a-z0-9-]+)"', key)
    }
    assert cited, "no citation found: has the citation syntax changed?"
    assert cited <= known, f"cited but not documented: {sorted(cited - known)}"
