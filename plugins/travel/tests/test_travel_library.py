"""The ready-made features and segments (travel.purpose, travel.business_trips, …) on
the real hotel bookings, with the host's conventions pointing at hotel_rates' columns."""

from __future__ import annotations

import pyarrow as pa
import pytest

import segql

READY_MADE = """
feature purpose = travel.purpose
feature type = travel.type
segment business = travel.business_trips
segment leisure = travel.leisure_trips
segment family = travel.family_trips
segment couples = travel.couples_getaways
segment luxury = travel.luxury_travelers
segment budget = travel.budget_travelers
segment solo = travel.solo_travelers
segment portuguese_luxury "Luxury travellers from Portugal" = travel.luxury_travelers and country = "prt"
"""


@pytest.fixture(scope="module")
def ready_made(hotels: pa.Table, hotel_host: segql.PluginHost) -> pa.Table:
    return segql.compile(READY_MADE, plugins=hotel_host).evaluate(hotels, key="rownames")


def test_features(ready_made: pa.Table, oracle: dict[str, list]) -> None:
    assert ready_made["purpose"].to_pylist() == oracle["purpose"]
    assert ready_made["type"].to_pylist() == oracle["type"]


@pytest.mark.parametrize(
    ("segment", "feature", "label"),
    [
        ("business", "purpose", "business"),
        ("leisure", "purpose", "leisure"),
        ("family", "purpose", "family"),
        ("couples", "purpose", "couple"),
        ("luxury", "type", "luxury"),
        ("budget", "type", "budget"),
        ("solo", "type", "solo"),
    ],
)
def test_segments(ready_made: pa.Table, oracle: dict[str, list], segment: str, feature: str, label: str) -> None:
    expected = [value == label for value in oracle[feature]]
    assert ready_made[segment].to_pylist() == expected
    assert any(expected)


def test_combined_with_user_conditions(ready_made: pa.Table, hotels: pa.Table, oracle: dict[str, list]) -> None:
    countries = hotels["country"].to_pylist()
    expected = [t == "luxury" and c == "prt" for t, c in zip(oracle["type"], countries)]
    assert ready_made["portuguese_luxury"].to_pylist() == expected
    assert ready_made["rownames"].to_pylist() == hotels["rownames"].to_pylist()


def test_default_conventions_on_a_booking_table(host: segql.PluginHost) -> None:
    """With the default column names no renaming is needed."""
    bookings = pa.table(
        {
            "adults": [1, 2, 2, 2],
            "children": [0, 0, 1, 0],
            "babies": [0, 0, 0, 0],
            "weekday_nights": [2, 1, 3, 4],
            "weekend_nights": [0, 2, 2, 0],
            "lead_time_days": [1, 60, 90, 30],
            "channel": ["direct"] * 4,
            "price_per_night": [80.0, 200.0, 120.0, 40.0],
        }
    )
    out = segql.compile(
        "segment a = travel.business_trips\nsegment b = travel.couples_getaways\nsegment c = travel.family_trips\n"
        "segment d = travel.leisure_trips\nsegment e = travel.luxury_travelers\nsegment f = travel.budget_travelers",
        plugins=host,
    ).evaluate(bookings)
    # Prices 40, 80, 120, 200: 80th = 120 + 0.4 × 80 = 152, 20th = 40 + 0.6 × 40 = 64.
    # Row 1: business. Row 2: couple, 200 -> luxury. Row 3: family, 120 mid. Row 4: leisure, 40 -> budget.
    assert out.to_pydict() == {
        "a": [True, False, False, False],
        "b": [False, True, False, False],
        "c": [False, False, True, False],
        "d": [False, False, False, True],
        "e": [False, True, False, False],
        "f": [False, False, False, True],
    }


def test_unrenamed_conventions_point_at_the_missing_column(hotels: pa.Table, host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlNameError, match="weekday_nights"):
        segql.compile("segment b = travel.business_trips", plugins=host).evaluate(hotels)
