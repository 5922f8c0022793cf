"""The playground backend's JSON API (segql.serve), through Starlette's
TestClient, on a small hand-made profile and orders table.  Counts are
checked against DuckDB SQL written by hand."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from segql.errors import CancelledError, SegqlError
from segql.program import Program
from segql.serve import Workspace, create_app
from segql.serve.app import _Clients

PROFILE = pa.table(
    {
        "customer_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "age": pa.array([25, 41, 37, 62, 19, None], pa.int64()),
        "country": ["FR", "DE", "FR", "US", "FR", "DE"],
    }
)
ORDERS = pa.table(
    {
        "customer_id": pa.array([1, 1, 2, 3, 3, 3, 5], pa.int64()),
        "amount": [10.0, 30.0, 500.0, 5.0, 5.0, 700.0, 1.0],
    }
)
SOURCE = (
    "segment adults = age >= 30\n"
    "segment french = country = 'FR'\n"
    "segment buyers = count(orders) >= 2 and sum(orders.amount) > 30\n"
)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, Path]:
    path = tmp_path / "segments.segql"
    path.write_text(SOURCE, encoding="utf-8")
    workspace = Workspace(path, PROFILE, {"orders": ORDERS}, key="customer_id", timeout=5.0)
    return TestClient(create_app(workspace)), path


def test_diagnostics_of_a_typo_has_its_range_and_did_you_mean(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/diagnostics", json={"source": "segment a = agee > 3\n"})
    assert answer.status_code == 200
    [found] = answer.json()
    assert found["range"] == {"start": {"line": 0, "character": 12}, "end": {"line": 0, "character": 16}}
    assert found["severity"] == "error"
    assert found["message"] == "unknown column 'agee'"
    assert "did you mean 'age'" in found["hint"]
    assert found["suggestions"] == ["age"]


def test_complete_and_hover(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    items = client.post("/api/complete", json={"source": "segment a = cou", "line": 0, "character": 15}).json()
    assert "country" in [i["label"] for i in items]
    shown = client.post("/api/hover", json={"source": SOURCE, "line": 0, "character": 13}).json()
    assert "age" in shown["markdown"]
    bad = client.post("/api/hover", json={"source": SOURCE, "line": -1, "character": 0})
    assert bad.status_code == 400


def duck(sql: str) -> Any:
    con = duckdb.connect()
    con.register("p", PROFILE)
    con.register("o", ORDERS)
    return con.execute(sql).fetchall()


def test_counts_match_hand_written_sql(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/counts", json={"source": SOURCE, "client": "c1", "request_id": 7})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    [(adults, french, buyers, both)] = duck(
        """
        with b as (select customer_id from o group by customer_id having count(*) >= 2 and sum(amount) > 30)
        select count(*) filter (where coalesce(age >= 30, false)),
               count(*) filter (where country = 'FR'),
               (select count(*) from b),
               count(*) filter (where country = 'FR' and customer_id in (select customer_id from b))
        from p
        """
    )
    assert got["request_id"] == 7 and got["cancelled"] is False
    assert got["rows"] == 6
    assert got["sizes"] == {"adults": adults, "french": french, "buyers": buyers}
    assert got["overlap"]["french"]["buyers"] == both
    assert got["shares"]["french"] == pytest.approx(french / 6)


def test_attrition_preview_why_and_sql(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    steps = client.post("/api/attrition", json={"source": SOURCE, "segment": "buyers"}).json()["steps"]
    [(two,)] = duck("select count(*) from (select customer_id from o group by 1 having count(*) >= 2)")
    assert [s["customers"] for s in steps] == [two, 2]
    preview = client.post("/api/preview", json={"source": SOURCE, "segment": "adults", "limit": 2}).json()
    assert preview["columns"] == ["customer_id", "age"]
    assert preview["rows"] == [{"customer_id": 2, "age": 41}, {"customer_id": 3, "age": 37}]
    assert client.post("/api/preview", json={"source": SOURCE, "segment": "adults", "limit": 101}).status_code == 400
    why = client.post("/api/why", json={"source": SOURCE, "id": 2, "segment": "adults"}).json()["text"]
    assert "customer_id = 2" in why and "true" in why
    sql = client.post("/api/sql", json={"source": SOURCE, "dialect": "duckdb"}).json()["sql"]
    assert "SELECT" in sql.upper()


def test_errors_are_json_with_a_position(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/counts", json={"source": "segment a = age >", "client": "c"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["line"] == 1 and error["column"] is not None and error["message"]
    assert client.post("/api/counts", json={"client": "c"}).status_code == 400
    assert client.post("/api/counts", content=b"[1]").status_code == 400
    assert client.get("/").status_code == 200


def test_a_big_body_is_refused_with_413(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/diagnostics", json={"source": "x" * 300_000})
    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]["message"]


def test_save_replaces_the_file_whole(setup: tuple[TestClient, Path]) -> None:
    client, path = setup
    inode = os.stat(path).st_ino
    answer = client.post("/api/save", json={"source": "segment a = agee > 3\n"})
    assert answer.status_code == 200
    assert path.read_text(encoding="utf-8") == "segment a = agee > 3\n"
    assert answer.json()["diagnostics"][0]["message"] == "unknown column 'agee'"
    assert os.stat(path).st_ino != inode  # renamed onto the file, not rewritten in place
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_download_csv_and_parquet(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/download?format=csv", json={"source": SOURCE, "segment": "french"})
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = [r[0] for r in duck("select customer_id from p where country = 'FR' order by 1")]
    assert [int(r["customer_id"]) for r in rows] == expected
    parquet = client.post("/api/download?format=parquet", json={"source": SOURCE, "segment": "french"})
    assert parquet.content[:4] == b"PAR1"
    assert client.post("/api/download?format=xlsx", json={"source": SOURCE, "segment": "french"}).status_code == 400


def test_a_newer_request_of_the_same_client_cancels_the_older() -> None:
    clients = _Clients()
    first = clients.start("c")
    second = clients.start("c")
    other = clients.start("d")
    assert first.is_set() and not second.is_set() and not other.is_set()
    big = pa.table({"x": pa.array(range(2_000_000), pa.int64())})
    program = Program("segment a = x > 3\n")
    with pytest.raises(CancelledError):
        program.counts(big, cancel=first, batch_rows=1000)


def test_superseded_counts_answer_cancelled(tmp_path: Path) -> None:
    big = pa.table({"customer_id": pa.array(range(3_000_000), pa.int64()), "x": pa.array(range(3_000_000))})
    path = tmp_path / "s.segql"
    app = create_app(Workspace(path, big, key="customer_id", timeout=30.0))
    client = TestClient(app)
    slow = "\n".join(f"segment s{i} = x % {i + 2} = 0 and x > {i}" for i in range(40))
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.post("/api/counts", json={"source": slow, "client": "c"}).json())
    )
    thread.start()
    for _ in range(3000):  # until the slow evaluation has started
        if "c" in app.state.clients._running:
            break
        threading.Event().wait(0.01)
    newer = client.post("/api/counts", json={"source": "segment a = x < 10", "client": "c"}).json()
    thread.join(30)
    assert newer["sizes"] == {"a": 10}
    assert answers[0]["cancelled"] is True
    assert "superseded" in answers[0]["message"]


def test_timeout_is_honoured(tmp_path: Path) -> None:
    big = pa.table({"customer_id": pa.array(range(2_000_000), pa.int64()), "x": pa.array(range(2_000_000))})
    client = TestClient(create_app(Workspace(tmp_path / "s.segql", big, key="customer_id", timeout=0.0)))
    answer = client.post("/api/counts", json={"source": "segment a = x > 3", "client": "c"})
    assert answer.status_code == 422
    assert answer.json()["error"]["message"]


def test_an_unexpected_exception_is_500_without_a_traceback(
    setup: tuple[TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = setup

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Program, "to_sql", broken)
    answer = client.post("/api/sql", json={"source": SOURCE})
    assert answer.status_code == 500
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert answer.json()["error"]["message"] == "internal error in the playground backend"


def test_a_preview_of_an_empty_segment(setup: tuple[TestClient, Path]) -> None:
    client, _ = setup
    answer = client.post("/api/preview", json={"source": "segment none = age > 200", "segment": "none"})
    assert answer.json() == {"columns": ["customer_id", "age"], "rows": []}


def test_params_and_a_workspace_from_files(tmp_path: Path) -> None:
    pq.write_table(PROFILE, tmp_path / "people.parquet")
    pq.write_table(ORDERS, tmp_path / "orders.parquet")
    workspace = Workspace.from_files(
        tmp_path / "s.segql",
        str(tmp_path / "people.parquet"),
        {"orders": str(tmp_path / "orders.parquet")},
        key="customer_id",
    )
    client = TestClient(create_app(workspace))
    source = "param min_age: int = 30\nsegment old = age >= $min_age\n"
    [(over_40,)] = duck("select count(*) from p where age >= 40")
    got = client.post("/api/counts", json={"source": source, "params": {"min_age": 40}}).json()
    assert got["sizes"] == {"old": over_40}
    wrong = client.post("/api/counts", json={"source": source, "params": {"min_age": "x"}})
    assert wrong.status_code == 422
    with pytest.raises(SegqlError, match="no such file"):
        Workspace.from_files(tmp_path / "s.segql", str(tmp_path / "missing.parquet"))


@pytest.mark.parametrize(
    ("as_of", "shown"),
    [
        (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "2026-11-01"),
        (dt.datetime(2026, 11, 1, 13, 30, tzinfo=dt.UTC), "2026-11-01T13:30:00+00:00"),
        ("2025-02-03", "2025-02-03"),
        (None, None),
    ],
)
def test_the_workspace_as_of_reaches_the_page_as_text(tmp_path: Path, as_of: Any, shown: str | None) -> None:
    # `segql serve --demo` gives the workspace a datetime: /api/source must still answer JSON.
    path = tmp_path / "segments.segql"
    path.write_text(SOURCE, encoding="utf-8")
    client = TestClient(create_app(Workspace(path, PROFILE, {"orders": ORDERS}, key="customer_id", as_of=as_of)))
    answer = client.post("/api/source", json={})
    assert answer.status_code == 200
    assert answer.json()["as_of"] == shown
