"""travel.traveler_type: price quantiles worked out on paper for small tables, and
the real hotel bookings against DuckDB's quantile_cont and the documented rule in SQL."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import segql

Run = Callable[..., pa.Table]
TYPE_OF = "feature t = travel.traveler_type(adults: adults, price: price, purpose: stated_purpose)"


def party(
    prices: list[float | None],
    purposes: list[str | None],
    adults: list[int] | None = None,
    children: list[int] | None = None,
    babies: list[int] | None = None,
) -> pa.Table:
    n = len(prices)
    return pa.table(
        {
            "price": pa.array(prices, pa.float64()),
            "stated_purpose": pa.array(purposes, pa.string()),
            "adults": adults or [1] * n,
            "children": children or [0] * n,
            "babies": babies or [0] * n,
        }
    )


def types(run: Run, table: pa.Table, host: segql.PluginHost, source: str = TYPE_OF) -> list[str | None]:
    return run(source, table, host)["t"].to_pylist()


# Prices 10, 20, …, 100 (n = 10). 80th percentile: position 0.8 × 9 = 7.2, so
# 80 + 0.2 × (90 − 80) = 82; 20th: position 1.8, so 20 + 0.8 × (30 − 20) = 28.
# Luxury: 90 and 100; budget: 10 and 20.
TEN = party(
    prices=[10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    purposes=[
        "leisure",
        "business",
        "leisure",
        "family",
        "couple",
        "leisure",
        "family",
        "leisure",
        "family",
        "Business",
    ],
    adults=[2, 1, 1, 2, 2, 0, 2, 3, 2, 1],
    children=[0, 0, 0, 1, 0, 0, 0, 0, 2, 0],
    babies=[0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
)


def test_quintiles_of_ten_prices(run: Run, host: segql.PluginHost) -> None:
    assert types(run, TEN, host) == [
        "budget",  # 10 <= 28
        "business",  # business before the price tiers
        "solo",  # 30, one adult
        "family",  # 40, a child
        None,  # 50, two adults, mid-priced: no type
        None,  # nobody travels
        "family",  # 70, a baby
        None,  # 80 < 82, three adults
        "luxury",  # 90 >= 82: before family
        "business",  # purpose compared lower-cased
    ]


def test_other_quantiles(run: Run, host: segql.PluginHost) -> None:
    # 90th: position 8.1 -> 90 + 0.1 × 10 = 91 (luxury: 100 only); 50th: position 4.5 -> 55 (budget: 10 … 50).
    source = TYPE_OF.replace("stated_purpose", "stated_purpose, luxury_quantile: 0.9, budget_quantile: 0.5")
    assert types(run, TEN, host, source) == [
        "budget", "business", "budget", "budget", "budget", None, "family", None, "family", "business",
    ]  # fmt: skip


def test_nulls_and_nan_are_left_out_of_the_population(run: Run, host: segql.PluginHost) -> None:
    # Known prices 100, 200, 300, 400, 500: 80th = 400 + 0.2 × 100 = 420, 20th = 100 + 0.8 × 100 = 180.
    table = party(
        prices=[100, None, 200, 300, float("nan"), 400, 500, None],
        purposes=["leisure"] * 7 + ["business"],
    )
    assert types(run, table, host) == ["budget", None, "solo", "solo", None, "solo", "luxury", "business"]


def test_infinite_prices_are_unknown(run: Run, host: segql.PluginHost) -> None:
    """segql.pack's rule: ±inf is unusable, i.e. null: out of the quantiles, and no tier.
    Known prices 100, 200, 300, 400: 80th = 300 + 0.4 x 100 = 340, 20th = 100 + 0.6 x 100 = 160."""
    inf = float("inf")
    table = party(prices=[inf, 100, 200, 300, 400, -inf], purposes=["leisure"] * 6)
    assert types(run, table, host) == [None, "budget", "solo", "solo", "luxury", None]


def test_unusable_counts_are_unknown(run: Run, host: segql.PluginHost) -> None:
    """A negative or infinite count of adults is null: no guests cannot be ruled out (null)."""
    table = pa.table(
        {
            "price": [100.0, 200.0, 300.0],
            "stated_purpose": ["leisure"] * 3,
            "adults": [-1.0, float("inf"), 1.0],
            "children": [0, 0, 0],
            "babies": [0, 0, 0],
        }
    )
    # Known prices 100, 200, 300 (all three: the price is usable): 80th = 260, 20th = 140.
    assert types(run, table, host) == [None, None, "luxury"]


def test_unknown_purpose_leaves_the_type_undecided(run: Run, host: segql.PluginHost) -> None:
    # 10, 20, 30: 80th = 20 + 0.6 × 10 = 26, 20th = 10 + 0.4 × 10 = 14.
    assert types(run, party([10, 20, 30], [None, "leisure", "leisure"]), host) == [None, "solo", "luxury"]


def test_ties_at_the_thresholds(run: Run, host: segql.PluginHost) -> None:
    # 10, 10, 10, 10, 20: 80th = 10 + 0.2 × 10 = 12, 20th = 10: every 10 is <= 10.
    assert types(run, party([10, 10, 10, 10, 20], ["leisure"] * 5), host) == ["budget"] * 4 + ["luxury"]
    # 10, 20, 20, 20, 30: 80th = 22, 20th = 18: the 20s are mid-priced.
    assert types(run, party([10, 20, 20, 20, 30], ["leisure"] * 5), host) == [
        "budget",
        "solo",
        "solo",
        "solo",
        "luxury",
    ]


def test_degenerate_populations(run: Run, host: segql.PluginHost) -> None:
    # One price: both thresholds are that price, and luxury is tested first.
    assert types(run, party([50, 50, 50], ["couple"] * 3, adults=[2, 2, 2]), host) == ["luxury"] * 3
    assert types(run, party([75], ["leisure"]), host) == ["luxury"]
    # No known price: only business can be decided.
    assert types(run, party([None, None], ["business", "leisure"]), host) == ["business", None]


def test_population_is_every_row_evaluated(run: Run, host: segql.PluginHost) -> None:
    """The same booking changes type with the population around it (that is what population=True declares)."""
    assert types(run, TEN.slice(0, 5), host) == ["budget", "business", "solo", "family", "luxury"]  # 50 >= 42
    source = TYPE_OF + '\nsegment luxury = t = "luxury" and price < 60'
    # A segment's condition does not narrow the population: 50 is not luxury among all ten rows.
    assert run(source, TEN, host)["luxury"].to_pylist() == [False] * 10


def test_default_purpose_uses_the_callers_party(run: Run, host: segql.PluginHost) -> None:
    """Without `purpose:`, travel.trip_purpose runs on the same booking, with the adults,
    children and babies given to traveler_type (there is no `adults` column here)."""
    table = pa.table(
        {
            "n_adults": [1, 1, 2],
            "children": [0, 0, 0],
            "babies": [0, 0, 0],
            "weekday_nights": [2, 2, 2],
            "weekend_nights": [0, 1, 1],
            "lead_time_days": [3, 3, 3],
            "channel": ["direct", "direct", "corporate"],
            "price_per_night": [90.0, 60.0, 30.0],
        }
    )
    source = "feature t = travel.traveler_type(adults: n_adults)"
    # Row 1 is a solo weekday trip booked 3 days ahead and row 3 is on a corporate rate: business.
    # Business rows still count in the population: prices 30, 60, 90 give 80th = 60 + 0.6 × 30 = 78
    # and 20th = 30 + 0.4 × 30 = 42, so row 2 (60, one adult, a weekend night) is mid-priced: solo.
    assert types(run, table, host, source) == ["business", "solo", "business"]


def test_quantiles_must_be_fractions(run: Run, host: segql.PluginHost) -> None:
    bad = TYPE_OF.replace("stated_purpose", "stated_purpose, luxury_quantile: 1.5")
    with pytest.raises(segql.PluginError, match="luxury_quantile must be between 0 and 1"):
        types(run, TEN, host, bad)
    crossed = TYPE_OF.replace("stated_purpose", "stated_purpose, luxury_quantile: 0.3, budget_quantile: 0.6")
    with pytest.raises(segql.PluginError, match="must not exceed luxury_quantile"):
        types(run, TEN, host, crossed)
    column = TYPE_OF.replace("stated_purpose", "stated_purpose, luxury_quantile: price / 100")
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        types(run, TEN, host, column)


HOTEL_TYPES = """
feature purpose = travel.trip_purpose(weekday_nights: stays_in_week_nights, weekend_nights: stays_in_weekend_nights,
                                      lead_time_days: lead_time, channel: market_segment)
