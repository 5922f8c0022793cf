"""segql-ecommerce: RFM, purchase-frequency tiers, seasonal timing and historic CLV.

The pack reads one related table, ``orders`` (one row per order, keyed like the
profile table) with ``ts`` (when the order was placed) and ``amount`` (its
value).  Hosts with other names rename them::

    segql.PluginHost(conventions={"ecommerce": {"orders": "purchases", "orders.ts": "placed_at"}})

Every function, its rule, thresholds and sources are in the pack's README.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_ecommerce import rfm_sql
from segql_ecommerce.clv import historic_clv, historic_clv_sql
from segql_ecommerce.frequency import purchase_frequency_tier
from segql_ecommerce.library import LIBRARY
from segql_ecommerce.rfm import rfm_scores, rfm_segment
from segql_ecommerce.seasonal import (
    EARLY_DAYS,
    LAST_MINUTE_DAYS,
    SEASON_MONTHS,
    favorite_season,
    holiday_timing,
    last_holiday,
)

__version__ = "0.1.0"


def _doc(function: Callable[..., object]) -> str:
    return inspect.getdoc(function) or ""


RFM_PARAMS = [
    ("recency", "float", "days_since(max(orders.ts))"),
    ("frequency", "float", "count(orders)"),
    ("monetary", "float", "sum(orders.amount)"),
]


def _window(days: tuple[int, int]) -> str:
    """Orders placed ``days[1]`` to ``days[0]`` whole days before ``$holiday`` (inclusive)."""
    latest = "$holiday" if days[0] == 0 else f"$holiday - {days[0]}d"
    return f"count(orders where ts >= $holiday - {days[1]}d and ts <= {latest})"


def _season(name: str) -> str:
    return f"count(orders where month(ts) in [{', '.join(str(m) for m in SEASON_MONTHS[name])}])"


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    conventions.add("orders", kind="table", doc="one row per order, keyed like the profile table")
    conventions.add("orders.ts", kind="column", doc="when the order was placed (timestamp)")
    conventions.add("orders.amount", kind="column", doc="the order's value (float)")


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "ecommerce.rfm_scores",
        rfm_scores,
        params=RFM_PARAMS,
        returns="string",
        population=True,
        doc=_doc(rfm_scores),
        sql=rfm_sql.rfm_scores_sql,
    )
    registry.add(
        "ecommerce.rfm_segment",
        rfm_segment,
        params=RFM_PARAMS,
        returns="string",
        population=True,
        doc=_doc(rfm_segment),
        sql=rfm_sql.rfm_segment_sql,
    )
    registry.add(
        "ecommerce.purchase_frequency_tier",
        purchase_frequency_tier,
        params=[
            ("orders_90d", "float", "count(orders where ts >= -90d)"),
            ("recency_days", "float", "days_since(max(orders.ts))"),
        ],
        returns="string",
        doc=_doc(purchase_frequency_tier),
    )
    registry.add(
        "ecommerce.holiday_timing",
        holiday_timing,
        params=[
            ("holiday", "date"),
            ("early_orders", "float", _window(EARLY_DAYS)),
            ("last_minute_orders", "float", _window(LAST_MINUTE_DAYS)),
        ],
        returns="string",
        doc=_doc(holiday_timing),
    )
    registry.add(
        "ecommerce.last_holiday",
        last_holiday,
        params=[("month", "int"), ("day", "int")],
        returns="date",
        constant_args=("month", "day"),
        pure=False,
        doc=_doc(last_holiday),
    )
    registry.add(
        "ecommerce.favorite_season",
        favorite_season,
        params=[(name, "float", _season(name)) for name in SEASON_MONTHS],
        returns="string",
        doc=_doc(favorite_season),
    )
    registry.add(
        "ecommerce.historic_clv",
        historic_clv,
        params=[
            ("monetary", "float", "sum(orders.amount)"),
            ("tenure_days", "float", "days_since(min(orders.ts))"),
            ("margin", "float", "1.0"),
            ("horizon_days", "float", "365"),
        ],
        returns="float",
        doc=_doc(historic_clv),
        sql=historic_clv_sql,
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(LIBRARY)
