"""Prints criterion's results as a table: each benchmark, its median time and
its ratio against the baseline of its group, measured in the same run.

A group's baseline is its benchmark whose name starts with `baseline`.

    python3 tests/bench_ratios.py [--since STAMP_FILE] [CRITERION_DIR]

CRITERION_DIR defaults to target/criterion. With --since, only results
written after STAMP_FILE was are read, so that results of benchmarks that
were not run this time are left out. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    group: str
    name: str
    median_ns: float
    elements: int | None
    written: float


def load(criterion_dir: Path, since: float | None = None) -> list[Result]:
    """The results under `criterion_dir`, in the order they were written."""
    results = []
    for estimates in criterion_dir.glob("**/new/estimates.json"):
        written = estimates.stat().st_mtime
        if since is not None and written < since:
            continue
        benchmark = json.loads((estimates.parent / "benchmark.json").read_text())
        throughput = benchmark.get("throughput") or {}
        results.append(
            Result(
                group=benchmark["group_id"],
                name=benchmark.get("function_id") or benchmark["group_id"],
                median_ns=json.loads(estimates.read_text())["median"]["point_estimate"],
                elements=throughput.get("Elements"),
                written=written,
            )
        )
    results.sort(key=lambda r: r.written)
    return results


def format_ns(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.1f} ns"


def table(results: list[Result]) -> str:
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    rows = [("benchmark", "median", "per item", "ratio to the group's baseline")]
    for group, members in groups.items():
        baseline = next((r for r in members if r.name.startswith("baseline")), None)
        for r in members:
            per_item = (
                format_ns(r.median_ns / r.elements) if r.elements and r.elements > 1 else ""
            )
            if baseline is None or r is baseline:
                ratio = "(baseline)" if r is baseline else ""
            else:
                ratio = f"{r.name} / {baseline.name} = {r.median_ns / baseline.median_ns:.2f}x"
            rows.append((f"{group}/{r.name}", format_ns(r.median_ns), per_item, ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]
        lines.append("  ".join(cells + [row[3]]).rstrip())
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("criterion_dir", nargs="?", default="target/criterion", type=Path)
    parser.add_argument("--since", type=Path, help="only results newer than this file")
    args = parser.parse_args(argv)
    since = args.since.stat().st_mtime if args.since else None
    results = load(args.criterion_dir, since)
    if not results:
        print(f"no criterion results in {args.criterion_dir}", file=sys.stderr)
        return 1
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