feature type = travel.traveler_type(adults: adults, children: children, babies: babies,
                                    price: avg_price_per_room, purpose: purpose)
segment luxury = type = "luxury"
segment budget = type = "budget"
segment solo = type = "solo"
"""


def test_hotel_rates_against_duckdb(
    run: Run, hotels: pa.Table, hotel_df: pd.DataFrame, host: segql.PluginHost, oracle: dict[str, list]
) -> None:
    out = run(HOTEL_TYPES, hotels, host)
    expected = oracle["type"]
    assert out["type"].to_pylist() == expected
    for label in ("luxury", "budget", "solo"):
        assert out[label].to_pylist() == [t == label for t in expected]
    # The quintile thresholds, a third way: numpy's linear percentiles.
    low, high = np.percentile(hotel_df["avg_price_per_room"], [20, 80])
    price, purpose = hotel_df["avg_price_per_room"], pd.Series(oracle["purpose"])
    guests = (hotel_df[["adults", "children", "babies"]].sum(axis=1) > 0).to_numpy()
    not_business = (purpose != "business").to_numpy() & guests
    assert expected.count("luxury") == int(((price >= high).to_numpy() & not_business).sum())
    assert expected.count("budget") == int(((price <= low).to_numpy() & (price < high).to_numpy() & not_business).sum())
    assert {t: expected.count(t) for t in set(expected)} == {
        None: 7127, "luxury": 3056, "budget": 2197, "business": 1590, "solo": 799, "family": 633,
    }  # fmt: skip


def test_hotel_rates_with_other_quantiles(
    run: Run, hotels: pa.Table, host: segql.PluginHost, oracle_with: Callable[..., dict[str, list]]
) -> None:
    source = HOTEL_TYPES.replace("purpose: purpose)", "purpose: purpose, luxury_quantile: 0.95, budget_quantile: 0.1)")
    out = run(source, hotels, host)
    assert out["type"].to_pylist() == oracle_with(lux=0.95, bud=0.1)["type"]
