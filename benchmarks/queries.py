"""The benchmark's queries, each written three ways: segql, DuckDB SQL, Polars.

All three compute the same member flags over the tables of generate.py, as of
generate.AS_OF (2026-11-01T00:00Z); run.py checks that the counts agree.
Each query is asked in three shapes (run.py), each peer its best way:

- count: the number of members (``SELECT count(*) … WHERE``; Polars
  ``filter`` + ``len``), one count per segment of ``counted``;
- members: the key values of ``segment``'s members (``SELECT customer_id …
  WHERE``; Polars ``filter`` + ``select``);
- flags: the full membership table (``sql`` to Arrow; Polars ``polars``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
NOW = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"


@dataclass
class Query:
    name: str
    segql: str
    sql: str
    polars: Callable[[dict[str, pl.LazyFrame]], pl.LazyFrame]
    needs_orders: bool = False
    members: list[str] = field(default_factory=lambda: ["member"])
    """Output columns holding membership flags (their sum is compared)."""
    count_sql: str = ""
    """One row, one count per counted segment (in program order)."""
    members_sql: str = ""
    """The key (customer_id) of each member of ``segment``."""
    polars_count: Callable[[dict[str, pl.LazyFrame]], pl.LazyFrame] | None = None
    polars_members: Callable[[dict[str, pl.LazyFrame]], pl.LazyFrame] | None = None
    segment: str = "segment"
    """The segment whose members the member-ids shape lists."""


def _profile_query(name: str, segql: str, where: str, expr: Callable[[], pl.Expr]) -> Query:
    """A one-segment query over the profiles: the predicate in SQL and in Polars."""
    return Query(
        name=name,
        segql=segql,
        sql=f"SELECT COALESCE({where}, false) AS member FROM customers",
        polars=lambda f: f["customers"].select(expr().fill_null(False).alias("member")),
        count_sql=f"SELECT count(*) AS segment FROM customers WHERE {where}",
        members_sql=f"SELECT customer_id FROM customers WHERE {where}",
        polars_count=lambda f: f["customers"].filter(expr()).select(pl.len().alias("segment")),
        polars_members=lambda f: f["customers"].filter(expr()).select("customer_id"),
    )


def _days_ago(days: int) -> dt.datetime:
    return AS_OF - dt.timedelta(days=days)


# ------------------------------------------------------------- single queries
NUMERIC_IN = _profile_query(
    "numeric/IN conjunction",
    'age between 25 and 34 and country in ["PL", "DE", "FR"] and amount_spent > 500',
    "age BETWEEN 25 AND 34 AND country IN ('PL', 'DE', 'FR') AND amount_spent > 500",
    lambda: (
        pl.col("age").is_between(25, 34) & pl.col("country").is_in(["PL", "DE", "FR"]) & (pl.col("amount_spent") > 500)
    ),
)

STRINGS = _profile_query(
    "string prefix/suffix",
    'email ends with "@gmail.com" and city starts with "Ber"',
    "ends_with(email, '@gmail.com') AND starts_with(city, 'Ber')",
    lambda: pl.col("email").str.ends_with("@gmail.com") & pl.col("city").str.starts_with("Ber"),
)

RELATIVE_DATES = _profile_query(
    "relative dates + NOT",
    "not (last_login >= -30d) and signup_date < -365d and not is_subscribed",
    f"NOT (last_login >= {NOW} - INTERVAL 30 DAY) AND signup_date < DATE '2025-11-01' AND NOT is_subscribed",
    lambda: (
        ~(pl.col("last_login") >= _days_ago(30))
        & (pl.col("signup_date") < dt.date(2025, 11, 1))
        & ~pl.col("is_subscribed")
    ),
)

_WIDE_TERMS = [
    ('country = "PL" and age < 30', "country = 'PL' AND age < 30", (pl.col("country") == "PL") & (pl.col("age") < 30)),
    (
        'country = "DE" and amount_spent > 1000',
        "country = 'DE' AND amount_spent > 1000",
        (pl.col("country") == "DE") & (pl.col("amount_spent") > 1000),
    ),
    (
        'country = "FR" and is_subscribed',
        "country = 'FR' AND is_subscribed",
        (pl.col("country") == "FR") & pl.col("is_subscribed"),
    ),
    (
        'city = "Madrid" and age > 60',
        "city = 'Madrid' AND age > 60",
        (pl.col("city") == "Madrid") & (pl.col("age") > 60),
    ),
    (
        'country = "US" and amount_spent between 100 and 200',
        "country = 'US' AND amount_spent BETWEEN 100 AND 200",
        (pl.col("country") == "US") & pl.col("amount_spent").is_between(100, 200),
    ),
    (
        'email ends with "@proton.me" and age between 40 and 45',
        "ends_with(email, '@proton.me') AND age BETWEEN 40 AND 45",
        pl.col("email").str.ends_with("@proton.me") & pl.col("age").is_between(40, 45),
    ),
    (
        'country = "SE" and not is_subscribed and amount_spent > 700',
        "country = 'SE' AND NOT is_subscribed AND amount_spent > 700",
        (pl.col("country") == "SE") & ~pl.col("is_subscribed") & (pl.col("amount_spent") > 700),
    ),
    (
        'city = "Praha" and age is null',
        "city = 'Praha' AND age IS NULL",
        (pl.col("city") == "Praha") & pl.col("age").is_null(),
    ),
]


def _any(exprs: list[pl.Expr]) -> pl.Expr:
    out = exprs[0]
    for e in exprs[1:]:
        out = out | e
    return out


WIDE_OR = _profile_query(
    "wide OR of ANDs",
    " or ".join(f"({s})" for s, _, _ in _WIDE_TERMS),
    "(" + " OR ".join(f"({q})" for _, q, _ in _WIDE_TERMS) + ")",
    lambda: _any([p for _, _, p in _WIDE_TERMS]),
)

_EVENT_MEMBERS = f"""
    SELECT customer_id FROM orders
    WHERE ts >= {NOW} - INTERVAL 90 DAY
    GROUP BY customer_id
    HAVING count(*) FILTER (WHERE ts >= {NOW} - INTERVAL 30 DAY) >= 2 AND fsum(amount) > 200"""


def _event_members(f: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    """The profiles of the events query's members (Polars)."""
    active = (
        f["orders"]
        .filter(pl.col("ts") >= _days_ago(90))
        .group_by("customer_id")
        .agg((pl.col("ts") >= _days_ago(30)).sum().alias("n30"), pl.col("amount").sum().alias("s90"))
        .filter((pl.col("n30") >= 2) & (pl.col("s90") > 200))
    )
    return f["customers"].join(active, on="customer_id", how="semi")


