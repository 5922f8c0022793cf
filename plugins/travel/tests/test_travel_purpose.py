"""travel.trip_purpose: hand-derived labels on small tables, and the real hotel
bookings (modeldata::hotel_rates) against the rule written independently in DuckDB SQL."""

from __future__ import annotations

import decimal
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
import pytest

import segql

# One booking per row: adults, children, babies, weekday nights, weekend nights,
# lead time (days), channel; then the label derived by hand from the documented
# rule (defaults: corporate channels ["corporate"], at most 4 nights, 14 days).
BOOKINGS = [
    (1, 0, 0, 3, 0, 5, "direct", "business"),  # solo, weekday-only, 3 nights, booked 5 days ahead
    (1, 0, 0, 4, 0, 14, "online_travel_agent", "business"),  # both limits reached exactly
    (1, 0, 0, 5, 0, 14, "direct", "leisure"),  # 5 weekday nights > 4
    (1, 0, 0, 4, 0, 15, "direct", "leisure"),  # booked 15 days ahead > 14
    (1, 0, 0, 2, 1, 3, "direct", "leisure"),  # a weekend night: not weekday-only; one adult is no couple
    (1, 0, 0, 0, 0, 0, "direct", "leisure"),  # no night at all (day use)
    (2, 0, 0, 2, 1, 30, "corporate", "business"),  # corporate rate wins over couple
    (2, 0, 0, 2, 1, 30, "Corporate", "business"),  # channel compared lower-cased
    (2, 0, 0, 2, 1, 30, "direct", "couple"),
    (2, 0, 0, 3, 0, 30, "direct", "leisure"),  # two adults, weekdays only
    (2, 1, 0, 2, 1, 30, "corporate", "family"),  # children first
    (0, 0, 1, 1, 0, 1, "direct", "family"),  # a baby and no adult is still a family party
    (3, 0, 0, 1, 2, 50, "groups", "leisure"),
    (0, 0, 0, 2, 0, 3, "corporate", None),  # nobody travels
    (1, 0, 0, 2, 0, 3, None, "business"),  # unknown channel, but the solo weekday rule is true
    (2, 0, 0, 2, 1, 30, None, None),  # unknown channel could make it business: undecided
    (2, None, 0, 2, 1, 30, "direct", None),  # children unknown: family undecided
    (2, 2, None, 2, 1, 30, "direct", "family"),  # two children: family whatever babies is
    (1, 0, 0, 3, 0, None, "direct", None),  # lead time unknown: business undecided
    (1, 0, 0, 3, 1, None, "direct", "leisure"),  # a weekend night rules business out anyway
    (None, 0, 0, 2, 1, 10, "direct", None),  # adults unknown: could be nobody
    (2, 0, 0, None, 2, 10, "direct", "couple"),  # weekday nights do not matter to a couple
    (1, 0, 0, 2, 0, 0, "CORPORATE", "business"),
]

# The same bookings with corporate_channels: ["groups"], business_max_nights: 5,
# business_max_lead_days: 15, labelled by hand.
WITH_OTHER_THRESHOLDS = [
    "business", "business", "business", "business", "leisure", "leisure",
    "couple", "couple", "couple", "leisure", "family", "family",
    "business", None, "business", None, None, "family",
    None, "leisure", None, "couple", "business",
]  # fmt: skip

Run = Callable[..., pa.Table]
COLUMNS = ["adults", "children", "babies", "weekday_nights", "weekend_nights", "lead_time_days", "channel"]


def bookings() -> pa.Table:
    rows = list(zip(*BOOKINGS))
    return pa.table({name: list(values) for name, values in zip(COLUMNS, rows)})


def labels(run: Run, source: str, table: pa.Table, host: segql.PluginHost) -> list[str | None]:
    return run(source, table, host)["p"].to_pylist()


def test_hand_made_bookings_with_defaults(run: Run, host: segql.PluginHost) -> None:
    assert labels(run, "feature p = travel.trip_purpose()", bookings(), host) == [row[-1] for row in BOOKINGS]


def test_hand_made_bookings_with_other_thresholds(run: Run, host: segql.PluginHost) -> None:
    source = """feature p = travel.trip_purpose(corporate_channels: ["groups"], business_max_nights: 5,
                                                business_max_lead_days: 15)"""
    assert labels(run, source, bookings(), host) == WITH_OTHER_THRESHOLDS


