"""``first``/``last … by``: the tie rule of LANGUAGE.md §3 on every engine.

A customer's rows are ordered by ``(by, value)`` ascending: rows whose ``by``
is null or NaN order no row, -0.0 and 0.0 are one ``by``; among equal ``by``
the value decides, with null values after every value, NaN after every number
(before null), -0.0 before 0.0 and strings by code point.  ``first`` takes
the first row, ``last`` the last.  So no engine's answer depends on the order
of the rows of a table, a file or a partition.

The oracle is DuckDB with SQL written here by hand: ``row_number()`` over
``(by, value)`` with DuckDB's own ``NULLS LAST`` (it orders NaN above every
number) and ``signbit`` for the sign of a zero.  Checked against it: the Arrow
engine on hand-made tables (every value type: numbers with NaN and ±0,
strings beyond ASCII, booleans, dates, timestamps, decimals, lists), on random
tables with many ties (fixed seeds; each also shuffled, which must change
nothing) and on CDNOW (many orders of one customer on one day); ``to_sql`` on
DuckDB and on PostgreSQL (bit for bit, ``COLLATE "C"``), and the Spark engine
on a few tables (``-k spark``).  ``SEGQL_LONG=1`` runs ten times as many seeds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import random
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cdnow import load_customers, load_orders
from engines import PostgresRunner, SparkRunner, run_sql

import segql
from segql.spark import evaluate as spark_evaluate

LONG = bool(os.environ.get("SEGQL_LONG"))
SEEDS_PER_PAIR = 10 if LONG else 1
"""Random tables per (by kind, value kind) pair (60 pairs)."""
AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)
NAN = math.nan
U = dt.UTC


# ------------------------------------------------------------------ the oracle
def oracle(
    tables: dict[str, pa.Table], func: str, value: str, by: str, *, where: str = "true", key: str = "id"
) -> list[object]:
    """``func(orders.value by by where …)`` for every profile row (in profile
    order), by hand in DuckDB."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    con.register("profile_pos", tables["profiles"].append_column("__pos", pa.array(range(tables["profiles"].num_rows))))

    def type_of(sql: str) -> str:
        return str(con.sql(f"SELECT ({sql}) FROM orders LIMIT 0").types[0])

    floats = ("DOUBLE", "FLOAT")
    usable = f"({by}) IS NOT NULL" + (f" AND NOT isnan({by})" if type_of(by) in floats else "")
    value_type = type_of(value)
    # DuckDB orders -0.0 equal to 0.0, in lists too: the sign decides then (-0.0 first).
    sign = "signbit(v)" if value_type in floats else None
    if value_type in ("DOUBLE[]", "FLOAT[]"):
        sign = "list_transform(v, lambda x: signbit(x))"
    if func == "first":
        order = f"({by}) ASC, v ASC NULLS LAST" + (f", {sign} DESC" if sign else "")
    else:
        order = f"({by}) DESC, v DESC NULLS FIRST" + (f", {sign} ASC" if sign else "")
    sql = f"""
        SELECT chosen.v FROM profile_pos AS p LEFT JOIN (
            SELECT {key}, v FROM (
                SELECT {key}, ({value}) AS v, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS rn
                FROM orders WHERE {key} IS NOT NULL AND {usable} AND ({where})
            ) WHERE rn = 1
        ) AS chosen ON p.{key} = chosen.{key}
        ORDER BY p.__pos"""
    try:
        return con.sql(sql).to_arrow_table().column(0).to_pylist()
    finally:
        con.close()