EVENTS = Query(
    name="events aggregate",
    segql="count(orders where ts >= -30d) >= 2 and sum(orders.amount where ts >= -90d) > 200",
    sql=f"""
        SELECT COALESCE(a.n30, 0) >= 2 AND COALESCE(a.s90, 0) > 200 AS member
        FROM customers c LEFT JOIN (
            SELECT customer_id,
                   count(*) FILTER (WHERE ts >= {NOW} - INTERVAL 30 DAY) AS n30,
                   fsum(amount) FILTER (WHERE ts >= {NOW} - INTERVAL 90 DAY) AS s90
            FROM orders
            WHERE ts >= {NOW} - INTERVAL 90 DAY
            GROUP BY customer_id) a
        ON a.customer_id = c.customer_id""",
    polars=lambda f: (
        f["customers"]
        .join(
            f["orders"]
            .filter(pl.col("ts") >= _days_ago(90))
            .group_by("customer_id")
            .agg((pl.col("ts") >= _days_ago(30)).sum().alias("n30"), pl.col("amount").sum().alias("s90")),
            on="customer_id",
            how="left",
        )
        .select(((pl.col("n30").fill_null(0) >= 2) & (pl.col("s90").fill_null(0) > 200)).alias("member"))
    ),
    needs_orders=True,
    # Members have at least two orders: the aggregate, filtered, semi-joined with the profiles.
    count_sql=f"SELECT count(*) AS segment FROM customers WHERE customer_id IN ({_EVENT_MEMBERS})",
    members_sql=f"SELECT customer_id FROM customers WHERE customer_id IN ({_EVENT_MEMBERS})",
    polars_count=lambda f: _event_members(f).select(pl.len().alias("segment")),
    polars_members=lambda f: _event_members(f).select("customer_id"),
)

