"""``sequence(… then … within …)`` and the as_of cut in SQL (LANGUAGE.md §9).

``to_sql`` writes a sequence as one subquery (the step rows in time order, a
running ``MAX`` of the latest start a chain can have, one level per step).  It
is checked here against an independent oracle: DuckDB SQL written by hand as a
self-join of the steps' rows (``s1.t < s2.t < … ``, ``epoch_us(sk.t) -
epoch_us(s1.t) <= D``), on random event tables with many ties on time (a few
distinct instants; null times, null and unknown keys), sequences of two and
three steps over one and two tables, with and without ``within``, event times
that are timestamps (zoned or not, several units) or dates (a date is its UTC
midnight), at several as_of instants.  The same program carries aggregates
over the event tables, whose as_of cut (rows after as_of do not exist; rows
with a null time stay) is checked against the same oracle.

Engines: ``to_sql`` on DuckDB (in two session time zones), on PostgreSQL (a
session in Asia/Kolkata, ``pg_server``) and the Spark engine (a few tables,
``-k spark``); BigQuery's and Snowflake's queries are parsed by sqlglot.
``SEGQL_LONG=1`` runs ten times as many tables.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import types
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from engines import SparkRunner, run_sql
from engines import runner as engine_runner

import segql

LONG = bool(os.environ.get("SEGQL_LONG"))
U = dt.UTC
HOUR = 3_600_000_000
DAY = 24 * HOUR
BASE = dt.datetime(2024, 3, 1, tzinfo=U)


# --------------------------------------------------------------- the program
@dataclass(frozen=True)
class Step:
    segql: str
    table: str
    where: str  # DuckDB SQL over the table's columns


STEPS = {
    "s": Step("sessions", "sessions", "true"),
    "pricing": Step('sessions where page = "pricing"', "sessions", "page = 'pricing'"),
    "home": Step('sessions where page = "home" or page is null', "sessions", "page = 'home' OR page IS NULL"),
    "o": Step("orders", "orders", "true"),
    "big": Step("orders where amount > 10", "orders", "amount > 10"),
}
SEQUENCES: dict[str, tuple[tuple[str, ...], str | None, int | None]] = {
    # name: (steps, within as written, within in microseconds)
    "visit_then_order": (("s", "o"), None, None),
    "pricing_then_order_7d": (("pricing", "o"), "7d", 7 * DAY),
    "two_visits": (("s", "s"), None, None),
    "two_visits_12h": (("s", "s"), "12h", 12 * HOUR),
    "home_pricing_order_3d": (("home", "pricing", "o"), "3d", 3 * DAY),
    "order_then_big_1d": (("o", "big"), "1d", DAY),
    "pricing_big_visit_36h": (("pricing", "big", "s"), "36h", 36 * HOUR),
    "order_visit_order": (("o", "s", "o"), None, None),
    "within_nothing": (("s", "o"), "0h", 0),
}
AGGREGATES = {
    # name: (segql, DuckDB over the cut rows, value when there are none)
    "n_orders": ("count(orders)", "count(*)", 0),
    "spend": ("sum(orders.amount)", "sum(amount)", 0.0),
    "last_visit": ("max(sessions.at)", 'max(CAST("at" AS TIMESTAMP))', None),
    "n_pricing": ('count(sessions where page = "pricing")', "count(*) FILTER (WHERE page = 'pricing')", 0),
}
SOURCE = "\n".join(
    [
        "events sessions by at",
        "events orders by ts",
        *(
            f"segment {name} = sequence({' then '.join(STEPS[s].segql for s in steps)}"
            + (f" within {within}" if within else "")
            + ")"
            for name, (steps, within, _) in SEQUENCES.items()
        ),
        *(f"feature {name} = {text}" for name, (text, _, _) in AGGREGATES.items()),
    ]
)


# ------------------------------------------------------------------ the data
@dataclass
class Events:
    profile: pa.Table
    sessions: pa.Table
    orders: pa.Table

    @property
    def related(self) -> dict[str, pa.Table]:
        return {"sessions": self.sessions, "orders": self.orders}

    @property
    def tables(self) -> dict[str, pa.Table]:
        return {"profiles": self.profile, **self.related}


SESSION_TYPES = [pa.timestamp("us", "UTC"), pa.timestamp("s"), pa.timestamp("ms", "UTC")]
ORDER_TYPES = [pa.timestamp("us", "UTC"), pa.date32(), pa.timestamp("us")]


def draw(seed: int, *, rows: int = 40) -> Events:
    """Few customers, few distinct instants (ties on time within and across
    tables), some null times, null keys and keys no profile has."""
    rng = random.Random(seed)
    customers = rng.randint(1, 8)
    profile = pa.table({"id": pa.array(range(customers + 1), pa.int64())})  # the last has no events
    step = rng.choice([6, 12, 24])
    instants = [BASE + dt.timedelta(hours=step * i) for i in range(rng.randint(2, 12))]

    def key() -> int | None:
        return rng.choice([None, 99]) if rng.random() < 0.08 else rng.randrange(customers)

    def times(n: int, arrow_type: pa.DataType) -> pa.Array:
        values = [rng.choice(instants) if rng.random() > 0.08 else None for _ in range(n)]
        if pa.types.is_date(arrow_type):
            return pa.array([None if v is None else v.date() for v in values], arrow_type)
        if arrow_type.tz is None:
            values = [None if v is None else v.replace(tzinfo=None) for v in values]
        return pa.array(values, arrow_type)

    n = rng.randint(0, rows)
    sessions = pa.table(
        {
            "id": pa.array([key() for _ in range(n)], pa.int64()),
            "at": times(n, rng.choice(SESSION_TYPES)),
            "page": pa.array([rng.choice(["home", "pricing", "pricing", "cart", None]) for _ in range(n)]),
        }
    )
    m = rng.randint(0, rows)
    orders = pa.table(
        {
            "id": pa.array([key() for _ in range(m)], pa.int64()),
            "ts": times(m, rng.choice(ORDER_TYPES)),
            "amount": pa.array([rng.choice([5.0, 20.0, 12.5, None]) for _ in range(m)], pa.float64()),
        }
    )
    return Events(profile, sessions, orders)


AS_OFS = [
    BASE - dt.timedelta(days=1),  # before every event: only null times are visible
    BASE + dt.timedelta(hours=30),
    BASE + dt.timedelta(days=2, hours=12, minutes=1),
    BASE + dt.timedelta(days=40),  # after every event
]


# ---------------------------------------------------------------- the oracle
def oracle(events: Events, as_of: dt.datetime) -> dict[str, list[object]]:
    """Every segment and feature of SOURCE for every profile row, by hand in DuckDB."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in events.tables.items():
        con.register(name, table)
    time_of = {"sessions": '"at"', "orders": '"ts"'}
    naive = as_of.astimezone(U).replace(tzinfo=None)

    def visible(table: str) -> str:
        column = time_of[table]
        kind = str(con.sql(f"SELECT {column} FROM {table} LIMIT 0").types[0])
        if kind == "DATE":  # a date is visible when its day is as_of's day or earlier
            return f"({column} IS NULL OR {column} <= DATE '{naive.date().isoformat()}')"
        return f"({column} IS NULL OR CAST({column} AS TIMESTAMP) <= TIMESTAMP '{naive.isoformat()}')"

    answers: dict[str, list[object]] = {}
    profile_ids = events.profile.column("id").to_pylist()
    for name, (steps, _, within) in SEQUENCES.items():
        rows = [
            f"s{i} AS (SELECT id, CAST({time_of[STEPS[s].table]} AS TIMESTAMP) AS t FROM {STEPS[s].table} "
            f"WHERE id IS NOT NULL AND {time_of[STEPS[s].table]} IS NOT NULL AND ({STEPS[s].where}) "
            f"AND {visible(STEPS[s].table)})"
            for i, s in enumerate(steps)
        ]
        joins = " ".join(f"JOIN s{i} ON s{i}.id = s0.id AND s{i}.t > s{i - 1}.t" for i in range(1, len(steps)))
        last = len(steps) - 1
        cond = f"epoch_us(s{last}.t) - epoch_us(s0.t) <= {within}" if within is not None else "true"
        found = {
            r[0]
            for r in con.sql(f"WITH {', '.join(rows)} SELECT DISTINCT s0.id FROM s0 {joins} WHERE {cond}").fetchall()
        }
        answers[name] = [i in found for i in profile_ids]
    for name, (_, sql, empty) in AGGREGATES.items():
        table = "orders" if "orders" in AGGREGATES[name][0] else "sessions"
        got = dict(
            con.sql(f"SELECT id, {sql} FROM {table} WHERE id IS NOT NULL AND {visible(table)} GROUP BY id").fetchall()
        )
        answers[name] = [got.get(i, empty) if got.get(i) is not None else empty for i in profile_ids]
    con.close()
    return answers


