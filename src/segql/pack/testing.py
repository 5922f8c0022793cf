"""Run a pack's test cases on every engine.

``run_everywhere(source, data, plugins=host, ...)`` evaluates a program with
the Arrow engine (``Program.evaluate``) and as SQL on DuckDB
(``Program.to_sql("duckdb")`` run by DuckDB on the same Arrow tables), and
returns each engine's result table (the columns of ``evaluate``, in the
input's row order; ``evaluate_on(engine, …)`` runs one engine).
``assert_agree`` checks that the engines gave the same values;
``expect_everywhere`` checks every engine against hand-computed values::

    from segql.pack.testing import expect_everywhere
    expect_everywhere("feature tier = loyalty.tier(p)", table, {"tier": ["gold", None]}, plugins=host)

DuckDB is imported only when the SQL engine runs (``pip install duckdb``;
it is in segql's ``test`` extra).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

import segql
from segql.errors import SegqlError

__all__ = ["ENGINES", "Results", "assert_agree", "evaluate_on", "expect_everywhere", "run_everywhere"]

ENGINES = ("arrow", "duckdb")
"""The engines ``run_everywhere`` runs by default."""

Results = dict[str, pa.Table]
"""engine -> its result (the columns of ``evaluate``, in the input's row order)."""

_ROW = "__segql_row"


def _table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return pa.table(data)  # a mapping of columns, a pandas DataFrame, …


def _on_duckdb(
    program: segql.Program,
    table: pa.Table,
    *,
    key: str | None,
    related: Mapping[str, Any],
    as_of: Any,
    params: Mapping[str, Any] | None,
) -> pa.Table:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - duckdb is in the test extra
        raise SegqlError(
            "segql.pack.testing runs the SQL engine on DuckDB: pip install duckdb (or segql[test])"
        ) from exc
    tables = {name: _table(rows) for name, rows in related.items()}
    if key is None:
        table = table.append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))
    query = program.to_sql(
        "duckdb",
        schema=table.schema,
        related={name: rows.schema for name, rows in tables.items()},
        key=key or _ROW,
        as_of=as_of,
        params=params,
    )
    con = duckdb.connect()
    try:
        con.register("profiles", table)
        for name, rows in tables.items():
            con.register(name, rows)
        out = con.sql(query).to_arrow_table()
    finally:
        con.close()
    if key is None:
        out = out.sort_by(_ROW).drop_columns([_ROW])
    else:
        position = {value: i for i, value in enumerate(table[key].to_pylist())}
        order = sorted(range(out.num_rows), key=lambda i: position[out[key][i].as_py()])
        out = out.take(order)
    return out


def evaluate_on(
    engine: str,
    source: str | segql.Program,
    data: Any,
    *,
    plugins: segql.PluginHost | None = None,
    related: Mapping[str, Any] | None = None,
    key: str | None = None,
    as_of: Any = None,
    params: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Evaluate ``source`` (or a compiled program) over ``data`` on one engine:
    "arrow" (``Program.evaluate``) or "duckdb" (``Program.to_sql`` run by
    DuckDB); the columns of ``evaluate``, in the input's row order."""
    program = source if isinstance(source, segql.Program) else segql.compile(source, plugins=plugins)
    table = _table(data)
    if engine == "arrow":
        return program.evaluate(table, key=key, related=related or None, as_of=as_of, params=params)
    if engine == "duckdb":
        return _on_duckdb(program, table, key=key, related=related or {}, as_of=as_of, params=params)
    raise SegqlError(f"unknown engine {engine!r}; the engines are {', '.join(ENGINES)}")


def run_everywhere(
    source: str | segql.Program,
    data: Any,
    *,
    plugins: segql.PluginHost | None = None,
    related: Mapping[str, Any] | None = None,
    key: str | None = None,
    as_of: Any = None,
    params: Mapping[str, Any] | None = None,
    engines: Sequence[str] = ENGINES,
) -> Results:
    """``evaluate_on`` each of ``engines``: ``{engine: result table}``.
    ``as_of`` defaults to one instant (now) shared by every engine."""
    program = source if isinstance(source, segql.Program) else segql.compile(source, plugins=plugins)
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC)
    options = dict(related=related, key=key, as_of=as_of, params=params)
    return {engine: evaluate_on(engine, program, data, **options) for engine in engines}


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel_tol) for x, y in zip(a, b))
    return (bool(a == b) and type(a) is type(b)) or (a is None and b is None)


def _compare(label: str, got: pa.Table, expected: Mapping[str, Sequence[Any]], rel_tol: float) -> None:
    for name, want in expected.items():
        if name not in got.column_names:
            raise AssertionError(f"{label}: no column {name!r} (columns: {', '.join(got.column_names)})")
        values = got[name].to_pylist()
        if len(values) != len(want):
            raise AssertionError(f"{label}: {name} has {len(values)} values, expected {len(want)}")
        for row, (g, w) in enumerate(zip(values, want)):
            if not _same(g, w, rel_tol):
                raise AssertionError(f"{label}: {name}[{row}] is {g!r}, expected {w!r}")


def assert_agree(results: Results, *, rel_tol: float = 0.0) -> None:
    """Every engine of ``results`` gave the same columns and values (floats
    equal, or within ``rel_tol``; NaN equals NaN)."""
    engines = list(results)
    if not engines:
        raise AssertionError("no engine ran")
    first = results[engines[0]]
    for engine in engines[1:]:
        if results[engine].column_names != first.column_names:
            raise AssertionError(
                f"{engine} gave columns {results[engine].column_names}, {engines[0]} {first.column_names}"
            )
        _compare(f"{engine} vs {engines[0]}", results[engine], first.to_pydict(), rel_tol)


def expect_everywhere(
    source: str | segql.Program,
    data: Any,
    expected: Mapping[str, Sequence[Any]],
    *,
    rel_tol: float = 0.0,
    **options: Any,
) -> Results:
    """``run_everywhere`` (``options`` are its keywords), then check each
    engine's columns named in ``expected`` against those values (computed by
    hand, not by segql); returns the results."""
    results = run_everywhere(source, data, **options)
    for engine, got in results.items():
        _compare(engine, got, expected, rel_tol)
    return results
