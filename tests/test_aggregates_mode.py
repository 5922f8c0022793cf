"""mode(x [where …]) (LANGUAGE.md §10): the most frequent non-null value, ties
to the smallest in segql's order (docs/decisions.md, "mode").

The oracle is DuckDB with SQL written here by hand (not DuckDB's ``mode()``,
which has no tie rule): the kept values counted per customer (``GROUP BY``
customer and value), the greatest count per customer (``max``), and among the
values with that count the smallest (``min``: DuckDB orders NaN above every
number and strings by bytes); NaN and -0.0 are made one NaN and 0.0 first.
A second reference, in plain Python (``collections.Counter`` and a sort key),
checks the hand-made and random tables too.

Checked against them: the Arrow engine on random tables with many ties (every
value type: int, float with NaN and ±0, float32, decimal, strings beyond
ASCII, dictionary strings, bool, date, timestamp, duration; nulls, null and
unknown keys, customers without rows, ``where`` filters; each table also
shuffled, which must change nothing), on CDNOW (with prospects without
orders); ``to_sql`` run on DuckDB, on PostgreSQL (bit for bit) and the Spark
engine (``-k spark``); the SQL of BigQuery and Snowflake parsed.  ``FULL``
(CI or SEGQL_LONG=1) runs more seeds.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import math
import random
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from cdnow import load_customers, load_orders
from engines import FULL, run_sql
from engines import runner as engine_runner

import segql
from segql import aggregates

NAN = math.nan
U = dt.UTC
SEEDS_PER_KIND = 12 if FULL else 3


# ------------------------------------------------------------------ the oracles
def oracle(tables: dict[str, pa.Table], value: str, *, where: str = "true", key: str = "id") -> list[object]:
    """``mode(orders.value where …)`` for every profile row (in profile order), by hand in DuckDB."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    con.register("profile_pos", tables["profiles"].append_column("__pos", pa.array(range(tables["profiles"].num_rows))))
    value_type = str(con.sql(f"SELECT ({value}) FROM orders LIMIT 0").types[0])
    v = f"({value})"
    if value_type in ("DOUBLE", "FLOAT"):
        v = f"CASE WHEN isnan({value}) THEN 'NaN'::DOUBLE WHEN ({value}) = 0 THEN 0.0::DOUBLE ELSE ({value}) END"
    sql = f"""
        WITH counts AS (
            SELECT {key}, v, count(*) AS n FROM (
                SELECT {key}, {v} AS v FROM orders WHERE {key} IS NOT NULL AND ({value}) IS NOT NULL AND ({where})
            ) GROUP BY {key}, v
        ),
        most AS (SELECT {key}, max(n) AS n FROM counts GROUP BY {key}),
        chosen AS (
            SELECT c.{key}, min(c.v) AS v FROM counts AS c JOIN most AS m ON c.{key} = m.{key} AND c.n = m.n
            GROUP BY c.{key}
        )
        SELECT chosen.v FROM profile_pos AS p LEFT JOIN chosen ON p.{key} = chosen.{key} ORDER BY p.__pos"""
    try:
        return con.sql(sql).to_arrow_table().column(0).to_pylist()
    finally:
        con.close()


def python_mode(values: list[object]) -> object:
    """The mode of the non-null values by the rule, in plain Python."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    # One NaN ("nan"), one zero (+0.0: -0.0 + 0.0 is 0.0).
    counts = collections.Counter(("nan" if math.isnan(v) else v + 0.0) if isinstance(v, float) else v for v in present)
    most = max(counts.values())

    def order(v: object) -> tuple[int, object]:
        if v == "nan":
            return (1, 0)
        if isinstance(v, str):
            return (0, v.encode())  # by code point: UTF-8 bytes
        return (0, v)

    best = min((v for v, c in counts.items() if c == most), key=order)
    return NAN if best == "nan" else best


def python_oracle(profile: pa.Table, orders: pa.Table, value: str, where: str | None = None) -> list[object]:
    by_key: dict[object, list[object]] = collections.defaultdict(list)
    keep = orders.column(where).to_pylist() if where else [True] * orders.num_rows
    column = orders.column(value)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    for k, v, w in zip(orders.column("id").to_pylist(), column.to_pylist(), keep, strict=True):
        if k is not None and w is True:
            by_key[k].append(v)
    return [python_mode(by_key.get(k, [])) for k in profile.column("id").to_pylist()]


def same(a: object, b: object) -> bool:
    """Equal, floats bit for bit (NaN equal to NaN, -0.0 apart from 0.0);
    DuckDB's intervals (months, days, nanoseconds) as the durations they are."""
    a, b = _duration(a), _duration(b)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.replace(tzinfo=a.tzinfo or U) == b.replace(tzinfo=b.tzinfo or U)
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


