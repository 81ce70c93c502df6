"""Docs do not drift from the code: every ``docs/<page>`` the code cites exists, and doc examples run."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where citations are looked for: the code, its tests, benchmarks and scripts, and the README.
SCANNED = ("oml_fast", "csrc", "tests", "benchmarks", "scripts", "README.md")
SUFFIXES = {".py", ".h", ".cpp", ".cu", ".cuh", ".sh", ".md", ".txt", ".yaml", ".toml", ".cfg"}
# `docs/x.md` (also inside `../docs/x.md` or `[..](docs/x.md)`), but not `shared/docs/...`.
CITATION = re.compile(r"(?<![\w./-])(?:\.\./)?docs/([\w./-]+?\.md)\b")
# Pages being written elsewhere; drop an entry once its page lands.
PENDING: set[str] = set()


def _files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in SUFFIXES]
    this_file = Path(__file__).resolve()
    return [p for p in files if "__pycache__" not in p.parts and ".egg-info" not in str(p) and p != this_file]


def _citations() -> list[tuple[str, str]]:
    found = []
    for path in _files():
        text = path.read_text(errors="replace")
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_code_cites_docs() -> None:
    # Guards the scanner itself: the ops and functional modules cite metrics.md.
    assert any(page == "metrics.md" for _, page in _citations())


def test_every_cited_doc_exists() -> None:
    missing = [
        f"{where}: docs/{page}" for where, page in _citations() if not (ROOT / "docs" / page).is_file()
    ]
    assert not missing, "cited pages that do not exist under docs/:\n" + "\n".join(missing)


def test_shared_docs_are_not_cited() -> None:
    # The repository's docs/ is the copy users have; ../shared/docs exists only on the project's machines.
    cited = []
    for path in _files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if "shared/docs" in line:
                cited.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not cited, "cite docs/<page> instead of ../shared/docs:\n" + "\n".join(cited)


def _doc_links() -> list[tuple[str, Path]]:
    links = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                links.append((page.name, (page.parent / target).resolve()))
    return links


def test_links_between_docs_resolve() -> None:
    broken = [
        f"docs/{page} -> {target.relative_to(ROOT)}"
        for page, target in _doc_links()
        if not target.exists() and target.name not in PENDING
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", ["config.md"])
def test_doc_examples_run(page: str) -> None:
    result = doctest.testfile(
        str(ROOT / "docs" / page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of docs/{page} failed"
    assert result.attempted > 0
