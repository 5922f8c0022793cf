"""d2c.benefit_sought and the benefit ready-mades, on tables built by hand.

as_of is 2026-06-01 12:00 UTC, so the default one-year window runs from
2025-06-01 12:00 to 2026-06-01 12:00, both ends included. An order is
(customer, ts, discount_code, tier, shipping, is_subscription, eco_label)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

import segql


def plain(kit: Any, customer: int, days: float = 10, microseconds: float = 0, **change: Any) -> tuple[Any, ...]:
    """An order placed ``days`` (and ``microseconds``) before as_of that shows no
    benefit, with some fields changed."""
    row = {
        "ts": kit.ago(days, microseconds=microseconds),
        "discount_code": None,
        "tier": "standard",
        "shipping": "standard",
        "is_subscription": False,
        "eco_label": False,
    }
    assert set(change) <= set(row), change
    row.update(change)
    return (customer, *row.values())


def test_signals_shares_and_boundaries(kit: Any) -> None:
    """Default thresholds 0.5 and minimum 3 orders.

    1  2 of 3 orders with a code                              -> price (2/3)
    2  codes "", "", null                                     -> null  (empty is no code)
    3  2 of 4 premium                                         -> quality (1/2: at the threshold)
    4  1 of 3 premium                                         -> null  (1/3)
    5  subscription, express, standard                        -> convenience (2/3)
    6  next_day, same_day, "Express"                          -> convenience (2/3; values are case-sensitive)
    7  (sub null, express), (sub true, shipping null), (null, null) -> convenience (2/3)
    8  eco true, true, null                                   -> sustainability (2/3)
    9  2 orders, both with a code                             -> null  (below 3 orders)
    10 no orders                                              -> null
    11 3 coded orders, one 1 year + 1 us ago                  -> null  (2 in the window)
    12 3 coded orders, one exactly 1 year ago                 -> price
    13 2 premium in the window, 1 premium 1 us after as_of    -> null  (2 in the window)
    14 3 orders of tier "Premium"                             -> null  (case-sensitive)
    """
    code: dict[str, Any] = {"discount_code": "WELCOME10"}
    orders = [
        plain(kit, 1, **code),
        plain(kit, 1, **code),
        plain(kit, 1),
        plain(kit, 2, discount_code=""),
        plain(kit, 2, discount_code=""),
        plain(kit, 2),
        *[plain(kit, 3, tier="premium")] * 2,
        *[plain(kit, 3)] * 2,
        plain(kit, 4, tier="premium"),
        *[plain(kit, 4, tier=None)] * 2,
        plain(kit, 5, is_subscription=True),
        plain(kit, 5, shipping="express"),
        plain(kit, 5),
        plain(kit, 6, shipping="next_day"),
        plain(kit, 6, shipping="same_day"),
        plain(kit, 6, shipping="Express"),
        plain(kit, 7, is_subscription=None, shipping="express"),
        plain(kit, 7, is_subscription=True, shipping=None),
        plain(kit, 7, is_subscription=None, shipping=None),
        *[plain(kit, 8, eco_label=True)] * 2,
        plain(kit, 8, eco_label=None),
        *[plain(kit, 9, **code)] * 2,
        *[plain(kit, 11, **code)] * 2,
        plain(kit, 11, days=365, microseconds=1, **code),
        *[plain(kit, 12, **code)] * 2,
        plain(kit, 12, days=365, **code),  # 2025-06-01 12:00: 2026 is no leap year, so 1y = 365 days here
        *[plain(kit, 13, tier="premium")] * 2,
        plain(kit, 13, days=0, microseconds=-1, tier="premium"),
        *[plain(kit, 14, tier="Premium")] * 3,
    ]
    out = kit.run(
        """
        feature benefit = d2c.benefit_sought()
        feature ready = d2c.benefit
        feature two = d2c.benefit_sought(min_orders: 2)
        """,
        14,
        orders=orders,
    )
    expected = ["price", None, "quality", None, "convenience", "convenience", "convenience", "sustainability"]
    expected += [None, None, None, "price", None, None]
    assert out["benefit"] == expected
    assert out["ready"] == expected
    # With a minimum of 2 orders, customers 9, 11 and 13 qualify on their 2 orders in the window.
    assert [out["two"][i] for i in (8, 10, 12)] == ["price", "price", "quality"]


def test_normalised_scores_and_tie_order(kit: Any) -> None:
    """Four orders each. Ties go to sustainability, quality, convenience, price.

    1 every order coded, premium, subscription and eco  -> sustainability (all 1.0)
    2 coded + premium on all 4                          -> quality (tie with price)
    3 coded + subscription on all 4                     -> convenience (tie with price)
    4 premium on 3, subscription on 4                   -> convenience (1.0 / 0.5 beats 0.75 / 0.5)
    5 coded on 4, eco on 3                              -> price
    6 coded on 1, eco on 1                              -> null (1/4 < 0.5)

    With sustainability_threshold 0.25: customer 5's eco score is 0.75 / 0.25 = 3 > price
    1.0 / 0.5 = 2 -> sustainability; customer 6's eco share 1/4 reaches 0.25 -> sustainability.
    With price_threshold 1.0 and quality_threshold 0.8: customer 2 scores price 1.0, quality
    1.25 -> quality; customer 4 premium 0.75 < 0.8, so convenience; customer 5 price 1.0 / 1.0 = 1
    < eco 0.75 / 0.5 = 1.5 -> sustainability.
    """
    everything: dict[str, Any] = {"discount_code": "X", "tier": "premium", "is_subscription": True, "eco_label": True}
    orders = [
        *[plain(kit, 1, **everything)] * 4,
        *[plain(kit, 2, discount_code="X", tier="premium")] * 4,
        *[plain(kit, 3, discount_code="X", is_subscription=True)] * 4,
        *[plain(kit, 4, tier="premium", is_subscription=True)] * 3,
        plain(kit, 4, is_subscription=True),
        *[plain(kit, 5, discount_code="X", eco_label=True)] * 3,
        plain(kit, 5, discount_code="X"),
        plain(kit, 6, discount_code="X"),
        plain(kit, 6, eco_label=True),
        *[plain(kit, 6)] * 2,
    ]
    out = kit.run(
        """
        feature b = d2c.benefit_sought()
        feature green = d2c.benefit_sought(sustainability_threshold: 0.25)
        feature strict = d2c.benefit_sought(price_threshold: 1.0, quality_threshold: 0.8)
        """,
        6,
        orders=orders,
    )
    assert out["b"] == ["sustainability", "quality", "convenience", "convenience", "price", None]
    assert out["green"] == ["sustainability", "quality", "convenience", "convenience", *["sustainability"] * 2]
    assert out["strict"] == ["sustainability", "quality", "convenience", "convenience", "sustainability", None]


def test_window_argument(kit: Any) -> None:
    """Customer 1: 3 coded orders 20 days ago, 4 premium orders 200 days ago.
    1y -> quality (4/7 vs 3/7); 90d -> price; 6m (from 2025-12-01 12:00, 182 days) -> price;
    a $parameter of 2y -> quality."""
    orders = [*[plain(kit, 1, 20, discount_code="C")] * 3, *[plain(kit, 1, 200, tier="premium")] * 4]
    out = kit.run(
        """
        param w: duration
        feature y = d2c.benefit_sought()
        feature q = d2c.benefit_sought(90d)
        feature half = d2c.benefit_sought(window: 6m)
        feature by_param = d2c.benefit_sought(window: $w)
        """,
        1,
        orders=orders,
        params={"w": segql.Duration(months=24)},
    )
    assert (out["y"], out["q"], out["half"], out["by_param"]) == (["quality"], ["price"], ["price"], ["quality"])


def test_explicit_shares_and_nulls(host: segql.PluginHost) -> None:
    """Shares and order counts passed as profile columns.

    1 n 5, .6 .7 null null   -> quality
    2 n 5, all null          -> null (no benefit competes)
    3 n null, all 1          -> null (unknown evidence)
    4 n 3, NaN .5 0 0        -> quality (NaN is no evidence, like null)
    5 n 2, 1 0 0 0           -> null; with min_orders 2 -> price
    6 n 10, .5 each          -> sustainability
    """
    nan = float("nan")
    profile = pa.table(
        {
            "n": [5, 5, None, 3, 2, 10],
            "p": [0.6, None, 1.0, nan, 1.0, 0.5],
            "q": [0.7, None, 1.0, 0.5, 0.0, 0.5],
            "c": [None, None, 1.0, 0.0, 0.0, 0.5],
            "s": [None, None, 1.0, 0.0, 0.0, 0.5],
        }
    )
    out = segql.compile(
        """
        feature b = d2c.benefit_sought(order_count: n, price: p, quality: q, convenience: c, sustainability: s)
        feature two = d2c.benefit_sought(1y, n, p, q, c, s, 2)
        """,
        plugins=host,
    ).evaluate(profile)
    assert out["b"].to_pylist() == ["quality", None, None, "quality", None, "sustainability"]
    assert out["two"].to_pylist() == ["quality", None, None, "quality", "price", "sustainability"]


def test_unusable_shares_and_counts_are_null(host: segql.PluginHost) -> None:
    """segql.pack's rule (a share outside 0..1 or infinite, a negative or infinite
    order count, is unusable: null), on paper:

    1 n 5, p 1.5 q .7          -> quality (the price share is unknown, it does not compete)
    2 n 5, p .9 q -0.1         -> price
    3 n 5, p inf q .6          -> quality
    4 n -1, p 1 q 1            -> null (unknown order count)
    5 n inf, p 1 q 1           -> null
    """
    inf = float("inf")
    profile = pa.table(
        {
            "n": [5.0, 5.0, 5.0, -1.0, inf],
            "p": [1.5, 0.9, inf, 1.0, 1.0],
            "q": [0.7, -0.1, 0.6, 1.0, 1.0],
        }
    )
    out = segql.compile(
        "feature b = d2c.benefit_sought(order_count: n, price: p, quality: q, convenience: null, sustainability: null)",
        plugins=host,
    ).evaluate(profile)
    assert out["b"].to_pylist() == ["quality", "price", "quality", None, None]


def test_ready_made_segments(kit: Any) -> None:
    """Customers 1-4 seek price, quality, convenience, sustainability; 5 has 3 plain
    orders (no benefit); 6 has none. Segments are plain booleans."""
    orders = [
        *[plain(kit, 1, discount_code="SAVE")] * 3,
        *[plain(kit, 2, tier="premium")] * 3,
        *[plain(kit, 3, shipping="same_day")] * 3,
        *[plain(kit, 4, eco_label=True)] * 3,
        *[plain(kit, 5)] * 3,
    ]
    out = kit.run(
        """
        feature benefit = d2c.benefit
        segment deal_seekers = d2c.deal_seekers
        segment quality_seekers = d2c.quality_seekers
        segment convenience_seekers = d2c.convenience_seekers
        segment eco_conscious = d2c.eco_conscious
        segment no_clear_benefit = d2c.benefit is null
        """,
        6,
        orders=orders,
    )
    assert out["benefit"] == ["price", "quality", "convenience", "sustainability", None, None]
    for index, name in enumerate(("deal_seekers", "quality_seekers", "convenience_seekers", "eco_conscious")):
        assert out[name] == [i == index for i in range(6)], name
    assert out["no_clear_benefit"] == [False] * 4 + [True, True]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("d2c.benefit_sought(eco_threshold: 0)", None),
        ("d2c.benefit_sought(sustainability_threshold: 0)", r"sustainability_threshold must be in \(0, 1\]"),
        ("d2c.benefit_sought(convenience_threshold: 1.01)", r"convenience_threshold must be in \(0, 1\]"),
        ("d2c.benefit_sought(min_orders: -1)", "min_orders must be >= 0"),
        ("d2c.benefit_sought(window: -1y)", "window must be a positive duration"),
    ],
)
def test_bad_values_are_errors_at_the_call(kit: Any, call: str, message: str | None) -> None:
    if message is None:  # an unknown argument name is a name error at the argument
        with pytest.raises(segql.SegqlNameError, match="has no argument 'eco_threshold'") as named:
            kit.run(f"feature b = {call}", 1)
        assert (named.value.line, named.value.column) == (1, 32)
        return
    with pytest.raises(segql.PluginError, match=message) as caught:
        kit.run(f"feature b = {call}", 1, orders=[plain(kit, 1)] * 3)
    assert (caught.value.line, caught.value.column) == (1, 13)