def _duration(v: object) -> object:
    if isinstance(v, pa.MonthDayNano):
        assert v.months == 0, v
        return dt.timedelta(days=v.days, microseconds=v.nanoseconds // 1000)
    return v


def assert_same(got: list[object], want: list[object], what: str) -> None:
    bad = [(row, g, w) for row, (g, w) in enumerate(zip(got, want, strict=True)) if not same(g, w)]
    assert not bad, f"{what}: (row, got, expected) {bad[:5]}"


# ------------------------------------------------------------- random tables
VALUES: dict[str, tuple[pa.DataType, list[object]]] = {
    "int": (pa.int64(), [-3, 0, 5, 7, None]),
    "float": (pa.float64(), [0.0, -0.0, 2.5, -2.5, NAN, math.inf, -math.inf, None]),
    "float32": (pa.float32(), [0.0, -0.0, 0.5, NAN, None]),
    "decimal": (pa.decimal128(10, 2), [*(decimal.Decimal(t) for t in ("1.10", "-0.50", "2.00")), None]),
    "string": (pa.string(), ["a", "b", "é", "ｚ", "😀", "", "Z", None]),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), ["x", "y", "ÿ", "Y", None]),
    "bool": (pa.bool_(), [True, False, None]),
    "date": (pa.date32(), [dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(1970, 1, 1), None]),
    "timestamp": (
        pa.timestamp("us", "UTC"),
        [
            dt.datetime(2024, 1, 1, tzinfo=U),
            dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=U),
            dt.datetime(1960, 5, 1, tzinfo=U),
            None,
        ],
    ),
    "timestamp_ms": (pa.timestamp("ms"), [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1), None]),
    "duration": (pa.duration("us"), [dt.timedelta(days=1), dt.timedelta(hours=-5), dt.timedelta(0), None]),
}
"""Value pools: few values, so customers have many ties."""


@dataclass
class Draw:
    profile: pa.Table
    orders: pa.Table


def draw(seed: int, kind: str, *, rows: int = 80) -> Draw:
    """A random table with many ties: few customers and values; some rows with a
    null or unknown key; the last customer has no rows."""
    rng = random.Random(seed)
    customers = rng.randint(1, 8)
    profile = pa.table({"id": pa.array(list(range(customers + 1)), pa.int64())})
    value_type, pool = VALUES[kind]
    pool = rng.sample(pool, rng.randint(1, len(pool)))  # sometimes one value, sometimes all
    n = rng.randint(0, rows)
    ids = [rng.choice([None, 99]) if rng.random() < 0.1 else rng.randrange(customers) for _ in range(n)]
    values = [rng.choice(pool) for _ in range(n)]
    column = pa.array(values, pa.string()).dictionary_encode() if kind == "dictionary" else pa.array(values, value_type)
    orders = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "v": column,
            "w": pa.array([rng.choice([True, True, False, None]) for _ in range(n)], pa.bool_()),
        }
    )
    return Draw(profile, orders)


SOURCE = """
feature m = mode(orders.v)
feature mw = mode(orders.v where w)
segment has_mode = mode(orders.v) is not null
"""


def check_draw(d: Draw, got: pa.Table, what: str) -> None:
    tables = {"profiles": d.profile, "orders": d.orders}
    got = got.sort_by("id")
    for name, where in (("m", None), ("mw", "w")):
        want = oracle(tables, "v", where=where or "true")
        assert_same(python_oracle(d.profile, d.orders, "v", where), want, f"the two oracles, {name}, {what}")
        column = got.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        assert_same(column.to_pylist(), want, f"{what} {name}")
    assert got.column("has_mode").to_pylist() == [v is not None for v in oracle(tables, "v")]


