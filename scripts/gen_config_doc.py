"""Writes docs/config.md from the config schema, the shipped config groups and the registries."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's oml_fast, not an installed one

from oml_fast.pipelines.config_doc import render_config_doc  # noqa: E402

if __name__ == "__main__":
    path = ROOT / "docs" / "config.md"
    path.write_text(render_config_doc())
    print(f"wrote {path}")
