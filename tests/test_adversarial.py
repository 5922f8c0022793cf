"""The adversarial differential: hostile tables and forms (``adversarial.py``) against DuckDB.

Each table gets a batch of 20 expressions, evaluated as one program of 20
features; every feature is compared, row by row, with the hand-written DuckDB
SQL of its form (or, for float sums, with ``math.fsum``).  When either side
raises (an overflow on a row that needs it), the batch is redone one form at a
time, and each form must then raise on both sides or on neither — segql with a
``SegqlError`` that is not an ``InternalError``.

Default: 100 tables (2,000 expressions) and 300 aggregate programs.
``SEGQL_ADVERSARIAL=N`` multiplies both (N=10: 20,000 expressions and 3,000
aggregate programs; the counts of a run are printed with ``-s``).
"""

from __future__ import annotations

import math
import os
import random

import duckdb
import pyarrow as pa
import pytest
from adversarial import AS_OF, Form, aggregate, expression, hostile_orders, hostile_table, python_reference

import segql

SCALE = int(os.environ.get("SEGQL_ADVERSARIAL", "1"))
TABLES = 100 * SCALE
BATCH = 20
AGGREGATE_PROGRAMS = 300 * SCALE
GROUP = 10
"""Seeds per test case: each case runs GROUP seeds (one pytest id per group)."""


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a is not None and b is not None and bool(a) == bool(b) and type(a) is type(b))
    return a == b


def _oracle_view(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """``p``: the profile with the dictionary decoded and the timestamp's raw count as ``t_raw``."""
    decoded = table.set_column(table.schema.get_field_index("s"), "s", table.column("s").cast(pa.string()))
    t = table.column("t")
    raw = pa.chunked_array([c.view(pa.int64()) for c in t.chunks], pa.int64())
    decoded = decoded.drop_columns(["t"]).append_column("t_raw", raw)
    con.register("p_arrow", decoded)
    con.execute("CREATE OR REPLACE TEMP VIEW p AS SELECT * FROM p_arrow")


def _duck(con: duckdb.DuckDBPyConnection, sql: str) -> list[object] | Exception:
    try:
        return [row[0] for row in con.execute(f"SELECT {sql} FROM p ORDER BY id").fetchall()]
    except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
        return exc


def _segql(forms: list[Form], table: pa.Table) -> dict[str, list[object]] | segql.SegqlError:
    source = "\n".join(f"feature x{k} = {f.seg}" for k, f in enumerate(forms)) + "\nsegment any_row = true"
    try:
        out = segql.compile(source).evaluate(table, key="id", as_of=AS_OF)
    except segql.InternalError:
        raise
    except segql.SegqlError as exc:
        return exc
    return {f"x{k}": out.column(f"x{k}").to_pylist() for k in range(len(forms))}


def _check_one(con: duckdb.DuckDBPyConnection, form: Form, table: pa.Table, context: str) -> str:
    got = _segql([form], table)
    want = _duck(con, form.sql)
    if isinstance(want, Exception) or isinstance(got, segql.SegqlError):
        assert isinstance(want, Exception) and isinstance(got, segql.SegqlError), (
            f"{context}\nsegql: {form.seg}\nSQL: {form.sql}\n"
            f"DuckDB: {want!r}\nsegql: {got if isinstance(got, segql.SegqlError) else got['x0']!r}"
        )
        return "error"
    bad = [(r, g, w) for r, (g, w) in enumerate(zip(got["x0"], want)) if not same(g, w)]
    assert not bad, f"{context}\nsegql: {form.seg}\nSQL: {form.sql}\nrows (row, segql, DuckDB): {bad[:5]}"
    return "agree"


@pytest.mark.parametrize("group", range(TABLES // GROUP))
def test_hostile_expressions_agree_with_duckdb(group: int) -> None:
    counts = {"agree": 0, "error": 0}
    con = duckdb.connect()
    for seed in range(group * GROUP, (group + 1) * GROUP):
        rng = random.Random(seed)
        data = hostile_table(rng)
        forms = [expression(rng, data.unit) for _ in range(BATCH)]
        _oracle_view(con, data.table)
        context = f"seed {seed}; table:\n{data.describe()}"
        got = _segql(forms, data.table)
        wants = [_duck(con, f.sql) for f in forms]
        if isinstance(got, segql.SegqlError) or any(isinstance(w, Exception) for w in wants):
            for form in forms:
                counts[_check_one(con, form, data.table, context)] += 1
            continue
        for k, (form, want) in enumerate(zip(forms, wants)):
            assert isinstance(want, list)
            bad = [(r, g, w) for r, (g, w) in enumerate(zip(got[f"x{k}"], want)) if not same(g, w)]
            assert not bad, f"{context}\nsegql: {form.seg}\nSQL: {form.sql}\nrows (row, segql, DuckDB): {bad[:5]}"
            counts["agree"] += 1
    print(f"expressions, seeds {group * GROUP}..{(group + 1) * GROUP - 1}: {counts}")


@pytest.mark.parametrize("group", range(AGGREGATE_PROGRAMS // GROUP))
def test_hostile_aggregates_agree_with_duckdb(group: int) -> None:
    con = duckdb.connect()
    for seed in range(group * GROUP, (group + 1) * GROUP):
        rng = random.Random(10_000_000 + seed)
        customers = rng.randint(1, 12)
        orders = hostile_orders(rng, customers)
        forms = [aggregate(rng, orders.thresholds) for _ in range(rng.randint(1, 6))]
        profile = pa.table({"id": pa.array(range(customers), pa.int64())})
        source = "\n".join(f"feature a{k} = {f.seg}" for k, f in enumerate(forms)) + "\nsegment any_row = true"
        out = segql.compile(source).evaluate(profile, key="id", related={"orders": orders.table}, as_of=AS_OF)
        decoded = orders.table.set_column(
            orders.table.schema.get_field_index("c"), "c", orders.table.column("c").cast(pa.string())
        )
        con.register("o", decoded)
        con.register("prof", profile)
        rows = decoded.to_pydict()
        for k, form in enumerate(forms):
            got = out.column(f"a{k}").to_pylist()
            if form.python:
                want = [
                    python_reference(form.python, [a for i, a in zip(rows["id"], rows["amount"]) if i == cid])
                    for cid in range(customers)
                ]
            else:
                query = (
                    f"SELECT COALESCE(g.v, {form.empty}) FROM prof LEFT JOIN "
                    f"(SELECT id, {form.sql} AS v FROM o GROUP BY id) g USING (id) ORDER BY prof.id"
                )
                want = [row[0] for row in con.execute(query).fetchall()]
            bad = [(r, g, w) for r, (g, w) in enumerate(zip(got, want)) if not same(g, w)]
            if bad:
                first = bad[0][0]
                its_rows = [
                    {name: rows[name][k] for name in ("amount", "v", "c")}
                    for k, i in enumerate(rows["id"])
                    if i == first
                ]
                raise AssertionError(
                    f"seed {10_000_000 + seed}: segql {form.seg}\n(customer, segql, expected): {bad[:5]}\n"
                    f"orders of customer {first} (the chunks' dictionaries hold nulls): {its_rows}"
                )
