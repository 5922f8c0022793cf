"""travel.traveler_type: who is travelling (business, luxury, budget, family, solo)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, PluginError, Value, constant_number, first_true, numbers, texts
from segql_travel.party import no_guests, with_children
from segql_travel.purpose import counts

NULL_FLOAT = pa.scalar(None, pa.float64())

PARAMS: list[tuple[str, str, str]] = [
    ("adults", "number", "adults"),
    ("children", "number", "children"),
    ("babies", "number", "babies"),
    ("price", "float", "price_per_night"),
    ("purpose", "string", "travel.trip_purpose(adults: $adults, children: $children, babies: $babies)"),
    ("luxury_quantile", "float", "0.8"),
    ("budget_quantile", "float", "0.2"),
]
CONSTANT_ARGS = ("luxury_quantile", "budget_quantile")


def price_thresholds(price: pa.ChunkedArray, low: float, high: float) -> tuple[pa.Scalar, pa.Scalar]:
    """The ``low`` and ``high`` quantiles of the non-null prices (linear interpolation);
    null scalars when no price is known."""
    if price.null_count == len(price):
        return NULL_FLOAT, NULL_FLOAT
    quantiles = pc.quantile(price, q=[low, high], interpolation="linear")
    return quantiles[0], quantiles[1]


def check_quantiles(low: float, high: float) -> None:
    """budget_quantile (low) must not exceed luxury_quantile (high)."""
    if low > high:
        raise PluginError(f"budget_quantile ({low}) must not exceed luxury_quantile ({high})")


def traveler_type(
    ctx: CallContext,
    adults: Value,
    children: Value,
    babies: Value,
    price: Value,
    purpose: Value,
    luxury_quantile: Value,
    budget_quantile: Value,
) -> pa.ChunkedArray:
    """Traveler type of a booking: "business", "luxury", "budget", "family", "solo",
    or null when none applies.

    Population function (registered with population=True): one row is one
    booking, and the price tiers are quantiles of ``price`` over all rows being
    evaluated — every row of the table passed to ``evaluate`` (not only the rows
    of some segment), or every row of the related table when used inside an
    aggregate. Rows with a null, NaN or infinite price are left out of the quantiles
    (an unusable price is null); counts as in travel.trip_purpose.

    Thresholds: high = the ``luxury_quantile`` quantile of price (default 0.8),
    low = the ``budget_quantile`` quantile (default 0.2), with linear
    interpolation between the closest ranks (Hyndman and Fan type 7: numpy's
    default, DuckDB's quantile_cont, Excel's PERCENTILE.INC). With the defaults,
    luxury is the top price quintile and budget the bottom one. Prices are only
    compared with each other, so no currency is assumed (all rows must use one
    currency and one basis, e.g. the average daily rate of the room).

    Rules, in order; the first that is true gives the type:

    0. no guests (adults = 0, children = 0 and babies = 0): null;
    1. "business": lower(purpose) = "business" (default purpose:
       travel.trip_purpose of the same booking);
    2. "luxury": price >= high;
    3. "budget": price <= low;
    4. "family": children > 0 or babies > 0;
    5. "solo": adults = 1;
    otherwise null (two or more adults, no children, mid-priced, not on business).

    Luxury is tested before budget, so when high = low (e.g. every price is the
    same) those rows are luxury. Nulls: as in travel.trip_purpose, a rule that
    cannot be decided before a true one gives null (e.g. a null price for a
    non-business booking).

    Source: business comes first because the employer pays and the price is a
    negotiated rate, not a choice (see travel.trip_purpose for how business
    trips are recognised). Luxury and budget rank the average daily rate (ADR,
    room revenue per occupied room night) against the rest of the market, the
    idea behind STR's hotel class scale, which groups hotels by their average
    room rate relative to their market; quintiles are this pack's default
    granularity. Family and solo are party-composition segments.
    """
    n = ctx.num_rows
    a, c, b = counts(ctx, adults), counts(ctx, children), counts(ctx, babies)
    rate = numbers(ctx, price)
    high_q = constant_number(luxury_quantile, "luxury_quantile", minimum=0, maximum=1)
    low_q = constant_number(budget_quantile, "budget_quantile", minimum=0, maximum=1)
    check_quantiles(low_q, high_q)
    low, high = price_thresholds(rate, low_q, high_q)
    rules = [
        (no_guests(a, c, b), None),
        (pc.equal(texts(ctx, purpose, lower=True), "business"), "business"),
        (pc.greater_equal(rate, high), "luxury"),
        (pc.less_equal(rate, low), "budget"),
        (with_children(c, b), "family"),
        (pc.equal(a, 1.0), "solo"),
    ]
    return first_true(rules, None, n)