@pytest.mark.parametrize("seed", range(SEEDS_PER_KIND))
@pytest.mark.parametrize("kind", list(VALUES))
def test_random_on_arrow_and_duckdb_sql_match_the_oracle(seed: int, kind: str) -> None:
    d = draw(seed * 100 + list(VALUES).index(kind), kind)
    program = segql.compile(SOURCE)
    out = program.evaluate(d.profile, key="id", related={"orders": d.orders})
    check_draw(d, out, f"arrow ({kind}, seed {seed})")
    permutation = random.Random(seed).sample(range(d.orders.num_rows), d.orders.num_rows)
    shuffled = d.orders.take(pa.array(permutation, pa.int64()))
    again = program.evaluate(d.profile, key="id", related={"orders": shuffled})
    check_draw(Draw(d.profile, shuffled), again, f"arrow, shuffled ({kind}, seed {seed})")
    sql = program.to_sql(schema=d.profile.schema, related={"orders": d.orders.schema}, key="id")
    check_draw(d, run_sql(sql, {"profiles": d.profile, "orders": shuffled}), f"to_sql on DuckDB ({kind}, seed {seed})")
    # The result has the value's type: the type min(orders.v) has.
    minimum = segql.compile("feature m = min(orders.v)").evaluate(d.profile, key="id", related={"orders": d.orders})
    assert out.schema.field("m").type == minimum.schema.field("m").type


def test_the_draws_have_ties_and_empty_groups() -> None:
    """The random tables are not trivial: many customers tie between several values
    for the greatest count, and many have no value (no row, all null, none kept)."""
    ties = empty = 0
    for kind in VALUES:
        for seed in range(SEEDS_PER_KIND):
            d = draw(seed * 100 + list(VALUES).index(kind), kind)
            groups: dict[object, list[object]] = collections.defaultdict(list)
            for k, v in zip(d.orders.column("id").to_pylist(), d.orders.column("v").to_pylist(), strict=True):
                if v is not None:
                    groups[k].append("nan" if isinstance(v, float) and math.isnan(v) else v)
            for k in d.profile.column("id").to_pylist():
                counts = collections.Counter(groups.get(k, []))
                empty += not counts
                ties += len(counts) > 1 and list(counts.values()).count(max(counts.values())) > 1
    assert ties > 10 and empty > 40, (ties, empty)


