"""benchmarks/run_all.py: tables parsed from a script's output, and ratios between two runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
assert _spec is not None and _spec.loader is not None
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)

OUTPUT = """torch 2.13.0, 2 threads
| N = M | D | oml_fast s (GFLOP/s) | oml_fast / GEMM |
|---|---|---|---|
| 1000 | 64 | 0.0400 (3) | 2.50 |
| 2000 | 64 | 0.0480 (11) | 2.15 |
skipped peer 'oml': not installed
|      N |    D | method   | seconds |
|--------|------|----------|---------|
|   5000 |  128 | oml_fast |   0.200 |
"""


def test_tables_are_parsed_with_their_cells():
    tables = run_all.parse_tables(OUTPUT)
    assert [t["header"] for t in tables] == [
        ["N = M", "D", "oml_fast s (GFLOP/s)", "oml_fast / GEMM"],
        ["N", "D", "method", "seconds"],
    ]
    assert tables[0]["rows"][1] == ["2000", "64", "0.0480 (11)", "2.15"]
    assert tables[1]["rows"] == [["5000", "128", "oml_fast", "0.200"]]


def test_compare_matches_rows_by_key_cells_and_divides_decimal_cells(tmp_path):
    old = {"benchmarks": {"bench_x": {"tables": run_all.parse_tables(OUTPUT)}}}
    new_output = OUTPUT.replace("0.0480 (11)", "0.0240 (22)").replace("0.200", "0.300")
    new = {"benchmarks": {"bench_x": {"tables": run_all.parse_tables(new_output)}}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    lines = run_all.compare(json.loads(path.read_text()), new)
    assert "bench_x [N = M=2000, D=64]: oml_fast s (GFLOP/s) 0.50x, oml_fast / GEMM 1.00x" in lines
    assert "bench_x [N=5000, D=128, method=oml_fast]: seconds 1.50x" in lines
    assert len(lines) == 3
