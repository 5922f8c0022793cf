"""The pack's SQL (``Program.to_sql``): price tiers bit for bit as Arrow's
quantile computes them, random bookings on DuckDB against the Arrow engine,
every dialect, refusals.  (The paper cases and the hotel bookings run on both
engines in test_travel_type.py and test_travel_purpose.py: the ``run`` fixture.)"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Callable
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from segql_travel import declarations, travel_sql

import segql

DIALECTS = ("duckdb", "spark", "postgres", "bigquery", "snowflake")


def random_prices(rng: np.random.Generator, trial: int) -> np.ndarray:
    """Few distinct values (ties at the thresholds), repeating thirds (interpolations
    between equal prices that do not round back), signed zeros, infinities, NaN."""
    n = int(rng.integers(1, 40))
    kind = trial % 5
    if kind == 0:
        return rng.normal(100, 50, n)
    if kind == 1:
        return np.round(rng.uniform(0, 300, n), 2)
    if kind == 2:
        return rng.integers(0, 5, n).astype(float) * 0.1
    if kind == 3:
        return rng.choice([0.1, 0.7, -0.0, 0.0, math.inf, -math.inf, 3.3, math.nan], n)
    return rng.choice([0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e300], n)


def test_thresholds_are_arrows_quantiles_bit_for_bit() -> None:
    """1,000 random price columns and quantiles: the SQL threshold equals
    pc.quantile(interpolation="linear") exactly (NaN, from -inf and +inf, as null)."""
    rng = np.random.default_rng(2026)
    writer = types.SimpleNamespace(rows_from='"profiles" AS p', is_nan=lambda x: f"ISNAN({x})")
    price = 'CASE WHEN ISNAN(p."price") THEN NULL ELSE p."price" END'
    con = duckdb.connect()
    compared = interpolated = 0
    for trial in range(1000):
        values = random_prices(rng, trial)
        prices = pa.array(values, mask=rng.uniform(size=len(values)) < 0.1)
        q = float(rng.choice([0.0, 1.0, 0.2, 0.8, 1 / 3, rng.uniform()]))
        con.register("profiles", pa.table({"price": prices}))
        got = con.sql("SELECT " + travel_sql.quantile_sql(price, q, writer)).fetchall()[0][0]
        known = pc.drop_null(pc.if_else(pc.is_nan(prices), None, prices))
        expected = pc.quantile(known, q=[q], interpolation="linear")[0].as_py() if len(known) else None
        if expected is not None and math.isnan(expected):
            expected = None
        # Doubles that are == are the same bits, except 0.0 and -0.0 (tied prices in another order).
        assert got == expected, (prices, q)
        compared += 1
        interpolated += len(known) > 1 and ((len(known) - 1) * q) % 1 != 0
    con.close()
    assert compared == 1000 and interpolated > 500


TRIALS = 120 if os.environ.get("CI") or os.environ.get("SEGQL_LONG") else 40
"""Random booking tables: a third by default, all under CI or SEGQL_LONG=1."""


def test_random_bookings_agree_with_the_arrow_engine(host: segql.PluginHost, with_sql: Callable[..., pa.Table]) -> None:
    """TRIALS random tables x 3 pairs of quantiles: float, integer and decimal prices
    (ties, NaN, nulls, infinities) and parties; the types on DuckDB equal Arrow's."""
    rng = np.random.default_rng(7)
    for trial in range(TRIALS):
        prices = random_prices(rng, trial)
        n = len(prices)
        if trial % 7 == 5:
            column = pa.array([Decimal(int(x)).scaleb(-2) for x in rng.integers(1, 9999, n)], pa.decimal128(6, 2))
        elif trial % 7 == 6:
            column = pa.array(rng.integers(50, 60, n))
        else:
            column = pa.array(prices, mask=rng.uniform(size=n) < 0.1)
        table = pa.table(
            {
                "adults": pa.array(rng.integers(0, 3, n), mask=rng.uniform(size=n) < 0.05),
                "children": rng.integers(0, 2, n),
                "babies": rng.integers(0, 2, n) * (rng.uniform(size=n) < 0.2),
                "price_per_night": column,
                "purpose": rng.choice(["business", "leisure", "Business"], n),
            }
        )
        features = []
        for i in range(3):
            luxury = float(rng.choice([0.8, 1.0, 1 / 3, rng.uniform()]))
            budget = float(rng.uniform(0, luxury))
            features.append(
                f"feature t{i} = travel.traveler_type(purpose: purpose, luxury_quantile: {luxury!r}, "
                f"budget_quantile: {budget!r})"
            )
        program = segql.compile("\n".join([*features, 'segment luxury = t0 = "luxury"']), plugins=host)
        expected = program.evaluate(table)
        got = with_sql(program, table)
        assert got.to_pylist() == expected.to_pylist(), (table.to_pydict(), features)