def test_thresholds_as_parameters(run: Run, host: segql.PluginHost) -> None:
    source = """
        param lead: int = 14
        feature p = travel.trip_purpose(business_max_lead_days: $lead)
    """
    row4 = 3  # solo, 4 weekday nights, booked 15 days ahead
    assert run(source, bookings(), host)["p"][row4].as_py() == "leisure"
    assert run(source, bookings(), host, params={"lead": 15})["p"][row4].as_py() == "business"


def test_other_column_types(run: Run, host: segql.PluginHost) -> None:
    """Counts as floats (NaN = missing) and decimals, the channel dictionary-encoded."""
    table = pa.table(
        {
            "adults": pa.array([1.0, 1.0, 2.0, 2.0]),
            "children": pa.array([decimal.Decimal("0"), decimal.Decimal("0"), decimal.Decimal("0"), None]),
            "babies": [0, 0, 0, 1],
            "weekday_nights": [2, 2, 1, 1],
            "weekend_nights": [0, 0, 1, 1],
            "lead_time_days": pa.array([3.0, float("nan"), 3.0, 3.0]),
            "channel": pa.array(["direct", "direct", "direct", "corporate"]).dictionary_encode(),
        }
    )
    assert labels(run, "feature p = travel.trip_purpose()", table, host) == ["business", None, "couple", "family"]


def test_unusable_counts_are_unknown(run: Run, host: segql.PluginHost) -> None:
    """segql.pack's rule: a negative, NaN or infinite count is null, and the rules
    treat it as unknown (SQL's three-valued logic)."""
    inf, nan = float("inf"), float("nan")
    table = pa.table(
        {
            "adults": [-1.0, 2.0, 2.0, 1.0, 2.0],
            "children": [0.0, inf, 0.0, 0.0, 0.0],
            "babies": [0.0, 0.0, 1.0, 0.0, 0.0],
            "weekday_nights": [2.0, 2.0, 2.0, 2.0, 1.0],
            "weekend_nights": [0.0, 0.0, -1.0, 0.0, nan],
            "lead_time_days": [3.0, 3.0, 3.0, inf, 3.0],
            "channel": ["direct"] * 5,
        }
    )
    assert labels(run, "feature p = travel.trip_purpose()", table, host) == [
        None,  # adults unknown: "no guests" cannot be ruled out
        None,  # children unknown: "family" cannot be ruled out
        "family",  # a baby: decided before the (unknown) weekend nights matter
        None,  # a solo weekday stay booked an unknown time ahead: "business" undecided
        None,  # two adults, weekend nights unknown: "couple" undecided
    ]


def test_constant_arguments(run: Run, host: segql.PluginHost) -> None:
    """Every input is an ordinary expression, constants included."""
    source = """
        feature p = travel.trip_purpose(adults: 1, children: 0, babies: 0, weekday_nights: 2 + 1,
                                        weekend_nights: 0, lead_time_days: lead_time_days, channel: "direct")
    """
    assert labels(run, source, bookings(), host)[:4] == ["business", "business", "business", "leisure"]


def test_first_rows_of_hotel_rates_read_by_hand(run: Run, hotels: pa.Table, host: segql.PluginHost) -> None:
    """Rows 1-3 of hotel_rates: (2 adults, 1 child), (2 adults, 2 weekend nights), (2 adults, 2 weekend nights)."""
    head = hotels.slice(0, 3)
    assert head["children"].to_pylist() == [1, 0, 0]
    assert head["stays_in_weekend_nights"].to_pylist() == [0, 2, 2]
    source = """feature p = travel.trip_purpose(weekday_nights: stays_in_week_nights,
        weekend_nights: stays_in_weekend_nights, lead_time_days: lead_time, channel: market_segment)"""
    assert labels(run, source, head, host) == ["family", "couple", "couple"]


HOTEL_SEGMENTS = """
feature purpose = travel.trip_purpose(
    adults: adults, children: children, babies: babies,
    weekday_nights: stays_in_week_nights, weekend_nights: stays_in_weekend_nights,
    lead_time_days: lead_time, channel: market_segment)
segment business = purpose = "business"
segment family = purpose = "family"
segment couple = purpose = "couple"
segment leisure = purpose = "leisure"
"""


