"""Both functions on a seeded, generated population, against independent
implementations of the documented rules: plain Python for
d2c.preferred_channel, DuckDB SQL for d2c.benefit_sought.

The generator mixes in everything the rules must get right: null and unknown
channels, wrong-case values, null opened/clicked flags, null timestamps, events
exactly on the window's edges and just outside them, events after as_of, empty
discount codes, and customers without any events. as_of is 31 May, so the
calendar windows (3m, 1y) exercise month-end clamping (3 months before 31 May
is 28 February)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import segql

AS_OF = dt.datetime(2026, 5, 31, 12, 0, tzinfo=dt.UTC)
NOW = AS_OF.replace(tzinfo=None)
CUSTOMERS = 600
SEED = 20260531
US = dt.timedelta(microseconds=1)

CHANNEL_VALUES = ["email", "sms", "push", "social", "whatsapp", "Email", None]
# Window starts of the channel configurations below, each hit exactly and missed by 1 us.
CHANNEL_EDGES = [NOW - dt.timedelta(days=90), NOW - dt.timedelta(days=30), dt.datetime(2026, 2, 28, 12)]
ORDER_EDGES = [dt.datetime(2025, 5, 31, 12), NOW - dt.timedelta(days=90)]


def _when(rng: random.Random, days_back: int, edges: list[dt.datetime]) -> dt.datetime | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    if roll < 0.10:
        return rng.choice(edges) - rng.choice([dt.timedelta(0), US])
    if roll < 0.13:
        return rng.choice([NOW, NOW + US, NOW + dt.timedelta(days=3)])
    return NOW - dt.timedelta(seconds=rng.randrange(days_back * 86_400))


def _flag(rng: random.Random, true: float) -> bool | None:
    roll = rng.random()
    return None if roll < 0.2 else roll < 0.2 + true


@pytest.fixture(scope="module")
def population() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(messages, orders): rows as plain Python tuples in the conftest column order."""
    rng = random.Random(SEED)
    messages: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    for customer in range(1, CUSTOMERS + 1):
        favourite = rng.choice(CHANNEL_VALUES[:4])
        for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9, 14])):
            channel = favourite if rng.random() < 0.4 else rng.choice(CHANNEL_VALUES)
            messages.append((customer, channel, _when(rng, 130, CHANNEL_EDGES), _flag(rng, 0.4), _flag(rng, 0.3)))
        habit = rng.randrange(4)
        for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5, 8])):
            strong = rng.random() < 0.6
            orders.append(
                (
                    customer,
                    _when(rng, 450, ORDER_EDGES),
                    rng.choice(["SAVE10", "VIP"]) if habit == 0 and strong else rng.choice([None, None, "", "X"]),
                    "premium" if habit == 1 and strong else rng.choice([None, "standard", "premium", "Premium"]),
                    rng.choice(["express", "next_day", "same_day"])
                    if habit == 2 and strong
                    else rng.choice([None, "standard", "Express", "express"]),
                    _flag(rng, 0.2),
                    True if habit == 3 and strong else _flag(rng, 0.2),
                )
            )
    return messages, orders