def test_the_sort_path_for_many_distinct_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond 2**62 (customer, value) combinations the Arrow reducer sorts the
    pairs with np.lexsort instead of packing them into one int64: same answers."""
    monkeypatch.setattr(aggregates, "_MODE_PACKED", 0)
    for kind in ("float", "string", "int"):
        for seed in range(3):
            d = draw(seed, kind)
            out = segql.compile(SOURCE).evaluate(d.profile, key="id", related={"orders": d.orders})
            check_draw(d, out, f"lexsort path ({kind}, seed {seed})")


# ------------------------------------------------------------- hand-computed
def test_hand_computed() -> None:
    profile = pa.table({"id": [1, 2, 3, 4, 5, 6, 7]})
    rows = [  # (id, f, s, keep)
        *[(1, 3.0, "b", True), (1, 1.0, "a", True), (1, 3.0, "b", True), (1, 1.0, "a", False)],
        *[(2, NAN, "é", True), (2, NAN, "z", True), (2, -0.0, "é", True), (2, 0.0, "z", True), (2, 7.0, "Z", True)],
        *[(3, None, None, True), (3, None, "q", True)],
        *[(4, 2.0, "😀", True), (4, 2.0, "ｚ", True), (4, NAN, "😀", True), (4, NAN, "ｚ", True)],
        *[(6, -0.0, "a", True), (6, -0.0, "a", True), (6, 5.0, "b", True), (6, 5.0, "b", True)],
        *[(7, -1.0, "x", None), (7, math.inf, "x", False)],
        *[(None, 1.0, "y", True), (99, 1.0, "y", True)],
    ]
    orders = pa.table({name: [r[i] for r in rows] for i, name in enumerate(["id", "f", "s", "keep"])})
    source = """
    feature f = mode(orders.f)
    feature s = mode(orders.s)
    feature fk = mode(orders.f where keep)
    feature sk = mode(orders.s where keep)
    """
    out = segql.compile(source).evaluate(profile, key="id", related={"orders": orders}).to_pydict()
    # 1: f 3, 1, 3, 1: a tie, the smaller 1.0; where keep: 3, 1, 3: 3.0.  s b, a, b, a: "a"; kept: "b".
    # 2: NaN, NaN, -0.0, 0.0, 7: NaN twice and the zeros twice: the zero (+0.0) is smaller.
    #    s é, z, é, z, Z: "Z" < "z" < "é" by code point, but "é" and "z" have two each: "z".
    # 3: f all null: null; s "q".   4: 2, 2, NaN, NaN: 2.0; s 😀 ｚ 😀 ｚ: "ｚ" (U+FF5A) < "😀".
    # 5: no rows: null.   6: -0.0 twice, 5 twice: +0.0; s a a b b: "a".
    # 7: -1 and inf once each: -1.0; where keep (null, false): nothing kept, null.
    assert_same(out["f"], [1.0, 0.0, None, 2.0, None, 0.0, -1.0], "f")
    assert_same(out["s"], ["a", "z", "q", "ｚ", None, "a", "x"], "s")
    assert_same(out["fk"], [3.0, 0.0, None, 2.0, None, 0.0, None], "fk")
    assert_same(out["sk"], ["b", "z", "q", "ｚ", None, "a", None], "sk")
    for name, value, where in (("f", "f", None), ("s", "s", None), ("fk", "f", "keep"), ("sk", "s", "keep")):
        assert_same(python_oracle(profile, orders, value, where), out[name], f"python {name}")
        assert_same(oracle({"profiles": profile, "orders": orders}, value, where=where or "true"), out[name], name)
    sql = segql.compile(source).to_sql(schema=profile.schema, related={"orders": orders.schema}, key="id")
    in_duckdb = run_sql(sql, {"profiles": profile, "orders": orders}).sort_by("id").to_pydict()
    for name in ("f", "s", "fk", "sk"):
        assert_same(in_duckdb[name], out[name], f"to_sql {name}")


def test_nan_is_the_greatest_and_one_value() -> None:
    """NaN payloads and signs are one value; NaN wins only with more rows."""
    import struct

    other_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]  # a negative NaN with a payload
    profile = pa.table({"id": [1, 2]})
    orders = pa.table({"id": [1, 1, 1, 2, 2, 2], "f": [NAN, other_nan, math.inf, NAN, math.inf, other_nan]})
    out = segql.compile("feature m = mode(orders.f)").evaluate(profile, key="id", related={"orders": orders})
    got = out.column("m").to_pylist()
    assert math.isnan(got[0]) and math.isnan(got[1])
    sql = segql.compile("feature m = mode(orders.f)").to_sql(
        schema=profile.schema, related={"orders": orders.schema}, key="id"
    )
    assert all(math.isnan(v) for v in run_sql(sql, {"profiles": profile, "orders": orders}).column("m").to_pylist())


def test_every_type_keeps_its_type() -> None:
    """The result type is the value's type (and an expression's: a month's first day)."""
    profile = pa.table({"id": [1]})
    orders = pa.table(
        {
            "id": [1, 1, 1],
            "i32": pa.array([4, 4, 2], pa.int32()),
            "d": pa.array([decimal.Decimal("1.5")] * 3, pa.decimal128(4, 1)),
            "b": [False, True, True],
            "day": pa.array([dt.date(2024, 2, 3), dt.date(2024, 2, 28), dt.date(2024, 3, 1)]),
        }
    )
    source = """
    feature i = mode(orders.i32)
    feature d = mode(orders.d)
    feature b = mode(orders.b)
    feature month = mode(trunc(orders.day, "month"))
    feature twice = mode(orders.i32 * 2) > 7
    """
    out = segql.compile(source).evaluate(profile, key="id", related={"orders": orders})
    assert out.to_pydict() == {
        "id": [1],
        "i": [4],
        "d": [decimal.Decimal("1.5")],
        "b": [True],
        "month": [dt.date(2024, 2, 1)],
        "twice": [True],
    }
    assert out.schema.field("d").type == pa.decimal128(4, 1)


# ----------------------------------------------------------------------- CDNOW
PROSPECTS = [900_001, 900_002]
"""Customers without orders (CDNOW's profiles all have some)."""


@pytest.fixture(scope="module")
def cdnow() -> tuple[pa.Table, pa.Table]:
    profile = load_customers().select(["customer_id"])
    profile = pa.concat_tables([profile, pa.table({"customer_id": pa.array(PROSPECTS, pa.int64())})])
    return profile, load_orders()


CDNOW_FORMS = {
    "cds": ("orders.cds", "cds", "true"),
    "month": ('trunc(orders.order_date, "month")', "date_trunc('month', order_date)::DATE", "true"),
    "amount": ("orders.amount", "amount", "true"),
    "big_cds": ("orders.cds where orders.amount > 30", "cds", "amount > 30"),
    "cohort_month": ("month(orders.order_date) where orders.cds >= 2", "month(order_date)", "cds >= 2"),
}


def cdnow_source() -> str:
    return "\n".join(f"feature {name} = mode({text})" for name, (text, _, _) in CDNOW_FORMS.items())


