"""Party composition and the business-booking test, shared by both functions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import all_of, any_of


def no_guests(adults: pa.ChunkedArray, children: pa.ChunkedArray, babies: pa.ChunkedArray) -> pa.ChunkedArray:
    """adults = 0 and children = 0 and babies = 0 (Kleene)."""
    return all_of(pc.equal(adults, 0.0), pc.equal(children, 0.0), pc.equal(babies, 0.0))


def with_children(children: pa.ChunkedArray, babies: pa.ChunkedArray) -> pa.ChunkedArray:
    """children > 0 or babies > 0 (Kleene)."""
    return any_of(pc.greater(children, 0.0), pc.greater(babies, 0.0))


def business_booking(
    *,
    adults: pa.ChunkedArray,
    weekday_nights: pa.ChunkedArray,
    weekend_nights: pa.ChunkedArray,
    lead_time_days: pa.ChunkedArray,
    corporate: pa.ChunkedArray,
    max_nights: float,
    max_lead_days: float,
) -> pa.ChunkedArray:
    """A corporate booking with at least one adult, or a solo adult on a short,
    weekday-only stay booked at short notice (children are ruled out by the caller)."""
    on_company_rate = all_of(corporate, pc.greater_equal(adults, 1.0))
    short_solo_weekday = all_of(
        pc.equal(adults, 1.0),
        pc.equal(weekend_nights, 0.0),
        pc.greater_equal(weekday_nights, 1.0),
        pc.less_equal(weekday_nights, max_nights),
        pc.less_equal(lead_time_days, max_lead_days),
    )
    return any_of(on_company_rate, short_solo_weekday)


def in_channels(channel: pa.ChunkedArray, channels: list[str | None]) -> pa.ChunkedArray:
    """Whether the (lower-cased) channel is one of ``channels`` (compared lower-cased);
    a null channel gives null."""
    wanted = pa.array(channel_names(channels), pa.string())
    hit = pc.is_in(channel, value_set=wanted)
    return pc.if_else(pc.is_null(channel), pa.scalar(None, pa.bool_()), hit)


def channel_names(channels: list[str | None]) -> list[str]:
    """The channels to match, lower-cased, without nulls (in_channels, and the SQL)."""
    return sorted({c.lower() for c in channels if c is not None})