def test_hotel_rates_against_duckdb(
    run: Run, hotels: pa.Table, host: segql.PluginHost, oracle: dict[str, list]
) -> None:
    out = run(HOTEL_SEGMENTS, hotels, host)
    expected = oracle["purpose"]
    assert out["purpose"].to_pylist() == expected
    for label in ("business", "family", "couple", "leisure"):
        assert out[label].to_pylist() == [p == label for p in expected]
    # Every label occurs in the real data; the one booking without guests is null.
    assert {p: expected.count(p) for p in set(expected)} == {
        "couple": 7074, "leisure": 5210, "business": 1590, "family": 1527, None: 1,
    }  # fmt: skip


def test_hotel_rates_with_other_thresholds(
    run: Run,
    hotels: pa.Table,
    hotel_df: pd.DataFrame,
    host: segql.PluginHost,
    oracle_with: Callable[..., dict[str, list]],
) -> None:
    """Positional arguments, another channel column (distribution_channel) and tighter business limits."""
    source = """feature purpose = travel.trip_purpose(adults, children, babies, stays_in_week_nights,
        stays_in_weekend_nights, lead_time, distribution_channel, ["corporate", "direct"], 3, 7)"""
    out = run(source, hotels, host)
    expected = oracle_with(channel="distribution_channel", channels=("corporate", "direct"), max_nights=3, max_lead=7)
    assert out["purpose"].to_pylist() == expected["purpose"]
    # Direct bookings now count as business too (checked a third way, with pandas).
    df = hotel_df
    no_kids = (df.children == 0) & (df.babies == 0)
    on_rate = df.distribution_channel.isin(["corporate", "direct"]) & (df.adults >= 1)
    short_solo = (df.adults == 1) & (df.stays_in_weekend_nights == 0) & df.stays_in_week_nights.between(1, 3)
    business = no_kids & (on_rate | (short_solo & (df.lead_time <= 7)))
    assert expected["purpose"].count("business") == int(business.sum()) > 4000


def test_wrong_argument_type_is_a_compile_error(host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlTypeError) as err:
        segql.compile('feature p = travel.trip_purpose(adults: "two")', plugins=host)
    assert "travel.trip_purpose expects number" in err.value.message
    assert (err.value.line, err.value.column) == (1, 41)


def test_thresholds_must_be_constants(host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlTypeError, match="must be a constant"):
        segql.compile("feature p = travel.trip_purpose(business_max_lead_days: lead_time_days)", plugins=host).check(
            bookings()
        )


def test_null_threshold_is_a_plugin_error(run: Run, host: segql.PluginHost) -> None:
    with pytest.raises(segql.PluginError, match="business_max_nights must not be null"):
        run("feature p = travel.trip_purpose(business_max_nights: null)", bookings(), host)


def test_missing_column_names_the_argument(host: segql.PluginHost, hotels: pa.Table) -> None:
    with pytest.raises(segql.SegqlNameError) as err:
        segql.compile("segment b = travel.trip_purpose() = 'business'", plugins=host).evaluate(hotels)
    assert "weekday_nights" in err.value.message and "pass weekday_nights: … explicitly" in str(err.value)


def test_inside_an_aggregate_over_bookings(run: Run, host: segql.PluginHost) -> None:
    """Guests as the profile, their bookings as a related table: the function runs on booking rows."""
    stays = bookings().append_column("guest_id", pa.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3] + [4] * 11))
    guests = pa.table({"guest_id": [1, 2, 3, 4, 5]})
    source = """feature business_stays = count(stays where travel.trip_purpose() = "business")
                segment frequent_business = business_stays >= 2"""
    out = run(source, guests, host, key="guest_id", related={"stays": stays})
    # rows 1-3 -> guest 1 (business, business, leisure); 4-6 -> guest 2 (leisure x3);
    # 7-12 -> guest 3 (business, business, couple, leisure, family, family); 13-23 -> guest 4
    # (leisure, None, business, None, None, family, None, leisure, None, couple, business).
    assert out["business_stays"].to_pylist() == [2, 0, 2, 2, 0]
    assert out["frequent_business"].to_pylist() == [True, False, True, True, False]