def test_cdnow_on_arrow_and_duckdb_sql(cdnow) -> None:
    """69,659 orders of 23,570 customers (and two prospects): many customers tie
    (two orders of different sizes, or in different months)."""
    profile, orders = cdnow
    tables = {"profiles": profile, "orders": orders}
    program = segql.compile(cdnow_source())
    out = program.evaluate(profile, key="customer_id", related={"orders": orders})
    reversed_orders = orders.take(pa.array(range(orders.num_rows - 1, -1, -1)))
    again = program.evaluate(profile, key="customer_id", related={"orders": reversed_orders})
    sql = program.to_sql(schema=profile.schema, related={"orders": orders.schema}, key="customer_id")
    in_duckdb = run_sql(sql, {"profiles": profile, "orders": reversed_orders}).sort_by("customer_id")
    assert in_duckdb.column("customer_id").to_pylist() == sorted(profile.column("customer_id").to_pylist())
    for name, (_, value, where) in CDNOW_FORMS.items():
        want = oracle(tables, value, where=where, key="customer_id")
        assert want[-len(PROSPECTS) :] == [None] * len(PROSPECTS)
        assert_same(out.column(name).to_pylist(), want, f"arrow {name}")
        assert_same(again.column(name).to_pylist(), want, f"arrow, reversed, {name}")
        assert_same(in_duckdb.column(name).to_pylist(), want, f"to_sql on DuckDB {name}")
    # Ties decide many answers: customers whose most frequent cds count is shared by two values.
    counts = orders.group_by(["customer_id", "cds"]).aggregate([("amount", "count")])
    most = counts.group_by("customer_id").aggregate([("amount_count", "max")])
    joined = counts.join(most, "customer_id")
    at_most = joined.filter(pc.equal(joined.column("amount_count"), joined.column("amount_count_max")))
    tied = at_most.group_by("customer_id").aggregate([("cds", "count")]).filter(pc.field("cds_count") > 1)
    assert tied.num_rows > 3000


# ----------------------------------------------------------- PostgreSQL, Spark
ENGINE_KINDS = {
    "postgres": list(VALUES) if FULL else ["float", "string", "decimal", "timestamp", "bool", "int"],
    "spark": list(VALUES) if FULL else ["float"],
}


