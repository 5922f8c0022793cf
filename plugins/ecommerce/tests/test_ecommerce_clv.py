"""ecommerce.historic_clv and the ecommerce.clv feature."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

import segql

CDNOW_CLV_SQL = """
SELECT customer_id,
       sum(amount) / greatest(date_diff('day', min(day), DATE '1998-07-01'), 1) * {horizon} * {margin}
FROM orders GROUP BY customer_id
"""


def test_cdnow_clv_matches_the_formula(cdnow: Any, sql: Any) -> None:
    out = cdnow(
        """
        feature clv = ecommerce.historic_clv()
        feature ready = ecommerce.clv
        feature two_years_at_30pct = ecommerce.historic_clv(margin: 0.3, horizon_days: 730)
        segment valuable = ecommerce.clv >= 1000
        """
    )
    expected = sql(CDNOW_CLV_SQL.format(horizon=365, margin=1.0))
    assert out["clv"] == pytest.approx(expected, rel=1e-12)
    assert out["ready"] == pytest.approx(expected, rel=1e-12)
    assert out["two_years_at_30pct"] == pytest.approx(sql(CDNOW_CLV_SQL.format(horizon=730, margin=0.3)), rel=1e-12)
    assert sum(out["valuable"]) == sum(v >= 1000 for v in expected)
    # Customer 3 (raw file): 156.46 spent over 6 orders, first order 1997-01-02, which is
    # 365 + 180 = 545 days before 1998-07-01.
    assert out["clv"][2] == pytest.approx(156.46 / 545 * 365, rel=1e-12)


AS_OF = dt.datetime(2026, 11, 1, 15, tzinfo=dt.UTC)


def test_clv_on_paper(host: segql.PluginHost) -> None:
    """as_of 2026-11-01 15:00Z.
    1: one order of 50 today at 09:00          -> tenure 0, counted as 1 -> 50 / 1 * 365 = 18250
    2: 30 ten days ago, 20 today               -> 50 / 10 * 365 = 1825
    3: no orders                               -> null tenure -> null
    4: one order tomorrow (after as_of)        -> tenure -1 -> null
    """
    orders = pa.table(
        {
            "customer_id": [1, 2, 2, 4],
            "ts": pa.array(
                [
                    dt.datetime(2026, 11, 1, 9),
                    dt.datetime(2026, 10, 22, 15),
                    dt.datetime(2026, 11, 1, 9),
                    dt.datetime(2026, 11, 2, 15),
                ],
                pa.timestamp("us"),
            ),
            "amount": [50.0, 30.0, 20.0, 99.0],
        }
    )
    program = segql.compile(
        """
        feature clv = ecommerce.clv
        feature half_margin = ecommerce.historic_clv(margin: 0.5)
        feature given = ecommerce.historic_clv(monetary: 100, tenure_days: 50, margin: 0.5, horizon_days: 100)
        segment big = ecommerce.clv > 1000
        """,
        plugins=host,
    )
    out = program.evaluate(
        pa.table({"customer_id": [1, 2, 3, 4]}), key="customer_id", related={"orders": orders}, as_of=AS_OF
    )
    assert out["clv"].to_pylist() == [18250.0, 1825.0, None, None]
    assert out["half_margin"].to_pylist() == [9125.0, 912.5, None, None]
    assert out["given"].to_pylist() == [100.0] * 4  # 100 / 50 * 100 * 0.5
    assert out["big"].to_pylist() == [True, True, False, False]


def test_clv_null_inputs(host: segql.PluginHost) -> None:
    profile = pa.table({"spent": [10.0, None, 10.0, 10.0], "days": [5, 5, None, 5], "m": [1.0, 1.0, 1.0, None]})
    out = segql.compile(
        "feature v = ecommerce.historic_clv(monetary: spent, tenure_days: days, margin: m, horizon_days: 10)",
        plugins=host,
    ).evaluate(profile)
    assert out["v"].to_pylist() == [20.0, None, None, None]