def normal(value: object) -> object:
    """Instants as naive UTC (the oracle's TIMESTAMP), floats and the rest as they are."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(U).replace(tzinfo=None)
    return value


def assert_answers(got: pa.Table, want: dict[str, list[object]], what: str) -> None:
    got = got.sort_by("id")
    for name, expected in want.items():
        values = [normal(v) for v in got.column(name).to_pylist()]
        bad = [(row, g, e) for row, (g, e) in enumerate(zip(values, expected, strict=True)) if g != e]
        assert not bad, f"{what}, {name}: (row, got, expected) {bad[:5]}"


def to_sql(events: Events, as_of: dt.datetime, dialect: str = "duckdb") -> str:
    schemas = {name: t.schema for name, t in events.related.items()}
    return segql.compile(SOURCE).to_sql(dialect, schema=events.profile.schema, related=schemas, key="id", as_of=as_of)


# --------------------------------------------------------------------- tests
def test_hand_computed_sequences() -> None:
    """Customer 1: pricing at 10:00, home at 10:00 (same instant), an order at
    10:00 and one next day at 09:00.  Customer 2: an order, then pricing, then
    nothing.  Worked out by hand from LANGUAGE.md §9."""
    t = dt.datetime(2024, 3, 1, 10, tzinfo=U)
    profile = pa.table({"id": [1, 2, 3]})
    sessions = pa.table(
        {
            "id": [1, 1, 2],
            "at": pa.array([t, t, t + dt.timedelta(hours=2)], pa.timestamp("us", "UTC")),
            "page": ["pricing", "home", "pricing"],
        }
    )
    orders = pa.table(
        {
            "id": [1, 1, 2],
            "ts": pa.array([t, t + dt.timedelta(hours=23), t], pa.timestamp("us", "UTC")),
            "amount": [5.0, 20.0, 30.0],
        }
    )
    events = Events(profile, sessions, orders)
    as_of = t + dt.timedelta(days=3)
    got = run_sql(to_sql(events, as_of), events.tables)
    expected = {
        # 1: the 10:00 order is not after the 10:00 visits; the 09:00 next day is (23 h later).
        "visit_then_order": [True, False, False],
        "pricing_then_order_7d": [True, False, False],
        "two_visits": [False, False, False],  # 1's two visits are at one instant
        "home_pricing_order_3d": [False, False, False],  # home and pricing at one instant
        "order_then_big_1d": [True, False, False],  # 5.0 at 10:00, 20.0 23 h later
        "pricing_big_visit_36h": [False, False, False],
        "order_visit_order": [False, False, False],  # 1: the visits are not after the 10:00 order
        "within_nothing": [False, False, False],
        "n_orders": [2, 1, 0],
    }
    assert_answers(got, expected, "hand-computed")
    assert_answers(got, {k: v for k, v in oracle(events, as_of).items() if k in expected}, "oracle")
    # as_of before the next day's order: it does not exist yet.
    early = run_sql(to_sql(events, t + dt.timedelta(hours=12)), events.tables)
    assert_answers(early, {"visit_then_order": [False, False, False], "n_orders": [1, 1, 0]}, "early")


def extreme_events() -> Events:
    """Pricing visits and orders exactly 7 days apart, and 1 µs more, at both
    ends of the years 1-9999 (where ``start + 7d`` or ``t - 7d`` would leave
    the range if written carelessly)."""
    week, us = dt.timedelta(days=7), dt.timedelta(microseconds=1)
    low, high = dt.datetime(1, 1, 1, tzinfo=U), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=U)
    visits = [low, low, high - week, high - week - us]
    orders = [low + week, low + week + us, high, high]
    return Events(
        pa.table({"id": [1, 2, 3, 4]}),
        pa.table({"id": [1, 2, 3, 4], "at": pa.array(visits, pa.timestamp("us", "UTC")), "page": ["pricing"] * 4}),
        pa.table({"id": [1, 2, 3, 4], "ts": pa.array(orders, pa.timestamp("us", "UTC")), "amount": [1.0] * 4}),
    )


EXTREME_AS_OF = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=U)
"""The last instant of the range: every row exists."""
EXTREME_EXPECTED = {
    "pricing_then_order_7d": [True, False, True, False],
    "visit_then_order": [True, True, True, True],
    "n_orders": [1, 1, 1, 1],
}


def test_within_is_exact_at_the_ends_of_the_time_range() -> None:
    events = extreme_events()
    got = run_sql(to_sql(events, EXTREME_AS_OF), events.tables)
    assert_answers(got, EXTREME_EXPECTED, "extremes")
    assert_answers(got, {k: v for k, v in oracle(events, EXTREME_AS_OF).items() if k in EXTREME_EXPECTED}, "oracle")


SEEDS = range(250 if LONG else 25)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_event_tables_on_duckdb_match_the_self_join(seed: int) -> None:
    events = draw(seed)
    as_of = AS_OFS[seed % len(AS_OFS)]
    zone = "UTC" if seed % 2 else "America/Los_Angeles"  # the session's zone must not matter
    got = run_sql(to_sql(events, as_of), events.tables, zone)
    assert_answers(got, oracle(events, as_of), f"seed {seed}, as_of {as_of}, zone {zone}")


def test_the_random_tables_hold_sequences_of_every_kind() -> None:
    """The draws are not trivial: over the seeds each sequence is true for some
    customers and false for others."""
    seen: dict[str, set[bool]] = {name: set() for name in SEQUENCES}
    for seed in SEEDS:
        answers = oracle(draw(seed), AS_OFS[seed % len(AS_OFS)])
        for name in SEQUENCES:
            seen[name].update(answers[name])
    assert {name: values for name, values in seen.items() if name != "within_nothing"} == {
        name: {True, False} for name in SEQUENCES if name != "within_nothing"
    }
    assert seen["within_nothing"] == {False}


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake", "spark", "postgres"])
def test_other_dialects_parse(dialect: str) -> None:
    sql = to_sql(draw(3), AS_OFS[1], dialect)
    assert sqlglot.parse_one(sql, read=dialect)
    assert "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in sql


@pytest.mark.parametrize(("name", "seeds"), [("postgres", 30 if LONG else 6), ("spark", 8 if LONG else 0)])
def test_postgres_and_spark_match_the_self_join(name: str, seeds: int, request: pytest.FixtureRequest) -> None:
    """PostgreSQL and the Spark engine, sessions in Asia/Kolkata, then the hand-computed extremes
    (Spark runs the random seeds under SEGQL_LONG=1 only: a Spark query of these sequences takes
    twenty seconds)."""
    runner = engine_runner(name, request)
    program = segql.compile(SOURCE)
    for seed in range(seeds):
        events = draw(seed)
        as_of = AS_OFS[seed % len(AS_OFS)]
        got = runner.run(program, events.profile, key="id", related=events.related, zone="Asia/Kolkata", as_of=as_of)
        assert_answers(got, oracle(events, as_of), f"{name} seed {seed}")
    events = extreme_events()
    got = runner.run(program, events.profile, key="id", related=events.related, as_of=EXTREME_AS_OF)
    assert_answers(got, EXTREME_EXPECTED, f"{name}, extremes")


PY = segql.PluginHost(
    discover=False,
    packs={
        "py": types.SimpleNamespace(
            segql_register_functions=segql.hookimpl(
                lambda registry: registry.add("py.same", lambda ctx, x: x, params=[("x", "T")], returns="T")
            )
        )
    },
)
"""A pack function without SQL: Spark runs it in Python (mapInArrow)."""


def test_a_python_function_of_a_sequence_on_spark(spark_session) -> None:
    """The sequence is computed by Spark SQL first, then given to the Python
    function; inside a step's filter a Python function is refused (it would
    run over event rows)."""
    events = extreme_events()
    source = "events sessions by at\nevents orders by ts\nsegment s = py.same(sequence(sessions then orders within 7d))"
    got = SparkRunner(spark_session).run(
        segql.compile(source, plugins=PY), events.profile, key="id", related=events.related, as_of=EXTREME_AS_OF
    )
    assert got.sort_by("id").column("s").to_pylist() == [True, False, True, False]
    inside = "events sessions by at\nevents orders by ts\n" + (
        "segment s = sequence(sessions where py.same(page) = 'x' then orders)"
    )
    with pytest.raises(segql.SqlError, match=r"py.same\(\) has no SQL implementation and runs over the rows of its"):
        SparkRunner(spark_session).run(
            segql.compile(inside, plugins=PY), events.profile, key="id", related=events.related, as_of=EXTREME_AS_OF
        )
    with pytest.raises(segql.SqlError, match=r"the function py.same\(\) has no SQL implementation"):
        to_sql_of = segql.compile(inside, plugins=PY)
        to_sql_of.to_sql(
            schema=events.profile.schema, related={k: t.schema for k, t in events.related.items()}, key="id"
        )
