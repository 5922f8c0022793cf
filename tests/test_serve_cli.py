"""``segql serve`` as a real subprocess (the command line over uvicorn):
it starts on loopback, prints its URL, answers the page and the API (counts
checked against DuckDB SQL written by hand, downloads against a reference),
stops cleanly on SIGINT; ``--demo`` writes only its own file; bad flags are
usage errors; the load test runs at toy scale."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_serve_api import ORDERS, PROFILE, SOURCE, duck

import segql.serve
from segql import demo
from segql.cli import main

ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict[str, str]:
    """This tree's segql first, whatever the working directory."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


class Served:
    """``segql serve …`` in a subprocess, up once its URL is printed."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segql.cli", "serve", *args],
            cwd=cwd,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=60)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("http://"):
            self.process.kill()
            raise AssertionError(f"segql serve did not print its URL: {line!r} {self.process.communicate()}")
        self.url = line.strip()

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(
            self.url.rstrip("/") + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def stop(self) -> tuple[int, str, str]:
        """SIGINT, as Ctrl+C; the exit code and the rest of stdout and stderr."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@contextlib.contextmanager
def served(args: list[str], cwd: Path) -> Iterator[Served]:
    server = Served(args, cwd)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


def test_serve_listens_on_loopback_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    pq.write_table(PROFILE, tmp_path / "people.parquet")
    pq.write_table(ORDERS, tmp_path / "orders.parquet")
    (tmp_path / "s.segql").write_text(SOURCE, encoding="utf-8")
    args = ["s.segql", "--data", "people.parquet", "--related", "orders=orders.parquet", "--key", "customer_id"]
    with served([*args, "--port", "0"], tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")  # loopback unless --host
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        assert port > 0
        with urllib.request.urlopen(server.url, timeout=30) as page:
            assert page.status == 200
        status, _, body = server.post("/api/counts", {"source": SOURCE, "client": "t"})
        assert status == 200, body
        got = json.loads(body)
        [(adults, french, buyers)] = duck(
            """
            select count(*) filter (where age >= 30), count(*) filter (where country = 'FR'),
                   (select count(*) from (select customer_id from o group by 1
                                          having count(*) >= 2 and sum(amount) > 30))
            from p
            """
        )
        assert got["rows"] == 6 and got["sizes"] == {"adults": adults, "french": french, "buyers": buyers}

        status, headers, body = server.post("/api/download?format=csv", {"source": SOURCE, "segment": "french"})
        assert status == 200
        assert 'filename="french.csv"' in headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        expected = [r[0] for r in duck("select customer_id from p where country = 'FR' order by 1")]
        assert [int(r["customer_id"]) for r in rows] == expected
        assert {r["french"] for r in rows} == {"true"}
        status, headers, body = server.post("/api/download?format=parquet", {"source": SOURCE, "segment": "buyers"})
        assert status == 200 and 'filename="buyers.parquet"' in headers["Content-Disposition"]
        ids = pq.read_table(pa.BufferReader(body)).column("customer_id").to_pylist()
        assert ids == [
            r[0]
            for r in duck("select customer_id from o group by 1 having count(*) >= 2 and sum(amount) > 30 order by 1")
        ]
        code, out, err = server.stop()
    assert code == 0
    assert out == ""  # the URL was the only line on stdout
    assert "Traceback" not in err


def test_demo_serves_the_demo_and_saves_only_its_own_file(tmp_path: Path) -> None:
    with served(["--demo", "--port", "0"], tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, _, body = server.post("/api/counts", {"source": demo.source(), "client": "d"})
        got = json.loads(body)
        assert status == 200 and got["rows"] == 10_000
        assert got["as_of"].startswith("2026-11-01T00:00:00")  # the demo's instant, as `segql demo`
        people = demo.customers()
        young_poles = pc.and_(
            pc.and_(pc.greater_equal(people["age"], 18), pc.less_equal(people["age"], 29)),
            pc.and_(pc.equal(people["country"], "PL"), pc.is_in(people["city"], pa.array(["Warszawa", "Kraków"]))),
        )
        assert got["sizes"]["young_poles"] == pc.sum(pc.fill_null(young_poles, False)).as_py()
        edited = demo.source() + "\nsegment seniors = age >= 70\n"
        status, _, body = server.post("/api/save", {"source": edited})
        assert status == 200
        code, _, err = server.stop()
    assert code == 0 and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["segql-demo.segql"]
    assert (tmp_path / "segql-demo.segql").read_text(encoding="utf-8") == edited
    # A second start opens the edited file as it is.
    with served(["--demo", "--port", "0"], tmp_path) as server:
        code, _, err = server.stop()
    assert code == 0 and "exists: opening it as it is" in err
    assert (tmp_path / "segql-demo.segql").read_text(encoding="utf-8") == edited


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_usage_errors_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pq.write_table(PROFILE, "people.parquet")
    Path("s.segql").write_text(SOURCE, encoding="utf-8")
    code, err = run_cli(["serve", "s.segql"], capsys)
    assert code == 2 and "--data is needed" in err
    code, err = run_cli(["serve", "missing.segql", "--data", "people.parquet"], capsys)
    assert code == 2 and "missing.segql" in err
    code, err = run_cli(["serve"], capsys)
    assert code == 2 and "segql serve --demo" in err
    code, err = run_cli(["serve", "--demo", "--data", "people.parquet"], capsys)
    assert code == 2 and "drop --data" in err
    code, err = run_cli(["serve", "s.segql", "--data", "people.parquet", "--timeout", "0"], capsys)
    assert code == 2 and "--timeout" in err
    code, err = run_cli(["serve", "s.segql", "--data", "people.parquet", "--related", "orders=people.parquet"], capsys)
    assert code == 2 and "--key is needed" in err
    code, err = run_cli(["serve", "s.segql", "--data", "people.parquet", "--as-of", "2026-13-01"], capsys)
    assert code == 1 and "error:" in err
    code, err = run_cli(["serve", "s.segql", "--data", "missing.parquet", "--port", "0"], capsys)
    assert code == 2 and "missing.parquet" in err
    code, err = run_cli(["serve", "s.segql", "--data", "people.parquet", "--key", "customer", "--port", "0"], capsys)
    assert code == 1 and "did you mean 'customer_id'" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run_cli(["serve", "s.segql", "--data", "people.parquet", "--port", str(port)], capsys)
        assert code == 2 and f"port {port} on 127.0.0.1 is in use" in err and "--port 0" in err
        code, err = run_cli(["serve", "--demo", "--port", str(port)], capsys)
        assert code == 2 and "in use" in err
    assert not Path("segql-demo.segql").exists()  # a refused port leaves nothing behind
    code, err = run_cli(["serve", "--demo", "--port", "70000"], capsys)
    assert code == 2 and "--port takes a port number" in err
    assert "Traceback" not in err


def test_without_the_serve_extra_the_error_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "segql.serve.server", raising=False)
    monkeypatch.delattr(segql.serve, "server", raising=False)
    code, err = run_cli(["serve", "--demo"], capsys)
    assert code == 2 and 'pip install "segql[serve]"' in err
    assert not os.listdir(tmp_path)  # nothing written before the check


def test_the_load_test_runs_at_toy_scale(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--json", "--data-dir", str(tmp_path)]
    command += ["--customers", "20000", "--clients", "3", "--seconds", "2"]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == 0 and report["server_exit_code"] == 0
    assert report["checked_counts"] > 0 and report["wrong_counts"] == 0  # answers agree with DuckDB SQL
    assert report["requests"]["counts"] >= 3 and report["count_latency_ms"]["p95"] is not None
    assert report["server_memory_mb"]["high_water_mark"] > 0