def test_every_dialect_parses_back(host: segql.PluginHost) -> None:
    program = segql.compile(declarations.SOURCE, plugins=host)
    schema = pa.schema(
        [(name, pa.int64()) for name in ("id", "adults", "children", "babies", "weekday_nights", "weekend_nights")]
        + [("lead_time_days", pa.float64()), ("channel", pa.string()), ("price_per_night", pa.float64())]
    )
    for dialect in DIALECTS:
        sql = program.to_sql(dialect, schema=schema, key="id")
        assert sqlglot.parse_one(sql, read=dialect) is not None
        assert sql.count("GROUP BY") == 8, dialect  # two thresholds in type and in its three segments


def test_arguments_are_checked_by_to_sql(host: segql.PluginHost) -> None:
    schema = pa.schema([("adults", pa.int64()), ("children", pa.int64()), ("babies", pa.int64()), ("p", pa.float64())])
    source = 'feature t = travel.traveler_type(price: p, purpose: "x", luxury_quantile: 0.3, budget_quantile: 0.6)'
    with pytest.raises(segql.PluginError, match="must not exceed luxury_quantile") as info:
        segql.compile(source, plugins=host).to_sql(schema=schema)
    assert (info.value.line, info.value.column) == (1, source.index("travel.") + 1)
    with pytest.raises(segql.PluginError, match="luxury_quantile must be between 0 and 1"):
        segql.compile(
            source.replace("0.3", "$q").replace("feature", "param q: float = 2\nfeature"), plugins=host
        ).to_sql(schema=schema)


def test_a_list_parameter_of_channels(host: segql.PluginHost, with_sql: Callable[..., pa.Table]) -> None:
    table = pa.table(
        {
            "adults": [2, 2, 2],
            "children": [0, 0, 0],
            "babies": [0, 0, 0],
            "weekday_nights": [2, 2, 2],
            "weekend_nights": [1, 1, 1],
            "lead_time_days": [30, 30, 30],
            "channel": ["Groups", "corporate", None],
        }
    )
    source = """
    param channels: list<string> = ["corporate"]
    feature p = travel.trip_purpose(corporate_channels: $channels)
    """
    program = segql.compile(source, plugins=host)
    for channels, expected in (
        (["GROUPS", None], ["business", "couple", None]),
        ([], ["couple", "couple", None]),  # a null channel stays unknown, even against no channels
        (None, None),
    ):
        if expected is None:  # a null list is a bad argument, as in evaluate
            with pytest.raises(segql.PluginError, match="corporate_channels must not be null"):
                with_sql(program, table, params={"channels": channels})
            continue
        assert with_sql(program, table, params={"channels": channels})["p"].to_pylist() == expected
        assert program.evaluate(table, params={"channels": channels})["p"].to_pylist() == expected


def test_the_type_inside_an_aggregate_is_refused_with_its_position(host: segql.PluginHost) -> None:
    source = 'feature n = count(stays where travel.traveler_type(purpose: "x") = "luxury")'
    stays = pa.schema([("guest_id", pa.int64()), ("adults", pa.int64()), ("children", pa.int64())])
    stays = stays.append(pa.field("babies", pa.int64())).append(pa.field("price_per_night", pa.float64()))
    with pytest.raises(segql.SegqlError, match="sees the related rows as its population") as info:
        segql.compile(source, plugins=host).to_sql(
            schema=pa.schema([("guest_id", pa.int64())]), related={"stays": stays}, key="guest_id"
        )
    assert info.value.column == source.index("travel.") + 1
