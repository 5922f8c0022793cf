"""The performance benchmarks (docs/benchmarks.md) run at toy sizes and print every shape.

Each script runs in a process of its own, but for the one wrong answer (the
benchmarks put benchmarks/ on sys.path: their module names -- run, queries --
must not stay in the test session), over data generated into a temporary
folder ($SEGQL_BENCH_DATA).  Timings are not checked, only that the tables are
complete, the engines' answers are compared, and a wrong answer fails.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("polars")

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SIZE = ["--customers", "20000", "--orders", "80000"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **os.environ,
        "SEGQL_BENCH_DATA": str(tmp_path_factory.mktemp("bench_data")),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }


def bench(env: dict[str, str], script: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCH / script), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)


def test_run_prints_every_shape_and_the_floor(env: dict[str, str]) -> None:
    done = bench(env, "run.py", *SIZE, "--repeat", "1", "--only", "numeric", "--no-memory")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("numeric/IN conjunction"))
    assert [lines[row + k][25:33].strip() for k in range(3)] == ["count", "members", "flags"]
    assert "floor ms" in out and "segql/floor" in out and "read bandwidth" in out
    assert "MISMATCH" not in out
    assert "worst segql/best peer per shape: count" in lines[-1]
    assert "members" in lines[-1] and "flags" in lines[-1]


def test_peak_memory_is_measured_in_a_fresh_process(env: dict[str, str]) -> None:
    # What run.py does per engine and query unless --no-memory (one engine here: each is a process).
    done = bench(env, "run.py", *SIZE, "--memory-child", "segql:numeric/IN conjunction")
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["baseline"] > 0 and figures["peak_growth"] >= 0


def test_a_wrong_count_fails_loudly(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process (no start-up to pay), then the benchmark's modules are forgotten again.
    monkeypatch.setenv("SEGQL_BENCH_DATA", env["SEGQL_BENCH_DATA"])
    monkeypatch.setattr(sys, "path", [str(BENCH), *sys.path])
    names = ("run", "generate", "queries", "shapes")
    assert not any(name in sys.modules for name in names)
    try:
        run = importlib.import_module("run")
        right = run.segql_count
        # segql's count made wrong by one: the run must say MISMATCH and exit 1.
        monkeypatch.setattr(run, "segql_count", lambda *a, **k: {n: v + 1 for n, v in right(*a, **k).items()})
        status = run.main([*SIZE, "--repeat", "1", "--only", "relative", "--no-memory"])
    finally:
        for name in names:
            sys.modules.pop(name, None)
    out = capsys.readouterr().out
    assert status == 1
    assert "MISMATCH" in out and "FAILED" in out


@pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="needs GNU time for the peak memory")
def test_end_to_end_compares_the_cli_with_duckdb(env: dict[str, str]) -> None:
    done = bench(env, "end_to_end.py", *SIZE, "--runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()}
    assert {"start-up", "count (4 segments)", "run -o out.parquet", "changes -o out"} <= set(rows)
    assert "MISMATCH" not in done.stdout
    assert "sizes [" in rows["count (4 segments)"] and "sizes [" in rows["run -o out.parquet"]
    assert "recent_big exited" in rows["changes -o out"]
    floor = next(line for line in done.stdout.splitlines() if line.startswith("decode floor"))
    assert float(floor.rsplit(":", 1)[1].split()[0]) > 0
    ratios = next(line for line in done.stdout.splitlines() if line.startswith("count / decode floor:"))
    assert "segql" in ratios and "DuckDB" in ratios


def test_fixed_costs_prints_every_piece_and_a_profile(env: dict[str, str]) -> None:
    done = bench(env, "fixed_costs.py", "--sizes", "10000", "--repeat", "1", "--profile", "1", "--top", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.strip().startswith("customers"))
    for piece in ("compile", "bind cold", "bind warm", "evaluate", "output", "one-shot", "count", "members"):
        assert piece in header
    assert sum(line.strip().startswith("10,000") for line in done.stdout.splitlines()) == 3
    assert "most own time" in done.stdout and "import segql" in done.stdout
