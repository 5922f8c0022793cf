"""ecommerce.purchase_frequency_tier and the frequent_buyers / lost_customers segments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

import segql

CDNOW_TIER_SQL = """
SELECT customer_id,
       CASE WHEN date_diff('day', max(day), DATE '1998-07-01') > 180 THEN 'lost'
            WHEN count(*) FILTER (WHERE day >= DATE '1998-04-02') >= 13 THEN 'high'   -- 1998-07-01 minus 90 days
            WHEN count(*) FILTER (WHERE day >= DATE '1998-04-02') >= 3 THEN 'medium'
            ELSE 'low' END
FROM orders GROUP BY customer_id
"""


def test_cdnow_tiers_match_the_rule(cdnow: Any, sql: Any) -> None:
    out = cdnow(
        """
        feature tier = ecommerce.purchase_frequency_tier()
        feature ready = ecommerce.frequency_tier
        segment frequent = ecommerce.frequent_buyers
        segment lost = ecommerce.lost_customers
        """
    )
    expected = sql(CDNOW_TIER_SQL)
    assert out["tier"] == expected
    assert out["ready"] == expected
    assert out["frequent"] == [t == "high" for t in expected]
    assert out["lost"] == [t == "lost" for t in expected]
    assert set(expected) == {"high", "medium", "low", "lost"}


def test_cdnow_hand_checked_customers(cdnow: Any) -> None:
    """From the raw file: customer 1 ordered once, 1997-01-01 (lost); customer 3's last
    order is 1998-05-28, 34 days before as_of, the only one since 1998-04-02 (low)."""
    out = cdnow("feature tier = ecommerce.purchase_frequency_tier()")
    assert out["tier"][0] == "lost"
    assert out["tier"][2] == "low"


AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _ago(days: float) -> dt.datetime:
    return (AS_OF - dt.timedelta(days=days)).replace(tzinfo=None)


def test_small_table_boundaries(host: segql.PluginHost) -> None:
    """Paper derivation, as_of 2026-11-01T00:00Z:
    1: 13 orders 1..13 days ago            -> 13 in 90 days            -> high
    2: 12 orders 1..12 days ago            -> 12                       -> medium
    3: 3 orders, 1, 2 and exactly 90 days  -> 3 (ts >= -90d includes)  -> medium
    4: 3 orders, 1, 2 and 90 days 1 hour   -> 2                        -> low
    5: 1 order exactly 180 days ago        -> recency 180, not > 180   -> low
    6: 1 order 180.5 days ago              -> recency floor(180.5)=180 -> low
    7: 1 order 181 days ago                -> recency 181              -> lost
    8: no orders                           -> null
    """
    ids: list[int] = []
    stamps: list[dt.datetime] = []
    for cid, ages in {
        1: range(1, 14),
        2: range(1, 13),
        3: [1, 2, 90],
        4: [1, 2, 90 + 1 / 24],
        5: [180],
        6: [180.5],
        7: [181],
    }.items():
        for age in ages:
            ids.append(cid)
            stamps.append(_ago(age))
    orders = pa.table({"customer_id": ids, "ts": pa.array(stamps, pa.timestamp("us")), "amount": [1.0] * len(ids)})
    program = segql.compile(
        """
        feature tier = ecommerce.purchase_frequency_tier()
        segment frequent = ecommerce.frequent_buyers
        segment lost = ecommerce.lost_customers
        """,
        plugins=host,
    )
    out = program.evaluate(
        pa.table({"customer_id": list(range(1, 9))}), key="customer_id", related={"orders": orders}, as_of=AS_OF
    )
    assert out["tier"].to_pylist() == ["high", "medium", "medium", "low", "low", "low", "lost", None]
    assert out["frequent"].to_pylist() == [True] + [False] * 7
    assert out["lost"].to_pylist() == [False] * 6 + [True, False]


def test_explicit_inputs(host: segql.PluginHost) -> None:
    """Constants and profile columns as inputs; lost wins over a high count."""
    profile = pa.table({"n90": [20, 20, 5, None], "days": [3, 200, None, 10]})
    out = segql.compile(
        """
        feature tier = ecommerce.purchase_frequency_tier(orders_90d: n90, recency_days: days)
        feature constant = ecommerce.purchase_frequency_tier(2, 100)
        """,
        plugins=host,
    ).evaluate(profile)
    assert out["tier"].to_pylist() == ["high", "lost", None, None]
    assert out["constant"].to_pylist() == ["low"] * 4


def test_unusable_inputs_are_null(host: segql.PluginHost) -> None:
    """segql.pack's rule: a negative, NaN or infinite order count, or an infinite
    recency, is null, and a null input gives null."""
    inf = float("inf")
    profile = pa.table({"n90": [-1.0, inf, float("nan"), 20.0, 20.0], "days": [3.0, 3.0, 3.0, inf, 3.0]})
    out = segql.compile(
        "feature tier = ecommerce.purchase_frequency_tier(orders_90d: n90, recency_days: days)", plugins=host
    ).evaluate(profile)
    assert out["tier"].to_pylist() == [None, None, None, None, "high"]