def _python(value: object) -> object:
    """psycopg's value as the oracle gives it (instants in UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(U)
    return value


@pytest.mark.parametrize("name", ["postgres", "spark"])
def test_postgres_and_spark_match_the_oracle(name: str, request: pytest.FixtureRequest) -> None:
    """to_sql("postgres") on a real server (a session in Asia/Kolkata; strings by
    code point: COLLATE "C"; floats bit for bit) and the Spark engine (a
    session in Los Angeles) give the oracle's values: random tables of several
    value types, then the hand-computed table."""
    runner = engine_runner(name, request)
    zone = "Asia/Kolkata" if name == "postgres" else "America/Los_Angeles"
    program = segql.compile(SOURCE)
    for kind in ENGINE_KINDS[name]:
        if kind == "duration":
            continue  # no Arrow durations in Spark's DataFrames, nor in the PostgreSQL loader
        # Spark's DataFrames read a naive Arrow timestamp in the session's zone (min and first too):
        # that kind runs in a UTC session.
        session_zone = "UTC" if (name, kind) == ("spark", "timestamp_ms") else zone
        for seed in range(3 if FULL else 1):
            d = draw(seed * 100 + list(VALUES).index(kind), kind)
            out = runner.run(program, d.profile, key="id", related={"orders": d.orders}, zone=session_zone)
            out = pa.table({n: [_python(v) for v in out.column(n).to_pylist()] for n in out.column_names})
            check_draw(Draw(runner.prepare(d.profile), runner.prepare(d.orders)), out, f"{name} ({kind}, seed {seed})")


def test_postgres_orders_strings_by_code_point_in_any_collation(pg_server) -> None:
    """A column with a linguistic collation (ICU's root: "é" before "z") still ties to the smallest code point."""
    import pg_server as pg

    profile = pa.table({"id": [1]})
    orders = pa.table({"id": [1, 1, 1, 1], "s": ["z", "é", "é", "z"]})
    sql = segql.compile("feature m = mode(orders.s)").to_sql(
        "postgres", schema=profile.schema, related={"orders": orders.schema}, key="id"
    )
    with pg.session(pg_server, {"profiles": profile, "orders": orders}) as con:
        con.execute('ALTER TABLE orders ALTER COLUMN s TYPE text COLLATE "und-x-icu"')
        assert con.execute("SELECT min(s) FROM orders").fetchone()[0] == "é"
        names, columns = pg.query(con, sql)
    assert dict(zip(names, columns, strict=True))["m"] == ["z"]


# ----------------------------------------------------------- errors, dialects
@pytest.mark.parametrize(
    ("source", "message", "at"),
    [
        ("feature f = mode(orders.tags)", "mode needs values it can order", "orders.tags"),
        ("feature f = mode(orders)", "mode(…) must read a related table", "orders"),
        ("feature f = mode(orders.x by orders.n)", "only first and last take 'by'", "orders.n"),
        ("feature f = mode(orders.x, 2)", "mode takes one related table or column", "mode"),
        ("feature f = mode(orders.x where orders.n)", "'where'", "orders.n"),
    ],
)
def test_errors_at_their_position(source: str, message: str, at: str) -> None:
    schema = {
        "orders": pa.schema(
            [("customer_id", pa.int64()), ("x", pa.string()), ("n", pa.int64()), ("tags", pa.list_(pa.string()))]
        )
    }
    profile = pa.table({"customer_id": [1]})
    orders = pa.table({n: pa.array([], t) for n, t in zip(schema["orders"].names, schema["orders"].types)})
    with pytest.raises(segql.SegqlError) as info:
        segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    assert message in str(info.value)
    assert info.value.line == 1 and info.value.column == source.index(at) + 1


def test_a_list_is_refused_naming_its_type() -> None:
    orders = pa.table({"customer_id": pa.array([1], pa.int64()), "tags": pa.array([["a"]], pa.list_(pa.string()))})
    with pytest.raises(segql.SegqlTypeError) as info:
        segql.compile("feature f = mode(orders.tags)").evaluate(
            pa.table({"customer_id": [1]}), key="customer_id", related={"orders": orders}
        )
    assert "timestamps, durations), not orders.tags (list<string>)" in str(info.value), str(info.value)


@pytest.mark.parametrize("dialect", ["postgres", "spark", "bigquery", "snowflake"])
def test_other_dialects_parse(dialect: str) -> None:
    profile = pa.schema([("id", pa.int64())])
    orders = pa.schema([("id", pa.int64()), ("f", pa.float64()), ("s", pa.string()), ("w", pa.bool_())])
    program = segql.compile("feature f = mode(orders.f where w)\nfeature s = mode(orders.s)")
    sql = program.to_sql(dialect, schema=profile, related={"orders": orders}, key="id")
    assert sqlglot.parse_one(sql, read=dialect)
    assert sql.count("ROW_NUMBER() OVER") == 2
    assert ('COLLATE "C"' in sql) == (dialect == "postgres")


# ------------------------------------------------ a pack's aggregate with query=True
def _rows_reducer(groups, node, mask, value, by):
    return pa.array(np.bincount(groups.positions[groups.valid(value, mask)], minlength=groups.n))


def _rows_sql(writer, node, k, source, column):
    """A query of one row per key (the form mode's SQL has), without a GROUP BY subquery of the table's."""
    return f"SELECT {k}, COUNT({writer.sql(node.value)}) AS {column} FROM {source} WHERE {k} IS NOT NULL GROUP BY {k}"


class RowsPack:
    @segql.hookimpl
    def segql_register_functions(self, registry):
        registry.add_aggregate(
            "stats.rows", reducer=_rows_reducer, sql=_rows_sql, query=True, returns="int", empty=0, doc="rows"
        )


def test_a_pack_aggregate_can_write_its_own_query() -> None:
    """``add_aggregate(…, query=True)``: its SQL is a query of one row per key, left-joined
    like mode's; a customer without rows gets ``empty`` (COALESCE), as on the Arrow engine."""
    host = segql.PluginHost(discover=False, packs={"stats": RowsPack()})
    profile = pa.table({"id": [1, 2, 3]})
    orders = pa.table({"id": [1, 1, 3, None], "v": [5, None, 7, 1]})
    program = segql.compile("feature r = stats.rows(orders.v)\nfeature m = mode(orders.v)", plugins=host)
    out = program.evaluate(profile, key="id", related={"orders": orders}).to_pydict()
    assert out == {"id": [1, 2, 3], "r": [1, 0, 1], "m": [5, None, 7]}
    sql = program.to_sql(schema=profile.schema, related={"orders": orders.schema}, key="id")
    assert run_sql(sql, {"profiles": profile, "orders": orders}).sort_by("id").to_pydict() == out


# ------------------------------------------- median, quantile and stddev on PostgreSQL and Spark
# tests/test_aggregates_quantile.py and test_aggregates_stddev.py check the Arrow engine and
# to_sql on DuckDB against hand-written DuckDB SQL on random tables (ties, nulls, NaN, ±inf,
# ±0.0, customers without rows, where filters) and CDNOW; the hand-computed agreement cases
# run on every engine.  Here the same random tables and CDNOW on PostgreSQL and the Spark
# engine, against the same oracles.  The engines interpolate and update a variance in their
# own order: finite values to a relative STATS_REL or an absolute STATS_ABS (an interpolation
# that cancels: quantile 1/3 of [-1, 2] is -1.1e-16 in DuckDB, whose fused multiply-add
# rounds lo * (1 - d) + hi * d once, and 0.0 as lo + (hi - lo) * d); nulls, NaN and
# infinities exactly.
STATS_REL = 1e-12
STATS_ABS = 1e-12
STATS_SEEDS = {"postgres": 40 if FULL else 12, "spark": 40 if FULL else 3}


def stats_differ(got: list, want: list) -> list[int]:
    def eq(a: object, b: object) -> bool:
        if a is None or b is None:
            return a is None and b is None
        assert isinstance(a, float) and isinstance(b, float)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=STATS_REL, abs_tol=STATS_ABS)

    return [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if not eq(a, b)]


