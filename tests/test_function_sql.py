"""The one way a function declares its SQL (``registry.add(..., sql=...)``,
engines/sql/hooks.py), as segql's built-ins and packs use it (issue 16)."""

from __future__ import annotations

import ast as pyast
import datetime as dt
import types
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql
from segql.engines.sql.hooks import Duration

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)
SRC = Path(__file__).resolve().parent.parent / "src" / "segql"


def host_with(register) -> segql.PluginHost:
    pack = types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))
    return segql.PluginHost(discover=False, packs={"shop": pack})


def test_a_hook_gets_result_kind_spans_as_of_and_duration_constants() -> None:
    seen: dict[str, object] = {}

    def sql(x: str, window: str, *, writer, constants, kinds, result_kind, spans) -> str:
        seen.update(constants=constants, kinds=kinds, result_kind=result_kind, as_of=writer.as_of)
        seen["spans"] = [(s.line, s.column) for s in spans]
        return f"CAST({x} AS DOUBLE)"

    def register(registry) -> None:
        registry.add(
            "shop.f",
            lambda ctx, x, w: pc.cast(x, pa.float64()),
            params=[("x", "int"), ("window", "duration")],
            returns="float",
            constant_args=("window",),
            sql=sql,
        )

    program = segql.compile("feature f = shop.f(age, 6m)", plugins=host_with(register))
    program.to_sql(schema=pa.schema([("age", pa.int64())]), as_of=AS_OF)
    assert seen["constants"][1] == Duration(months=6, micros=0)
    assert seen["kinds"] == ("int", "duration")
    assert seen["result_kind"] == "float"
    assert seen["as_of"] == AS_OF
    assert seen["spans"] == [(1, 20), (1, 25)]


def test_a_hook_refusal_points_at_the_argument_it_names() -> None:
    def sql(x: str, *, spans) -> str:
        raise segql.SqlError("no SQL for this one", span=spans[0])

    def register(registry) -> None:
        registry.add("shop.f", lambda ctx, x: x, params=[("x", "int")], returns="int", sql=sql)

    source = "feature f = 1 + shop.f(age + 1)"
    with pytest.raises(segql.SqlError, match="no SQL for this one") as info:
        segql.compile(source, plugins=host_with(register)).to_sql(schema=pa.schema([("age", pa.int64())]))
    assert (info.value.line, info.value.column) == (1, source.index("age") + 1)


def test_round_with_constant_digits_from_a_parameter_translates() -> None:
    """round(x, $k): the digits are the parameter's value (a refusal, "needs
    constant digits", until issue 16; a null $k still is one)."""
    table = pa.table({"x": [1.2345, -2.675, None], "n": [1234, -1250, 5]})
    program = segql.compile("param k: int = 2\nparam m: int = -2\nfeature f = round(x, $k)\nfeature g = round(n, $m)")
    for k in (2, 1):
        sql = program.to_sql(schema=table.schema, as_of=AS_OF, params={"k": k})
        con = duckdb.connect()
        con.register("profiles", table)
        got = con.sql(sql).to_arrow_table()
        want = program.evaluate(table, as_of=AS_OF, params={"k": k})
        assert want["g"].to_pylist() == [1200, -1300, 0]  # half away from zero
        assert got["f"].to_pylist() == want["f"].to_pylist()
        assert got["g"].to_pylist() == want["g"].to_pylist()
    with pytest.raises(segql.SqlError, match="needs constant digits"):
        program.to_sql(schema=table.schema, as_of=AS_OF, params={"k": None})


def test_a_duration_parameter_is_still_refused_by_anniversary_within() -> None:
    program = segql.compile("param w: duration = 30d\nsegment s = anniversary_within(d, $w)")
    with pytest.raises(segql.SqlError, match="needs a duration literal"):
        program.to_sql(schema=pa.schema([("d", pa.date32())]), as_of=AS_OF)


def test_the_sql_writer_does_not_import_the_builtins() -> None:
    """The writer knows no function by name: built-ins bring their SQL."""
    tree = pyast.parse((SRC / "engines" / "sql" / "writer.py").read_text(encoding="utf-8"))
    imported = {n.module for n in pyast.walk(tree) if isinstance(n, pyast.ImportFrom)}
    imported |= {a.name for n in pyast.walk(tree) if isinstance(n, pyast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("segql.builtins")}
    source = (SRC / "engines" / "sql" / "writer.py").read_text(encoding="utf-8")
    assert "BUILTINS" not in source
