"""tests/bench_ratios.py reads criterion's files and divides by the right
baseline; no benchmark is run here."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


@cache
def ratios() -> ModuleType:
    path = ROOT / "tests" / "bench_ratios.py"
    spec = importlib.util.spec_from_file_location("bench_ratios", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_result(root: Path, group: str, name: str, median_ns: float, mtime: int) -> None:
    new = root / group / name / "new"
    new.mkdir(parents=True)
    (new / "benchmark.json").write_text(
        json.dumps({"group_id": group, "function_id": name, "throughput": {"Elements": 1000}})
    )
    estimates = new / "estimates.json"
    estimates.write_text(json.dumps({"median": {"point_estimate": median_ns}}))
    os.utime(estimates, (mtime, mtime))


def test_each_benchmark_is_divided_by_its_own_groups_baseline(tmp_path: Path) -> None:
    write_result(tmp_path, "decode", "baseline_prost", 100.0, 1_000)
    write_result(tmp_path, "decode", "decode", 107.0, 1_001)
    write_result(tmp_path, "fit", "baseline_sha256", 2_000_000.0, 1_002)
    write_result(tmp_path, "fit", "fit_to", 3_000_000.0, 1_003)
    table = ratios().table(ratios().load(tmp_path))
    assert "decode / baseline_prost = 1.07x" in table
    assert "fit_to / baseline_sha256 = 1.50x" in table
    assert "3.00 ms" in table and "3.00 µs" in table  # per item of 1000


def test_results_older_than_the_run_are_left_out(tmp_path: Path) -> None:
    write_result(tmp_path, "decode", "baseline_prost", 100.0, 1_000)
    write_result(tmp_path, "decode", "stale", 500.0, 10)
    names = [r.name for r in ratios().load(tmp_path, since=500)]
    assert names == ["baseline_prost"]