def stats_expected(profile: pa.Table, orders: pa.Table, forms: dict[str, tuple[str, str, float | None, str]]) -> dict:
    from test_aggregates_quantile import oracle as quantile_oracle
    from test_aggregates_stddev import oracle as stddev_oracle

    expected = {}
    for name, (func, value, q, where) in forms.items():
        if func == "stddev":
            expected[name] = stddev_oracle(profile, orders, value, where or None)
        else:
            expected[name] = quantile_oracle(profile, orders, value, q, where or None)
    return expected


def stats_source(forms: dict[str, tuple[str, str, float | None, str]]) -> str:
    lines = []
    for name, (func, value, q, where) in forms.items():
        column = " ".join(f"orders.{w}" if w.isidentifier() else w for w in value.split())
        filt = " where " + " ".join(f"orders.{w}" if w.isidentifier() else w for w in where.split()) if where else ""
        args = f", {q!r}" if func == "quantile" else ""
        lines.append(f"feature {name} = {func}({column}{args}{filt})")
    return "\n".join(lines)


RANDOM_STATS = {
    "med": ("median", "amount", 0.5, ""),
    "q": ("quantile", "amount", 0.9, "qty > 0"),
    "q3": ("quantile", "qty", 1 / 3, ""),
    "pq": ("quantile", "price", 0.25, "amount < 1"),
    "sd": ("stddev", "amount", None, ""),
    "sdw": ("stddev", "qty", None, "price >= 0"),
    "sdp": ("stddev", "price", None, ""),
}


@pytest.mark.parametrize("name", ["postgres", "spark"])
def test_median_quantile_stddev_on_postgres_and_spark(name: str, request: pytest.FixtureRequest) -> None:
    from random_orders import random_order_tables

    runner = engine_runner(name, request)
    program = segql.compile(stats_source(RANDOM_STATS))
    for seed in range(STATS_SEEDS[name]):
        profile, orders = random_order_tables(seed)
        expected = stats_expected(profile, orders, RANDOM_STATS)
        out = runner.run(program, profile, key="customer_id", related={"orders": orders})
        by_key = {k: i for i, k in enumerate(out.column("customer_id").to_pylist())}
        rows = [by_key[k] for k in profile.column("customer_id").to_pylist()]
        for column, want in expected.items():
            got = [out.column(column)[i].as_py() for i in rows]
            bad = stats_differ(got, want)
            assert not bad, f"{name} seed {seed} {column}: (got, DuckDB) {[(got[i], want[i]) for i in bad[:5]]}"


CDNOW_STATS = {
    "med": ("median", "amount", 0.5, ""),
    "q": ("quantile", "amount", 0.9, "cds > 1"),
    "qc": ("quantile", "cds", 0.3, ""),
    "sd": ("stddev", "amount", None, ""),
    "sdw": ("stddev", "cds", None, "amount > 30"),
}


