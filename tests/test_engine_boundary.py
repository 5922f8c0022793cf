"""The engine boundary (segql.engines.base): Program binds once into a frozen
Bindings; the Arrow, SQL and Spark engines read only that, never Program.
Expected values are computed by hand (and by DuckDB running the SQL engine's
query), not by segql."""

from __future__ import annotations

import ast as pyast
import datetime as dt
import threading
from pathlib import Path

import attrs
import duckdb
import pyarrow as pa
import pytest

import segql
from segql.engines.arrow.engine import ArrowEngine
from segql.engines.arrow.related import RelatedSource
from segql.engines.arrow.stream import Source
from segql.engines.base import Bindings, QueryRequest, StreamRequest
from segql.engines.sql.engine import SqlEngine
from segql.errors import CancelledError, DataError, ParameterError, SegqlError

ENGINES = Path(__file__).resolve().parents[1] / "src" / "segql" / "engines"

SOURCE = """
param min: int = 6
segment big = sum(orders.amount) > $min
feature n = count(orders)
"""
PROFILES = pa.table({"id": [1, 2, 3], "age": [10, 20, 30]})
ORDERS = pa.table({"id": [1, 1, 2, 3], "amount": [5, 7, 6, 1]})
AS_OF = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
# Hand-computed: sums 12, 6, 1 (> 6: only id 1); counts 2, 1, 1.
BIG = [True, False, False]
N = [2, 1, 1]


def test_no_engine_reaches_into_program() -> None:
    """No module under engines/ imports segql.program or names its privates."""
    for path in sorted(ENGINES.rglob("*.py")):
        tree = pyast.parse(path.read_text(encoding="utf-8"))
        for node in pyast.walk(tree):
            if isinstance(node, pyast.ImportFrom):
                assert node.module != "segql.program", path
                assert not (node.module == "segql" and any(a.name == "program" for a in node.names)), path
            if isinstance(node, pyast.Import):
                assert all(a.name != "segql.program" for a in node.names), path
            if isinstance(node, pyast.Attribute):
                assert node.attr not in ("_bind", "_deep", "_written_sql", "_prepare", "_run"), (path, node.attr)


def test_bind_makes_one_frozen_object() -> None:
    program = segql.compile(SOURCE)
    related = {"orders": RelatedSource("orders", table=ORDERS)}
    bindings = program.bind(PROFILES.schema, key="id", related=related, as_of="2024-05-01", params={"min": 10})
    assert isinstance(bindings, Bindings)
    assert bindings.as_of == AS_OF
    assert bindings.params["min"].as_py() == 10
    assert str(bindings.param_types["min"]) == "int"
    assert bindings.key == "id"
    assert bindings.related_schemas == {"orders": ORDERS.schema}
    assert bindings.time_zone == "UTC"
    assert bindings.deadline is None
    assert bindings.audit["segql.program_sha256"] == program.sha256
    assert bindings.audit["segql.as_of"] == "2024-05-01T00:00:00+00:00"
    assert bindings.plan.segments == ("big",)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bindings.key = "age"  # type: ignore[misc]


def test_arrow_engine_over_bindings_in_memory_and_streamed() -> None:
    program = segql.compile(SOURCE)
    related = {"orders": RelatedSource("orders", table=ORDERS)}
    bindings = program.bind(PROFILES.schema, key="id", related=related, as_of=AS_OF)
    out = ArrowEngine().evaluate(Source(PROFILES), bindings)
    assert out.column("big").to_pylist() == BIG
    assert out.column("n").to_pylist() == N
    assert out.schema.metadata[b"segql.as_of"] == b"2024-05-01T00:00:00+00:00"
    streamed = ArrowEngine().stream(Source(PROFILES), bindings, StreamRequest(members_of="big", batch_rows=2))
    rows = pa.Table.from_batches(list(streamed.batches), schema=streamed.schema)
    assert rows.column("id").to_pylist() == [1]
    assert streamed.counts["read"] == 3 and streamed.counts["written"] == 1
    # The facade gives the same table.
    assert program.evaluate(PROFILES, key="id", related={"orders": ORDERS}, as_of=AS_OF).equals(out)


def test_sql_engine_writes_to_sql_and_duckdb_agrees() -> None:
    program = segql.compile(SOURCE)
    schemas = {"orders": ORDERS.schema}
    bindings = program.bind(PROFILES.schema, key="id", related=schemas, related_schemas=schemas, as_of=AS_OF)
    text = SqlEngine().compile(bindings, QueryRequest())
    assert text == program.to_sql(schema=PROFILES.schema, related=schemas, key="id", as_of=AS_OF)
    connection = duckdb.connect()
    connection.register("profiles", PROFILES)
    connection.register("orders", ORDERS)
    rows = connection.execute(text + " ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == list(zip([1, 2, 3], BIG, N, strict=True))


def test_what_an_engine_does_not_do_is_a_segql_error() -> None:
    program = segql.compile("segment adult = age >= 18")
    bindings = program.bind(PROFILES.schema)
    with pytest.raises(SegqlError, match="the sql engine does not evaluate"):
        SqlEngine().evaluate(PROFILES, bindings)  # type: ignore[arg-type]
    with pytest.raises(SegqlError, match="the arrow engine does not write queries"):
        ArrowEngine().compile(bindings, QueryRequest())


def test_bind_refuses_bad_input_with_segql_errors() -> None:
    program = segql.compile(SOURCE)
    with pytest.raises(ParameterError, match="related_schemas"):
        program.bind(PROFILES.schema, key="id", related={"orders": ORDERS}, related_schemas={})
    with pytest.raises(DataError, match="params must be a mapping"):
        program.bind(PROFILES.schema, params=[1])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="key= is needed"):
        program.bind(PROFILES.schema, related={"orders": ORDERS})
    with pytest.raises(DataError, match="as_of"):
        program.bind(PROFILES.schema, as_of="yesterday")
    with pytest.raises(DataError, match="schema must be a pyarrow Schema"):
        program.bind("profiles.parquet")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="timeout"):
        segql.compile("segment adult = age >= 18").bind(PROFILES.schema, timeout=-1)


def test_the_deadline_travels_in_the_bindings() -> None:
    program = segql.compile("segment adult = age >= 18")
    cancel = threading.Event()
    cancel.set()
    bindings = program.bind(PROFILES.schema, cancel=cancel)
    with pytest.raises(CancelledError):
        ArrowEngine().evaluate(Source(PROFILES), bindings)