# --------------------------------------------------------- the 20-segment file
# Shared building blocks; every segment combines two or three of them.
_BLOCKS = {
    "recent": ("last_login >= -30d", f"last_login >= {NOW} - INTERVAL 30 DAY", pl.col("last_login") >= _days_ago(30)),
    "high_value": ("amount_spent > 800", "amount_spent > 800", pl.col("amount_spent") > 800),
    "young": ("age < 30", "age < 30", pl.col("age") < 30),
    "senior": ("age >= 60", "age >= 60", pl.col("age") >= 60),
    "gmail": (
        'email ends with "@gmail.com"',
        "ends_with(email, '@gmail.com')",
        pl.col("email").str.ends_with("@gmail.com"),
    ),
    "dach": (
        'country in ["DE", "PL", "CZ"]',
        "country IN ('DE', 'PL', 'CZ')",
        pl.col("country").is_in(["DE", "PL", "CZ"]),
    ),
    "subscribed": ("is_subscribed", "is_subscribed", pl.col("is_subscribed")),
    "long_time": (
        "signup_date < 2023-01-01",
        "signup_date < DATE '2023-01-01'",
        pl.col("signup_date") < dt.date(2023, 1, 1),
    ),
}
_COMBOS = [
    ("recent", "high_value"),
    ("recent", "young"),
    ("recent", "senior"),
    ("recent", "gmail"),
    ("recent", "dach"),
    ("high_value", "young"),
    ("high_value", "senior"),
    ("high_value", "dach"),
    ("gmail", "young"),
    ("gmail", "subscribed"),
    ("dach", "subscribed"),
    ("long_time", "recent"),
    ("long_time", "high_value"),
    ("senior", "subscribed"),
    ("young", "dach"),
    ("gmail", "dach"),
    ("recent", "high_value", "dach"),
    ("recent", "young", "gmail"),
    ("long_time", "senior", "subscribed"),
    ("high_value", "gmail", "subscribed"),
]


def _twenty_segments() -> Query:
    features = "\n".join(f"feature {name} = {s}" for name, (s, _, _) in _BLOCKS.items())
    segments = "\n".join(f"segment s{i:02d} = {' and '.join(combo)}" for i, combo in enumerate(_COMBOS, 1))
    # The DuckDB and Polars versions return the features too, as segql does.
    sql_cols = ",\n".join(
        [f"({sql}) AS {name}" for name, (_, sql, _) in _BLOCKS.items()]
        + [
            f"COALESCE({' AND '.join('(' + _BLOCKS[b][1] + ')' for b in combo)}, false) AS s{i:02d}"
            for i, combo in enumerate(_COMBOS, 1)
        ]
    )
    names = [f"s{i:02d}" for i in range(1, len(_COMBOS) + 1)]

    def polars(f: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        cols = []
        for name, combo in zip(names, _COMBOS, strict=True):
            expr = _BLOCKS[combo[0]][2]
            for b in combo[1:]:
                expr = expr & _BLOCKS[b][2]
            cols.append(expr.fill_null(False).alias(name))
        return f["customers"].select([expr.alias(name) for name, (_, _, expr) in _BLOCKS.items()] + cols)

    def where(combo: tuple[str, ...]) -> str:
        return " AND ".join("(" + _BLOCKS[b][1] + ")" for b in combo)

    def expr(combo: tuple[str, ...]) -> pl.Expr:
        out = _BLOCKS[combo[0]][2]
        for b in combo[1:]:
            out = out & _BLOCKS[b][2]
        return out

    counts = ", ".join(
        f"count(*) FILTER (WHERE {where(combo)}) AS {n}" for n, combo in zip(names, _COMBOS, strict=True)
    )
    return Query(
        name="20-segment file",
        segql=f"{features}\n{segments}",
        sql=f"SELECT {sql_cols} FROM customers",
        polars=polars,
        members=names,
        count_sql=f"SELECT {counts} FROM customers",
        members_sql=f"SELECT customer_id FROM customers WHERE {where(_COMBOS[0])}",
        polars_count=lambda f: f["customers"].select(
            [expr(combo).sum().cast(pl.Int64).alias(n) for n, combo in zip(names, _COMBOS, strict=True)]
        ),
        polars_members=lambda f: f["customers"].filter(expr(_COMBOS[0])).select("customer_id"),
        segment=names[0],
    )


TWENTY = _twenty_segments()


def single_segments() -> list[str]:
    """Each segment of the 20-segment file as a program of its own."""
    return [
        f"segment s{i:02d} = " + " and ".join(f"({_BLOCKS[b][0]})" for b in combo) for i, combo in enumerate(_COMBOS, 1)
    ]


QUERIES = [NUMERIC_IN, STRINGS, RELATIVE_DATES, WIDE_OR, EVENTS, TWENTY]