@pytest.fixture(scope="module")
def evaluate(host: segql.PluginHost, kit: Any, population: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> Any:
    messages, orders = population
    related = {"messages": kit.messages(messages), "orders": kit.orders(orders)}

    def run(source: str) -> dict[str, list[Any]]:
        program = segql.compile(source, plugins=host)
        out = program.evaluate(kit.customers(CUSTOMERS), key="customer_id", related=related, as_of=AS_OF)
        result: dict[str, list[Any]] = out.to_pydict()
        return result

    return run


# ------------------------------------------------------------------ preferred_channel, plain Python

TIE_ORDER = ("email", "push", "sms", "social")


def python_channel(messages: list[tuple[Any, ...]], start: dt.datetime, min_engagements: int) -> list[str]:
    """The documented rule, written independently of the pack."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for customer, channel, ts, opened, clicked in messages:
        engaged = opened is True or clicked is True  # `opened or clicked` is true only then
        if channel in TIE_ORDER and ts is not None and start <= ts <= NOW and engaged:
            counts[customer][channel] += 1
    result = []
    for customer in range(1, CUSTOMERS + 1):
        seen = counts[customer]
        top = max((seen[c] for c in TIE_ORDER), default=0)
        if sum(seen.values()) < min_engagements or top == 0:
            result.append("none")
        else:
            result.append(next(c for c in TIE_ORDER if seen[c] == top))
    return result


CHANNEL_CASES = [
    ("d2c.channel", CHANNEL_EDGES[0], 3),
    ("d2c.preferred_channel()", CHANNEL_EDGES[0], 3),
    ("d2c.preferred_channel(30d, min_engagements: 1)", CHANNEL_EDGES[1], 1),
    ("d2c.preferred_channel(window: 3m, min_engagements: 5)", CHANNEL_EDGES[2], 5),
]


@pytest.mark.parametrize(("call", "start", "min_engagements"), CHANNEL_CASES)
def test_preferred_channel_matches_python(
    evaluate: Any, population: Any, call: str, start: dt.datetime, min_engagements: int
) -> None:
    out = evaluate(f"feature c = {call}\nsegment unreachable = d2c.unreachable")
    expected = python_channel(population[0], start, min_engagements)
    assert out["c"] == expected
    assert set(expected) == {"email", "sms", "push", "social", "none"}  # every outcome is exercised


def test_channel_segments_partition_the_population(evaluate: Any, population: Any) -> None:
    names = ("email_first", "sms_first", "push_first", "social_first", "unreachable")
    out = evaluate("\n".join(f"segment {n} = d2c.{n}" for n in names))
    expected = python_channel(population[0], CHANNEL_EDGES[0], 3)
    for name in names:
        label = "none" if name == "unreachable" else name.removesuffix("_first")
        assert out[name] == [e == label for e in expected], name
    assert all(sum(row) == 1 for row in zip(*(out[n] for n in names)))


# ------------------------------------------------------------------ benefit_sought, DuckDB

BENEFIT_SQL = """
WITH w AS (
    SELECT * FROM orders
    WHERE ts >= TIMESTAMP '{now}' - INTERVAL {window} AND ts <= TIMESTAMP '{now}'
), c AS (
    SELECT customer_id, count(*)::DOUBLE AS n,
           count(*) FILTER (WHERE discount_code IS NOT NULL AND discount_code <> '') AS price,
           count(*) FILTER (WHERE tier = 'premium') AS quality,
           count(*) FILTER (WHERE is_subscription OR shipping IN ('express', 'next_day', 'same_day')) AS convenience,
           count(*) FILTER (WHERE eco_label) AS sustainability
    FROM w GROUP BY customer_id
), s AS (
    SELECT customer_id, n,
           CASE WHEN price / n >= {price}::DOUBLE THEN price / n / {price}::DOUBLE END AS price,
           CASE WHEN quality / n >= {quality}::DOUBLE THEN quality / n / {quality}::DOUBLE END AS quality,
           CASE WHEN convenience / n >= {convenience}::DOUBLE
                THEN convenience / n / {convenience}::DOUBLE END AS convenience,
           CASE WHEN sustainability / n >= {sustainability}::DOUBLE
                THEN sustainability / n / {sustainability}::DOUBLE END AS sustainability
    FROM c
), g AS (SELECT *, greatest(sustainability, quality, convenience, price) AS best FROM s)
SELECT customer_id,
       CASE WHEN n < {min_orders} OR best IS NULL THEN NULL
            WHEN sustainability = best THEN 'sustainability'
            WHEN quality = best THEN 'quality'
            WHEN convenience = best THEN 'convenience'
            ELSE 'price' END
FROM g
"""


@pytest.fixture(scope="module")
def duck(population: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB with ``orders`` inserted row by row from the generator's Python tuples."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE orders (customer_id BIGINT, ts TIMESTAMP, discount_code VARCHAR, tier VARCHAR,"
        " shipping VARCHAR, is_subscription BOOLEAN, eco_label BOOLEAN)"
    )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", population[1])
    yield con
    con.close()


DEFAULTS = {"price": 0.5, "quality": 0.5, "convenience": 0.5, "sustainability": 0.5, "min_orders": 3}
BENEFIT_CASES = [
    ("d2c.benefit", "1 YEAR", DEFAULTS),
    ("d2c.benefit_sought()", "1 YEAR", DEFAULTS),
    (
        "d2c.benefit_sought(90d, min_orders: 1, price_threshold: 0.3, quality_threshold: 0.6,"
        " sustainability_threshold: 0.2)",
        "90 DAY",
        {**DEFAULTS, "min_orders": 1, "price": 0.3, "quality": 0.6, "sustainability": 0.2},
    ),
]


@pytest.mark.parametrize(("call", "window", "settings"), BENEFIT_CASES)
def test_benefit_sought_matches_duckdb(
    evaluate: Any, duck: duckdb.DuckDBPyConnection, call: str, window: str, settings: dict[str, float]
) -> None:
    out = evaluate(f"feature b = {call}")
    query = BENEFIT_SQL.format(now=NOW.isoformat(sep=" "), window=window, **settings)
    found = dict(duck.execute(query).fetchall())
    expected = [found.get(customer) for customer in range(1, CUSTOMERS + 1)]
    assert out["b"] == expected
    assert set(expected) == {"price", "quality", "convenience", "sustainability", None}


def test_benefit_segments_follow_the_feature(evaluate: Any) -> None:
    names = {"deal_seekers": "price", "quality_seekers": "quality"}
    names |= {"convenience_seekers": "convenience", "eco_conscious": "sustainability"}
    out = evaluate("feature b = d2c.benefit\n" + "\n".join(f"segment {n} = d2c.{n}" for n in names))
    for name, label in names.items():
        assert out[name] == [b == label for b in out["b"]], name
    assert pa.array(out["deal_seekers"]).null_count == 0
