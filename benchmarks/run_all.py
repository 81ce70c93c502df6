"""Runs every benchmark script and keeps its tables as JSON, so a rerun can be compared with the last.

Each ``bench_*.py`` prints markdown tables; this runner runs them one after another (each in its own
process, with the arguments below), parses every table of their output and writes

    <out>/results.json   {"machine": {...}, "benchmarks": {script: {"argv", "seconds", "tables"}}}
    <out>/<script>.md    the script's own output, as printed

A table is ``{"header": [...], "rows": [[cell, ...], ...]}`` with the cells as printed.

    python benchmarks/run_all.py [--out benchmarks/results/latest] [--only bench_distance ...] [--quick]
    python benchmarks/run_all.py --compare old/results.json [--out new]   # prints new/old ratios
    python benchmarks/run_all.py --compare old/results.json --against new/results.json   # no rerun

``--compare`` matches rows of the same script, table and key columns (the cells that are integers or
words: N, D, k, method, ...) and prints, for every column whose cells are decimal numbers (seconds,
ratios, MB), new / old. Timings on shared machines move by tens of per cent: compare the within-run
ratio columns (``x GEMM``, ``oml_fast / GEMM``) first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> (arguments of the full run, arguments of a --quick run)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_distance": ([], ["--sizes", "1000", "2000", "--dims", "128"]),
    "bench_knn": ([], ["--n", "5000", "--dim", "128", "--k", "10", "--repeats", "1"]),
    "bench_knn_bf16": ([], ["--n", "5000", "--repeats", "1"]),
    "bench_mining": ([], ["--sizes", "128", "512", "--repeats", "3"]),
    "bench_embedding_metrics": ([], ["--n", "5000", "--repeats", "1"]),
    "bench_scale_out": ([], ["--n", "5000", "--world-sizes", "1", "2"]),
}

_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d*\.\d+(?:[eE][-+]?\d+)?")


def parse_tables(text: str) -> list[dict]:
    """Markdown tables of a script's output: consecutive ``|``-lines, the second one a ``|---|`` rule."""
    tables: list[dict] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            block.append(line.strip())
            continue
        if len(block) >= 2 and set(block[1].replace("|", "").strip()) <= set("-: "):
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            tables.append({"header": cells[0], "rows": cells[2:]})
        block = []
    return tables


def machine() -> dict:
    """What the numbers were measured on (the CPU model and flags that matter, torch's build)."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
        flags = re.search(r"flags\s*:\s*(.*)", cpuinfo)
        info["cpu"] = model.group(1) if model else "unknown"
        wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
        info["isa"] = [f for f in wanted if flags and f in flags.group(1).split()]
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def run(names: list[str], quick: bool, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "benchmarks": {}}
    for name in names:
        argv = [sys.executable, str(HERE / f"{name}.py"), *BENCHMARKS[name][1 if quick else 0]]
        print(f"== {name}: {' '.join(argv[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        (out / f"{name}.md").write_text(
            proc.stdout + (f"\n\nstderr:\n{proc.stderr}" if proc.returncode else "")
        )
        entry = {"argv": argv[1:], "seconds": round(seconds, 1), "returncode": proc.returncode}
        entry["tables"] = parse_tables(proc.stdout)
        if proc.returncode:
            entry["error"] = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
            print(f"   failed ({proc.returncode}): {entry['error'][0]}", flush=True)
        results["benchmarks"][name] = entry
        print(f"   {len(entry['tables'])} table(s) in {seconds:.0f} s", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'results.json'}")
    return results


def _key_and_values(header: list[str], row: list[str]) -> tuple[tuple[str, ...], dict[str, float]]:
    """Key cells (integers and words) and value cells (decimal numbers, e.g. '0.0123 (456)' -> 0.0123)."""
    key, values = [], {}
    for name, cell in zip(header, row, strict=False):
        match = _DECIMAL.match(cell)
        if match and not _INT.match(cell):
            values[name] = float(match.group(0))
        else:
            key.append(f"{name}={cell}")
    return tuple(key), values


def compare(old: dict, new: dict) -> list[str]:
    """Lines of new / old ratios for every matched row and decimal column."""
    lines = []
    for name, new_entry in new["benchmarks"].items():
        old_entry = old["benchmarks"].get(name)
        if old_entry is None:
            lines.append(f"{name}: not in the old run")
            continue
        for index, table in enumerate(new_entry["tables"]):
            if index >= len(old_entry["tables"]):
                break
            old_table = old_entry["tables"][index]
            old_rows = dict(_key_and_values(old_table["header"], r) for r in old_table["rows"])
            for row in table["rows"]:
                key, values = _key_and_values(table["header"], row)
                before = old_rows.get(key)
                if before is None:
                    continue
                ratios = [
                    f"{column} {value / before[column]:.2f}x"
                    for column, value in values.items()
                    if column in before and before[column] != 0
                ]
                if ratios:
                    lines.append(f"{name} [{', '.join(key)}]: " + ", ".join(ratios))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every script")
    parser.add_argument("--compare", type=Path, help="an earlier results.json to compare with")
    parser.add_argument("--against", type=Path, help="compare this results.json instead of running")
    args = parser.parse_args(argv)
    if args.against:
        if not args.compare:
            parser.error("--against needs --compare OLD")
        new = json.loads(args.against.read_text())
    else:
        new = run(args.only, args.quick, args.out)
    if args.compare:
        old = json.loads(args.compare.read_text())
        print("\n".join(compare(old, new)) or "no matching rows")


if __name__ == "__main__":
    main()
