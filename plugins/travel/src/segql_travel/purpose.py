"""travel.trip_purpose: why a booking was made (business, leisure, family, couple)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, Value, all_of, constant, constant_number, first_true, numbers, texts
from segql_travel.party import business_booking, in_channels, no_guests, with_children

PARAMS: list[tuple[str, str, str]] = [
    ("adults", "number", "adults"),
    ("children", "number", "children"),
    ("babies", "number", "babies"),
    ("weekday_nights", "number", "weekday_nights"),
    ("weekend_nights", "number", "weekend_nights"),
    ("lead_time_days", "number", "lead_time_days"),
    ("channel", "string", "channel"),
    ("corporate_channels", "list<string>", '["corporate"]'),
    ("business_max_nights", "number", "4"),
    ("business_max_lead_days", "number", "14"),
]
CONSTANT_ARGS = ("corporate_channels", "business_max_nights", "business_max_lead_days")
COUNTS = ("adults", "children", "babies", "weekday_nights", "weekend_nights", "lead_time_days")
"""The count arguments (of both functions): NaN, infinite or negative values are unknown (null)."""


def counts(ctx: CallContext, value: Value) -> pa.Array:
    """A count argument as float64; an unusable count (NaN, ±inf, below 0) is null (segql.pack's rule)."""
    return numbers(ctx, value, minimum=0)


def trip_purpose(
    ctx: CallContext,
    adults: Value,
    children: Value,
    babies: Value,
    weekday_nights: Value,
    weekend_nights: Value,
    lead_time_days: Value,
    channel: Value,
    corporate_channels: Value,
    business_max_nights: Value,
    business_max_lead_days: Value,
) -> pa.ChunkedArray:
    """Trip purpose of a booking: "family", "business", "couple" or "leisure".

    Row-wise: one row is one booking, and no other row is looked at.

    Rules, in order; the first that is true gives the label:

    0. no guests (adults = 0, children = 0 and babies = 0): null, not a travel party;
    1. "family": children > 0 or babies > 0;
    2. "business": adults >= 1 and lower(channel) is one of ``corporate_channels``
       (default ["corporate"], compared lower-cased); or a solo adult (adults = 1)
       on a weekday-only stay (weekend_nights = 0) of 1 to ``business_max_nights``
       weekday nights (default 4) booked at most ``business_max_lead_days`` days
       ahead (default 14);
    3. "couple": adults = 2 and weekend_nights >= 1;
    4. "leisure": every other booking.

    Nulls follow SQL's three-valued logic: when a rule cannot be decided because
    an input is null and no earlier rule is true, the label is null (children = 0,
    babies = null gives null; children = 2, babies = null gives "family"). A
    count that is NaN, infinite or negative is unknown: it counts as null.

    Source: hotel and airline revenue management separates business from leisure
    demand with two "rate fences": the weekend stay-over (business guests travel
    on working days and are home for the weekend) and the advance-purchase window
    (business trips are booked at short notice, leisure trips weeks ahead) —
    Kimes (1989), "Yield management: a tool for capacity-constrained service
    firms", Journal of Operations Management 8(4); Talluri and van Ryzin (2004),
    The Theory and Practice of Revenue Management. The 14-day window is the usual
    two-week advance-purchase fence; 4 nights is a Monday-to-Friday trip. The
    corporate market segment (bookings on a company's negotiated rate) is the
    one coded "Corporate" in Antonio, de Almeida and Nunes (2019), "Hotel booking
    demand datasets", Data in Brief 22. Family (any child or baby in the party)
    and couple (two adults whose stay includes a weekend night, the short-break
    pattern) are party-composition segments.
    """
    a, c, b = counts(ctx, adults), counts(ctx, children), counts(ctx, babies)
    weekday, weekend = counts(ctx, weekday_nights), counts(ctx, weekend_nights)
    corporate = in_channels(texts(ctx, channel, lower=True), constant(corporate_channels, "corporate_channels"))
    business = business_booking(
        adults=a,
        weekday_nights=weekday,
        weekend_nights=weekend,
        lead_time_days=counts(ctx, lead_time_days),
        corporate=corporate,
        max_nights=constant_number(business_max_nights, "business_max_nights"),
        max_lead_days=constant_number(business_max_lead_days, "business_max_lead_days"),
    )
    couple = all_of(pc.equal(a, 2.0), pc.greater_equal(weekend, 1.0))
    rules = [
        (no_guests(a, c, b), None),
        (with_children(c, b), "family"),
        (business, "business"),
        (couple, "couple"),
    ]
    return first_true(rules, "leisure", ctx.num_rows)