def same(a: object, b: object) -> bool:
    """Equal, floats bit for bit (NaN equal to NaN, -0.0 apart from 0.0), lists element by element."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.replace(tzinfo=a.tzinfo or U) == b.replace(tzinfo=b.tzinfo or U)
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


def assert_same(got: list[object], want: list[object], what: str) -> None:
    bad = [(row, g, w) for row, (g, w) in enumerate(zip(got, want, strict=True)) if not same(g, w)]
    assert not bad, f"{what}: (row, got, expected) {bad[:5]}"


# ------------------------------------------------------------- hand-made rows
def test_the_tie_rule_on_paper() -> None:
    """Every row of customer 1 has by = 1 except where said.  Worked out from
    the rule, not from any engine."""
    profile = pa.table({"id": [1, 2, 3, 4, 5]})
    orders = pa.table(
        {
            "id": [1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5],
            "k": pa.array([1, 1, 1, 1, 1, 0, 2, 2, 2, None, 1, 7, 7, 7, 3], pa.int64()),
            "f": pa.array([3.0, NAN, None, -0.0, 0.0, -5.0, 0.0, -0.0, 0.0, 1.0, 2.0, NAN, 1e308, -math.inf, NAN]),
            "s": ["b", "é", "ｚ", "😀", None, "A", "z", "Z", "a", "q", None, "", "a", "aa", None],
            "b": [True, False, None, True, False, True, None, None, False, True, False, True, True, False, None],
        }
    )
    source = """
    feature first_f = first(orders.f by k)
    feature last_f = last(orders.f by k)
    feature first_s = first(orders.s by k)
    feature last_s = last(orders.s by k)
    feature first_b = first(orders.b by k)
    feature last_b = last(orders.b by k)
    """
    out = segql.compile(source).evaluate(profile, key="id", related={"orders": orders})
    expected = {
        # 1: k = 0 is the first row (-5.0, "A", true); at k = 1: f 3.0, NaN, null, -0.0, 0.0 ->
        #    order -0.0, 0.0, 3.0, NaN, null; s "b", "é", "ｚ", "😀", null -> by code point
        #    b (62) < é (E9) < ｚ (FF5A) < 😀 (1F600) < null; b true, false, null, true, false.
        # 2: at k = 2: f 0.0, -0.0, 0.0 -> -0.0 first, 0.0 last; s "z", "Z", "a" -> Z < a < z.
        # 3: the null k orders no row: (2.0, null, false) alone.
        # 4: at k = 7: f NaN, 1e308, -inf -> -inf first, NaN last; s "", "a", "aa".
        # 5: one row (NaN, null, null).
        "first_f": [-5.0, -0.0, 2.0, -math.inf, NAN],
        "last_f": [None, 0.0, 2.0, NAN, NAN],
        "first_s": ["A", "Z", None, "", None],
        "last_s": [None, "z", None, "aa", None],
        "first_b": [True, False, False, False, None],
        "last_b": [None, None, False, True, None],
    }
    for name, want in expected.items():
        assert_same(out.column(name).to_pylist(), want, name)
    # The same on DuckDB through to_sql, and with the rows in another order.
    sql = segql.compile(source).to_sql(schema=profile.schema, related={"orders": orders.schema}, key="id")
    backwards = orders.take(pa.array(range(orders.num_rows - 1, -1, -1)))
    for table in (orders, backwards):
        got = run_sql(sql, {"profiles": profile, "orders": table}).sort_by("id")
        again = segql.compile(source).evaluate(profile, key="id", related={"orders": table})
        for name, want in expected.items():
            assert_same(got.column(name).to_pylist(), want, f"to_sql {name}")
            assert_same(again.column(name).to_pylist(), want, f"reordered {name}")


LIST_PROFILE = pa.table({"id": [1, 2]})
LIST_ORDERS = pa.table(
    {
        "id": [1, 1, 1, 2, 2, 2],
        "k": [1, 1, 1, 4, 4, 4],
        "li": pa.array([[1, None], [1, 2], [1], [], None, [0]], pa.list_(pa.int64())),
        "lf": pa.array([[0.0], [-0.0], [-0.0, 0.0], [NAN], [1.0, None], [1.0, 2.0]], pa.list_(pa.float64())),
        "ls": pa.array([["é"], ["z"], ["Z", None], ["a"], ["a", "b"], None], pa.list_(pa.string())),
    }
)
LIST_SOURCE = """
feature fi = first(orders.li by k)
feature li = last(orders.li by k)
feature ff = first(orders.lf by k)
feature lf = last(orders.lf by k)
feature fs = first(orders.ls by k)
feature ls = last(orders.ls by k)
"""
LIST_EXPECTED = {
    # 1: [1] starts [1, 2], and a null element is after 2.  2: [] first; a null list last.
    "fi": [[1], []],
    "li": [[1, None], None],
    # 1: [0.0] and [-0.0] equal but for the sign (-0.0 first), both start [-0.0, 0.0].
    # 2: 1.0 < NaN, and [1.0, 2.0] < [1.0, null].
    "ff": [[-0.0], [1.0, 2.0]],
    "lf": [[-0.0, 0.0], [NAN]],
    # By code point: Z < z < é.  2: ["a"] starts ["a", "b"]; a null list last.
    "fs": [["Z", None], ["a"]],
    "ls": [["é"], None],
}


def test_lists_order_element_by_element() -> None:
    out = segql.compile(LIST_SOURCE).evaluate(LIST_PROFILE, key="id", related={"orders": LIST_ORDERS})
    sql = segql.compile(LIST_SOURCE).to_sql(
        schema=LIST_PROFILE.schema, related={"orders": LIST_ORDERS.schema}, key="id"
    )
    in_duckdb = run_sql(sql, {"profiles": LIST_PROFILE, "orders": LIST_ORDERS}).sort_by("id")
    for name, want in LIST_EXPECTED.items():
        assert_same(out.column(name).to_pylist(), want, name)
        assert_same(in_duckdb.column(name).to_pylist(), want, f"to_sql {name}")
    for dialect in ("bigquery", "snowflake"):
        with pytest.raises(segql.SqlError, match=f"of a list has no {dialect} translation"):
            segql.compile(LIST_SOURCE).to_sql(
                dialect, schema=LIST_PROFILE.schema, related={"orders": LIST_ORDERS.schema}, key="id"
            )


def test_first_and_last_without_by_take_the_event_time() -> None:
    """``events orders by ts``: first(orders.x) is first(orders.x by ts), over
    the rows the as_of cut leaves (LANGUAGE.md §9).  Customer 1: two rows at
    10:00 (amounts 7 and 5) and one after as_of: first is 5, last 7 (the one
    after as_of does not exist).  Customer 2: a null ts orders no row; two
    rows at one instant: 1 and 9."""
    profile = pa.table({"id": [1, 2, 3]})
    at = dt.datetime(2024, 3, 1, 10, tzinfo=U)
    orders = pa.table(
        {
            "id": [1, 1, 1, 2, 2, 2],
            "ts": pa.array([at, at, AS_OF + dt.timedelta(seconds=1), None, at, at], pa.timestamp("us", "UTC")),
            "amount": [7.0, 5.0, 100.0, 50.0, 9.0, 1.0],
        }
    )
    source = """
    events orders by ts
    feature first_amount = first(orders.amount)
    feature last_amount = last(orders.amount)
    """
    expected = {"first_amount": [5.0, 1.0, None], "last_amount": [7.0, 9.0, None]}
    program = segql.compile(source)
    out = program.evaluate(profile, key="id", related={"orders": orders}, as_of=AS_OF)
    for name, want in expected.items():
        assert_same(out.column(name).to_pylist(), want, name)
    for name, func in (("first_amount", "first"), ("last_amount", "last")):
        tables = {"profiles": profile, "orders": orders}
        cut = f"ts <= TIMESTAMPTZ '{AS_OF.isoformat()}'"
        assert_same(oracle(tables, func, "amount", "ts", where=cut), expected[name], f"oracle {name}")
    sql = program.to_sql(schema=profile.schema, related={"orders": orders.schema}, key="id", as_of=AS_OF)
    got = run_sql(sql, {"profiles": profile, "orders": orders}).sort_by("id")
    for name, want in expected.items():
        assert_same(got.column(name).to_pylist(), want, f"to_sql {name}")


# ------------------------------------------------------------- random tables
BY_VALUES: dict[str, tuple[pa.DataType, list[object]]] = {
    "int": (pa.int64(), [0, 1, 2, None]),
    "float": (pa.float64(), [0.0, -0.0, 1.5, NAN, None, -math.inf]),
    "string": (pa.string(), ["a", "b", "é", "Z", None]),
    "date": (pa.date32(), [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None]),
    "timestamp": (
        pa.timestamp("us", "UTC"),
        [dt.datetime(2024, 1, 1, tzinfo=U), dt.datetime(2024, 1, 1, 1, tzinfo=U), None],
    ),
    "bool": (pa.bool_(), [True, False, None]),
}
VALUE_VALUES: dict[str, tuple[pa.DataType, list[object]]] = {
    "int": (pa.int64(), [-1, 0, 5, None]),
    "float": (pa.float64(), [0.0, -0.0, 2.5, -2.5, NAN, math.inf, None]),
    "float32": (pa.float32(), [0.0, -0.0, 0.5, NAN, None]),
    "string": (pa.string(), ["a", "b", "é", "ｚ", "😀", "", "Z", None]),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), ["x", "y", "ÿ", None]),
    "bool": (pa.bool_(), [True, False, None]),
    "date": (pa.date32(), [dt.date(2023, 12, 31), dt.date(2024, 1, 1), None]),
    "timestamp": (pa.timestamp("ms"), [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1), None]),
    "decimal": (
        pa.decimal128(10, 2),
        [decimal.Decimal("1.10"), decimal.Decimal("-0.50"), decimal.Decimal("2.00"), None],
    ),
    "list": (pa.list_(pa.int64()), [[1, 2], [1], [1, None], [], [0, 9], None]),
    "float_list": (pa.list_(pa.float64()), [[0.0], [-0.0], [0.0, -0.0], [-0.0, 0.0], [NAN], [1.5, None], [], None]),
    "string_list": (pa.list_(pa.string()), [["a"], ["é"], ["a", None], ["Z"], ["a", "b"], [], None]),
}


@dataclass
class Draw:
    profile: pa.Table
    orders: pa.Table
    by: str
    value: str


def draw(seed: int, by_kind: str, value_kind: str, *, rows: int = 60) -> Draw:
    """A random table with many ties: few customers, few distinct `by` values."""
    rng = random.Random(seed)
    customers = rng.randint(1, 8)
    profile = pa.table({"id": pa.array(list(range(customers + 1)), pa.int64())})  # the last has no rows
    by_type, by_pool = BY_VALUES[by_kind]
    value_type, value_pool = VALUE_VALUES[value_kind]
    n = rng.randint(0, rows)
    ids = [
        rng.choice([*range(customers), None, 99]) if rng.random() < 0.1 else rng.randrange(customers) for _ in range(n)
    ]
    values = [rng.choice(value_pool) for _ in range(n)]
    if value_kind == "dictionary":
        column = pa.array(values, pa.string()).dictionary_encode()
    else:
        column = pa.array(values, value_type)
    orders = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "k": pa.array([rng.choice(by_pool) for _ in range(n)], by_type),
            "v": column,
            "w": pa.array([rng.choice([True, True, False, None]) for _ in range(n)], pa.bool_()),
        }
    )
    return Draw(profile, orders, "k", "v")


KIND_PAIRS = [(b, v) for b in BY_VALUES for v in VALUE_VALUES]


SOURCE = """
feature first_v = first(orders.v by k)
feature last_v = last(orders.v by k)
feature first_w = first(orders.v by k where w)
feature last_w = last(orders.v by k where w)
"""
ORACLE = {
    "first_v": ("first", "true"),
    "last_v": ("last", "true"),
    "first_w": ("first", "w"),
    "last_w": ("last", "w"),
}


def random_cases() -> list[tuple[int, str, str]]:
    """Every (by, value) pair of kinds, each with its own seeds (fixed)."""
    return [(seed * 1000 + i, b, v) for i, (b, v) in enumerate(KIND_PAIRS) for seed in range(SEEDS_PER_PAIR)]


@pytest.mark.parametrize(("seed", "by_kind", "value_kind"), random_cases())
def test_random_ties_on_arrow_and_duckdb_sql_match_the_oracle(seed: int, by_kind: str, value_kind: str) -> None:
    d = draw(seed, by_kind, value_kind)
    program = segql.compile(SOURCE)
    tables = {"profiles": d.profile, "orders": d.orders}
    out = program.evaluate(d.profile, key="id", related={"orders": d.orders})
    permutation = random.Random(seed).sample(range(d.orders.num_rows), d.orders.num_rows)
    shuffled = d.orders.take(pa.array(permutation, pa.int64()))
    again = program.evaluate(d.profile, key="id", related={"orders": shuffled})
    sql = program.to_sql(schema=d.profile.schema, related={"orders": d.orders.schema}, key="id")
    in_duckdb = run_sql(sql, {"profiles": d.profile, "orders": shuffled}).sort_by("id")
    for name, (func, where) in ORACLE.items():
        want = oracle(tables, func, "v", "k", where=where)
        assert_same(out.column(name).to_pylist(), want, f"arrow {name} (seed {seed})")
        assert_same(again.column(name).to_pylist(), want, f"arrow, shuffled, {name} (seed {seed})")
        assert_same(in_duckdb.column(name).to_pylist(), want, f"to_sql on DuckDB {name} (seed {seed})")


# ----------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    return load_customers().select(["customer_id"]), load_orders()


CDNOW_FORMS = {
    "first_amount": ("first", "amount", "order_date", "true"),
    "last_amount": ("last", "amount", "order_date", "true"),
    "first_cds": ("first", "cds", "ts", "true"),
    "last_cds": ("last", "cds", "ts", "amount > 20"),
    "last_day_amount": ("last", "amount", "cds", "true"),
}


def cdnow_source(events: bool) -> str:
    lines = ["events orders by ts"] if events else []
    for name, (func, value, by, where) in CDNOW_FORMS.items():
        w = "" if where == "true" else f" where {where}"
        lines.append(f"feature {name} = {func}(orders.{value} by {by}{w})")
    return "\n".join(lines)


def test_cdnow_ties_on_arrow_and_duckdb_sql(cdnow) -> None:
    """69,659 orders: 2,000-odd customers ordered several times on one day."""
    profile, orders = cdnow
    ties = orders.group_by(["customer_id", "order_date"]).aggregate([("amount", "count")])
    assert pc.sum(pc.greater(ties.column("amount_count"), 1)).as_py() > 1000
    program = segql.compile(cdnow_source(events=False))
    out = program.evaluate(profile, key="customer_id", related={"orders": orders}, as_of=AS_OF)
    reversed_orders = orders.take(pa.array(range(orders.num_rows - 1, -1, -1)))
    again = program.evaluate(profile, key="customer_id", related={"orders": reversed_orders}, as_of=AS_OF)
    sql = program.to_sql(schema=profile.schema, related={"orders": orders.schema}, key="customer_id", as_of=AS_OF)
    in_duckdb = run_sql(sql, {"profiles": profile, "orders": reversed_orders}).sort_by("customer_id")
    tables = {"profiles": profile, "orders": orders}
    for name, (func, value, by, where) in CDNOW_FORMS.items():
        want = oracle(tables, func, value, by, where=where, key="customer_id")
        assert_same(out.column(name).to_pylist(), want, f"arrow {name}")
        assert_same(again.column(name).to_pylist(), want, f"arrow, reversed, {name}")
        assert_same(in_duckdb.column(name).to_pylist(), want, f"to_sql on DuckDB {name}")


def test_cdnow_first_and_last_by_the_event_time(cdnow) -> None:
    """``events orders by ts`` and first/last without `by`, as_of in the middle
    of the first cohorts (the cut leaves the orders up to 1997-02-15 noon)."""
    profile, orders = cdnow
    as_of = dt.datetime(1997, 2, 15, 12, tzinfo=U)
    source = "events orders by ts\nfeature f = first(orders.amount)\nfeature l = last(orders.amount)"
    program = segql.compile(source)
    out = program.evaluate(profile, key="customer_id", related={"orders": orders}, as_of=as_of)
    sql = program.to_sql(schema=profile.schema, related={"orders": orders.schema}, key="customer_id", as_of=as_of)
    in_duckdb = run_sql(sql, {"profiles": profile, "orders": orders}).sort_by("customer_id")
    tables = {"profiles": profile, "orders": orders}
    cut = f"ts <= TIMESTAMPTZ '{as_of.isoformat()}'"
    for name, func in (("f", "first"), ("l", "last")):
        want = oracle(tables, func, "amount", "ts", where=cut, key="customer_id")
        assert sum(v is None for v in want) > 1000  # customers whose orders all come later
        assert_same(out.column(name).to_pylist(), want, f"arrow {name}")
        assert_same(in_duckdb.column(name).to_pylist(), want, f"to_sql on DuckDB {name}")


# ----------------------------------------------------------- PostgreSQL, Spark
PG_KINDS = [
    ("float", "float"),
    ("string", "string"),
    ("int", "string"),
    ("timestamp", "float"),
    ("date", "bool"),
    ("float", "decimal"),
    ("int", "list"),
    ("int", "float_list"),
    ("float", "string_list"),
    ("bool", "timestamp"),
]


@pytest.mark.parametrize(("by_kind", "value_kind"), PG_KINDS)
def test_postgres_agrees_bit_for_bit(pg_server, by_kind: str, value_kind: str) -> None:
    """to_sql("postgres") on a real server (strings by code point: COLLATE "C")
    gives the oracle's values, floats bit for bit."""
    runner = PostgresRunner(pg_server)
    program = segql.compile(SOURCE)
    for seed in range(10 if LONG else 3):
        d = draw(seed, by_kind, value_kind)
        out = runner.run(program, d.profile, key="id", related={"orders": d.orders}).sort_by("id")
        assert out.column("id").to_pylist() == d.profile.column("id").to_pylist()
        tables = {"profiles": d.profile, "orders": d.orders}
        for name, (func, where) in ORACLE.items():
            want = oracle(tables, func, "v", "k", where=where)
            got = [_python(v) for v in out.column(name).to_pylist()]
            assert_same(got, want, f"postgres {name} (seed {seed})")


