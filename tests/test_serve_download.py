"""The playground API's streamed download, ``why`` under the workspace's
timeout, the workspace's defaults for ``as_of`` and parameters, and the
evaluation threads (through Starlette's TestClient; references by DuckDB SQL
written by hand)."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn
from starlette.testclient import TestClient

from segql.errors import CancelledError
from segql.program import Program
from segql.serve import Workspace, create_app
from segql.serve.app import WorkClock, _Evaluations, member_chunks
from segql.serve.server import bind, stop

ROWS = 300_000
BIG = pa.table({"customer_id": pa.array(range(ROWS), pa.int64()), "x": pa.array(range(ROWS), pa.int64())})
SLOW = "\n".join(f"segment s{i} = x % {i + 2} = 0 and x > {i}" for i in range(40))


def test_a_download_streams_every_member_in_csv_and_parquet(tmp_path: Path) -> None:
    client = TestClient(create_app(Workspace(tmp_path / "s.segql", BIG, key="customer_id")))
    source = "segment odd = x % 2 = 1\nfeature twice = x * 2\n"
    expected = duckdb.sql(
        f"select customer_id, customer_id * 2 from range({ROWS}) t(customer_id) where customer_id % 2 = 1 order by 1"
    ).fetchall()
    answer = client.post("/api/download", json={"source": source, "segment": "ODD"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="odd.csv"')
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert answer.text.count("customer_id") == 1  # the header once, not once per batch
    assert [(int(r["customer_id"]), int(r["twice"])) for r in rows] == expected
    assert {r["odd"] for r in rows} == {"true"}
    answer = client.post("/api/download", json={"source": source, "segment": "odd", "format": "parquet"})
    assert answer.headers["content-disposition"].startswith('attachment; filename="odd.parquet"')
    parquet = pq.ParquetFile(pa.BufferReader(answer.content))
    assert parquet.metadata.num_row_groups > 1  # written a row group at a time
    table = parquet.read()
    assert list(zip(table["customer_id"].to_pylist(), table["twice"].to_pylist(), strict=True)) == expected


def test_a_bad_download_is_an_error_answer_not_a_broken_file(tmp_path: Path) -> None:
    client = TestClient(create_app(Workspace(tmp_path / "s.segql", BIG, key="customer_id")))
    answer = client.post("/api/download", json={"source": "segment odd = x % 2 = 1", "segment": "od"})
    assert answer.status_code == 422
    assert "did you mean 'odd'" in answer.json()["error"]["hint"]
    empty = client.post("/api/download", json={"source": "segment none = x < 0", "segment": "none"})
    assert empty.status_code == 200 and empty.text == "customer_id,none\n"
    empty = client.post(
        "/api/download", json={"source": "segment none = x < 0", "segment": "none", "format": "parquet"}
    )
    assert pq.read_table(pa.BufferReader(empty.content)).num_rows == 0


def counting_reader(batches: int, rows: int, pulled: list[int]) -> pa.RecordBatchReader:
    schema = pa.schema([("customer_id", pa.int64())])

    def generate() -> Iterator[pa.RecordBatch]:
        for i in range(batches):
            pulled.append(i)
            yield pa.record_batch([pa.array(range(i * rows, (i + 1) * rows), pa.int64())], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, generate())


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_download_chunks_come_a_batch_at_a_time(kind: str) -> None:
    pulled: list[int] = []
    rows = 140_000  # above a row group's rows: Parquet writes one per batch here
    reader = counting_reader(5, rows, pulled)
    chunks = member_chunks(reader, reader.read_next_batch(), kind, WorkClock(None))
    next(chunks)
    if kind == "csv":
        assert len(pulled) == 1  # the header went out before any more rows were computed
        next(chunks)
    assert len(pulled) <= 2
    rest = b"".join(chunks)
    assert len(pulled) == 5 and rest


def test_the_time_a_client_takes_to_read_is_not_evaluation_time() -> None:
    clock = WorkClock(0.2)
    pulled: list[int] = []
    reader = counting_reader(3, 10, pulled)
    chunks = member_chunks(reader, reader.read_next_batch(), "csv", clock)
    for _ in chunks:
        time.sleep(0.1)  # a slow connection: 0.4 s in all, the evaluation itself is quick
    assert len(pulled) == 3 and not clock.is_set()
    with clock.running():
        time.sleep(0.25)
    assert clock.is_set()
    stopped = WorkClock(None)
    stopped.set()
    with pytest.raises(CancelledError):
        Program("segment a = x > 3").counts(BIG, cancel=stopped)


def test_program_why_takes_a_timeout_and_a_cancel_event() -> None:
    program = Program(SLOW)
    started = time.monotonic()
    with pytest.raises(CancelledError, match="deadline"):
        program.why(BIG, key="customer_id", id=5, timeout=0.01)
    assert time.monotonic() - started < 5
    stop = WorkClock(None)
    stop.set()
    with pytest.raises(CancelledError, match="cancelled"):
        program.why(BIG, key="customer_id", id=5, cancel=stop)
    assert "s0" in Program("segment s0 = x > 3").why(BIG, key="customer_id", id=5, timeout=60)


def test_a_slow_why_times_out_with_a_422(tmp_path: Path) -> None:
    client = TestClient(create_app(Workspace(tmp_path / "s.segql", BIG, key="customer_id", timeout=0.01)))
    started = time.monotonic()
    answer = client.post("/api/why", json={"source": SLOW, "id": 5})
    assert answer.status_code == 422
    assert "deadline" in answer.json()["error"]["message"]
    assert time.monotonic() - started < 5


def test_the_workspace_as_of_params_and_time_zone_are_defaults(tmp_path: Path) -> None:
    people = pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "signup": pa.array([dt.date(2020, 1, 1), dt.date(2024, 6, 1), dt.date(2026, 10, 20)]),
        }
    )
    source = "param days: int = 1\nsegment recent = signup >= -365d\nsegment n = customer_id >= $days\n"
    workspace = Workspace(tmp_path / "s.segql", people, key="customer_id", as_of="2024-12-31", params={"days": 2})
    client = TestClient(create_app(workspace))
    got = client.post("/api/counts", json={"source": source}).json()
    assert got["as_of"].startswith("2024-12-31") and got["sizes"] == {"recent": 2, "n": 2}
    got = client.post("/api/counts", json={"source": source, "as_of": "2026-11-01", "params": {"days": 3}}).json()
    assert got["sizes"] == {"recent": 1, "n": 1}
    # A parameter the edited program no longer has is left out, not an error.
    assert client.post("/api/counts", json={"source": "segment a = customer_id > 1"}).json()["sizes"] == {"a": 2}
    why = client.post("/api/why", json={"source": source, "id": 2, "segment": "recent"}).json()["text"]
    assert "as of 2024-12-31" in why


class Holding:
    """An app whose ``Program.<method>`` is recorded (source, thread) and
    held, for a source that says ``slow``, until ``release`` is set; on one
    evaluation thread."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
        self.calls: list[tuple[str, str]] = []
        self.release = threading.Event()
        original = getattr(Program, method)

        def held(program: Program, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((program.source, threading.current_thread().name))
            if "slow" in program.source:
                self.release.wait(30)
            return original(program, *args, **kwargs)

        monkeypatch.setattr(Program, method, held)
        self.app = create_app(Workspace(tmp_path / "s.segql", BIG, key="customer_id", max_evaluations=1))
        self.client = TestClient(self.app)
        self.answers: dict[str, Any] = {}

    def post(self, path: str, name: str, body: dict[str, Any]) -> threading.Thread:
        def send() -> None:
            self.answers[name] = self.client.post(path, json=body).json()

        thread = threading.Thread(target=send)
        thread.start()
        return thread

    def running(self, key: str) -> Any:
        return self.app.state.clients._running.get(key)


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("waited 30 s")


def test_evaluations_run_on_their_own_threads_and_a_waiting_superseded_count_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Holding(tmp_path, monkeypatch, "counts")
    threads = [held.post("/api/counts", "slow", {"source": "segment slow = x > 1", "client": "a"})]
    wait_until(lambda: held.running("a") is not None)
    threads.append(held.post("/api/counts", "queued", {"source": "segment queued = x > 2", "client": "b"}))
    wait_until(lambda: held.running("b") is not None)  # waiting for the one evaluation thread
    threads.append(held.post("/api/counts", "newer", {"source": "segment newer = x > 3", "client": "b"}))
    wait_until(lambda: "queued" in held.answers)
    held.release.set()
    for thread in threads:
        thread.join(30)
    answers = held.answers
    assert answers["queued"]["cancelled"] is True
    assert answers["slow"]["sizes"] == {"slow": ROWS - 2} and answers["newer"]["sizes"] == {"newer": ROWS - 4}
    assert [source for source, _ in held.calls] == ["segment slow = x > 1", "segment newer = x > 3"]  # never ran
    assert all(name.startswith("segql-evaluation") for _, name in held.calls)


class Held:
    """An object an evaluation's frame holds (a stand-in for its batches)."""


def test_a_failed_evaluation_does_not_keep_its_frames() -> None:
    evaluations = _Evaluations(1)
    held: list[weakref.ref[Held]] = []

    def work() -> None:
        batch = Held()
        held.append(weakref.ref(batch))
        raise CancelledError("evaluation ran past its deadline")

    gc.disable()
    try:
        with pytest.raises(CancelledError) as caught:
            evaluations.run(work)
        del caught
        assert held[0]() is None  # freed at once, not by the cycle collector
    finally:
        gc.enable()
        evaluations.shutdown()


def test_an_attrition_request_with_a_client_id_is_superseded_like_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Holding(tmp_path, monkeypatch, "attrition")
    slow = {"source": "# slow\nsegment a = x > 1 and x < 10", "segment": "a", "client": "p", "request_id": 1}
    threads = [held.post("/api/attrition", "slow", slow)]
    wait_until(lambda: held.running("attrition/p") is not None)
    first = held.running("attrition/p")
    newer = {"source": "segment a = x > 1 and x < 5", "segment": "a", "client": "p", "request_id": 2}
    threads.append(held.post("/api/attrition", "newer", newer))
    wait_until(lambda: held.running("attrition/p") is not first)  # the newer one has superseded the running one
    held.release.set()
    for thread in threads:
        thread.join(30)
    assert held.answers["slow"] == {"request_id": 1, "cancelled": True, "message": "superseded by a newer request"}
    assert [s["customers"] for s in held.answers["newer"]["steps"]] == [ROWS - 2, 3]
    plain = held.client.post("/api/attrition", json={"source": "segment a = x > 1", "segment": "a"}).json()
    assert plain["cancelled"] is False and plain["steps"][0]["customers"] == ROWS - 2


def test_a_save_that_cannot_write_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "s.segql"
    folder.mkdir()  # not a file: the rename onto it fails (for root too)
    client = TestClient(create_app(Workspace(folder, BIG, key="customer_id")))
    answer = client.post("/api/save", json={"source": "segment a = x > 1\n"})
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert message.startswith("could not save s.segql: ") and "unchanged" in message
    assert folder.is_dir() and list(tmp_path.iterdir()) == [folder]  # no temporary left behind


def test_a_stopping_server_answers_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = Holding(tmp_path, monkeypatch, "counts")
    threads = [held.post("/api/counts", "running", {"source": "segment slow = x > 1", "client": "a"})]
    wait_until(lambda: held.running("a") is not None)
    threads.append(held.post("/api/counts", "waiting", {"source": "segment b = x > 1", "client": "b"}))
    wait_until(lambda: held.running("b") is not None)
    stop(held.app)  # as on Ctrl+C
    held.release.set()
    for thread in threads:
        thread.join(30)
    for name in ("running", "waiting"):
        assert held.answers[name]["error"]["message"] == "the server is stopping"
    assert held.client.post("/api/counts", json={"source": "segment c = x > 1"}).status_code == 503


def test_diagnostics_answer_while_every_worker_thread_waits_for_an_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Holding(tmp_path, monkeypatch, "counts")
    # A real server (one event loop, Starlette's forty worker threads), in a thread.
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(held.app, lifespan="off", log_level="warning"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    serving.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    wait_until(lambda: server.started)

    def post(path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    answers: dict[str, Any] = {}

    def count(name: str, source: str) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.update({name: post("/api/counts", {"source": source, "client": name})})
        )
        thread.start()
        return thread

    try:
        waiting = [count("a", "segment slow = x > 1")]
        wait_until(lambda: held.running("a") is not None)
        # More requests waiting for the one evaluation thread than there are worker threads.
        waiting += [count(f"c{i}", "segment b = x > 1") for i in range(45)]
        wait_until(lambda: len(held.app.state.clients._running) >= 40)
        started = time.monotonic()
        found = post("/api/diagnostics", {"source": "segment a = xx > 1"})
        assert found[0]["message"] == "unknown column 'xx'"
        assert time.monotonic() - started < 5  # not behind the evaluations
    finally:
        held.release.set()
        for thread in waiting:
            thread.join(60)
        server.should_exit = True
        serving.join(30)
        sock.close()
    assert all(answers[f"c{i}"]["sizes"] == {"b": ROWS - 2} for i in range(45))