@pytest.mark.parametrize("name", ["postgres", "spark"])
def test_cdnow_on_postgres_and_spark(name: str, request: pytest.FixtureRequest, cdnow) -> None:
    """CDNOW with two prospects without orders, one query: mode against the hand-written oracle
    (exactly), median / quantile / stddev against DuckDB's quantile_cont / stddev_samp."""
    runner = engine_runner(name, request)
    profile, orders = cdnow
    source = cdnow_source() + "\n" + stats_source(CDNOW_STATS)
    out = runner.run(segql.compile(source), profile, key="customer_id", related={"orders": orders})
    by_key = {k: i for i, k in enumerate(out.column("customer_id").to_pylist())}
    rows = [by_key[k] for k in profile.column("customer_id").to_pylist()]
    tables = {"profiles": profile, "orders": orders}
    for column, (_, value, where) in CDNOW_FORMS.items():
        want = oracle(tables, value, where=where, key="customer_id")
        got = [_python(out.column(column)[i].as_py()) for i in rows]
        assert_same(got, want, f"{name} {column}")
    for column, want in stats_expected(profile, orders, CDNOW_STATS).items():
        assert want[-len(PROSPECTS) :] == [None] * len(PROSPECTS)
        got = [out.column(column)[i].as_py() for i in rows]
        bad = stats_differ(got, want)
        assert not bad, f"{name} {column}: {len(bad)} rows differ, e.g. {[(got[i], want[i]) for i in bad[:5]]}"


@pytest.mark.parametrize("name", ["postgres", "spark"])
def test_quantile_interpolation_at_the_ends_of_the_doubles(name: str, request: pytest.FixtureRequest) -> None:
    """PostgreSQL's percentile_cont and Spark's percentile interpolate as lo + (hi - lo) * d, NaN
    for -inf and a number and inf where hi - lo overflows; segql's SQL for them gives DuckDB's
    lo * (1 - d) + hi * d at the ends of the doubles, and no PostgreSQL underflow error."""
    runner = engine_runner(name, request)
    values = {
        1: [-math.inf, 1.0],
        2: [-1.7e308, 1.7e308],
        3: [-math.inf, -math.inf, 5.0],
        4: [1.0, math.inf, math.inf],
        5: [-math.inf, math.inf],
        6: [1.0, math.nan],
        7: [-5e-324, 1.7e308],
        8: [5e-324, 1e-323, 1.5e-323],
        9: [-1e308, -1e308, 1e308, 3.0],
        10: [2.5, -0.0, 0.0, 7.25],
    }
    profile = pa.table({"customer_id": list(values)})
    orders = pa.table(
        {
            "customer_id": [k for k, vs in values.items() for _ in vs],
            "amount": [v for vs in values.values() for v in vs],
            "qty": pa.array([0] * sum(map(len, values.values())), pa.int64()),
            "price": pa.array([0] * sum(map(len, values.values())), pa.decimal128(9, 2)),
        }
    )
    forms = {"med": ("median", "amount", 0.5, ""), "q": ("quantile", "amount", 0.3, "")}
    expected = stats_expected(profile, orders, forms)
    assert expected["med"][:3] == [-math.inf, 0.0, -math.inf]
    assert expected["q"][:3] == [-math.inf, -6.8e307, -math.inf]
    out = runner.run(segql.compile(stats_source(forms)), profile, key="customer_id", related={"orders": orders})
    out = out.sort_by("customer_id")
    for column, want in expected.items():
        got = out.column(column).to_pylist()
        assert not stats_differ(got, want), f"{name} {column}: {got}, DuckDB {want}"


def test_the_reducer_takes_dictionaries_and_views() -> None:
    """The engine gives reducers plain arrays; given a dictionary that repeats a value, or a
    string view, the reducer still counts values, not codes, and keeps the type."""
    from segql.engines.arrow.aggregate import Groups

    spec = segql.PluginHost(discover=False).functions.aggregate("mode")
    assert spec is not None and spec.reducer is not None
    groups = Groups(3, np.array([0, 0, 0, 1, 1]))
    repeated = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 2, 1], pa.int32()), pa.array(["b", "b", "a"]))
    assert spec.reducer(groups, None, None, repeated, None).to_pylist() == ["b", "a", None]
    view = pa.array(["y", "x", "x", "é", "z"], pa.string_view())
    result = spec.reducer(groups, None, np.array([True, True, False, True, True]), view, None)
    assert result.type == pa.string_view() and result.to_pylist() == ["x", "z", None]