def _python(value: object) -> object:
    """psycopg's value as the oracle gives it (decimals as Decimal, instants in UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(U)
    return value


def test_postgres_gives_the_hand_computed_answer(pg_server) -> None:
    profile = pa.table({"id": [1, 2]})
    orders = pa.table(
        {
            "id": [1, 1, 1, 1, 2, 2, 2],
            "k": [1, 1, 1, 1, 5, 5, 5],
            "s": ["é", "ｚ", "😀", "z", "Z", "a", None],
            "f": [0.0, -0.0, NAN, 1.0, 0.0, -0.0, 0.0],
        }
    )
    source = """
    feature fs = first(orders.s by k)
    feature ls = last(orders.s by k)
    feature ff = first(orders.f by k)
    feature lf = last(orders.f by k)
    """
    runner = PostgresRunner(pg_server)
    lists = runner.run(segql.compile(LIST_SOURCE), LIST_PROFILE, key="id", related={"orders": LIST_ORDERS})
    for name, want in LIST_EXPECTED.items():
        assert_same(lists.sort_by("id").column(name).to_pylist(), want, f"lists {name}")
    out = runner.run(segql.compile(source), profile, key="id", related={"orders": orders})
    out = out.sort_by("id")
    expected = {"fs": ["z", "Z"], "ls": ["😀", None], "ff": [-0.0, -0.0], "lf": [NAN, 0.0]}
    for name, want in expected.items():
        assert_same(out.column(name).to_pylist(), want, name)
    # A column with a linguistic collation (ICU's root: 😀 and é before z) is still ordered by code point.
    import pg_server as pg

    sql = segql.compile(source).to_sql("postgres", schema=profile.schema, related={"orders": orders.schema}, key="id")
    with pg.session(pg_server, {"profiles": profile, "orders": orders}) as con:
        con.execute('ALTER TABLE orders ALTER COLUMN s TYPE text COLLATE "und-x-icu"')
        assert con.execute("SELECT min(s) FROM orders WHERE id = 1").fetchone()[0] != "z"
        names, columns = pg.query(con, sql)
    got = dict(zip(names, columns, strict=True))
    order = sorted(range(len(got["id"])), key=lambda i: got["id"][i])
    assert [got["fs"][i] for i in order] == ["z", "Z"] and [got["ls"][i] for i in order] == ["😀", None]


SPARK_KINDS = [("float", "float"), ("string", "string"), ("int", "list"), ("bool", "float_list")]
"""Spark runs two of them by default (its queries cost about a second each), all four under CI or
SEGQL_LONG=1."""


@pytest.mark.parametrize(("by_kind", "value_kind"), SPARK_KINDS if LONG or os.environ.get("CI") else SPARK_KINDS[:2])
def test_spark_agrees(spark_session, by_kind: str, value_kind: str) -> None:
    """segql.spark.evaluate (no row order is added to the DataFrames any more)
    gives the oracle's values, and the hand-computed lists (Spark orders null
    elements first, segql last)."""
    runner = SparkRunner(spark_session)
    if by_kind == "float":  # once
        lists = runner.run(segql.compile(LIST_SOURCE), LIST_PROFILE, key="id", related={"orders": LIST_ORDERS})
        for name, want in LIST_EXPECTED.items():
            assert_same(lists.sort_by("id").column(name).to_pylist(), want, f"spark lists {name}")
        # row_order= is deprecated: accepted, ignored (even a column that is not there).
        frames = {name: spark_session.createDataFrame(t) for name, t in (("p", LIST_PROFILE), ("o", LIST_ORDERS))}
        df = spark_evaluate(
            segql.compile(LIST_SOURCE), frames["p"], key="id", related={"orders": frames["o"]}, row_order={"x": "y"}
        )
        assert_same(df.toArrow().sort_by("id").column("li").to_pylist(), LIST_EXPECTED["li"], "row_order ignored")
    program = segql.compile(SOURCE)
    for seed in range(4 if LONG else 1):
        d = draw(seed, by_kind, value_kind)
        out = runner.run(program, d.profile, key="id", related={"orders": d.orders}).sort_by("id")
        tables = {"profiles": d.profile, "orders": d.orders}
        for name, (func, where) in ORACLE.items():
            want = oracle(tables, func, "v", "k", where=where)
            assert_same(out.column(name).to_pylist(), want, f"spark {name} (seed {seed})")
