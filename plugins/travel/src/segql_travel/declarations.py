"""The pack's conventions (the booking columns it reads) and ready-made segments."""

from __future__ import annotations

CONVENTIONS: dict[str, str] = {
    "adults": "number of adults in the booking",
    "children": "number of children in the booking",
    "babies": "number of babies (infants) in the booking",
    "weekday_nights": "nights of the stay that are not weekend nights",
    "weekend_nights": "nights of the stay counted as weekend nights by the property system "
    "(in the hotel booking demand data: Saturday and Sunday nights)",
    "lead_time_days": "days between the booking being made and the arrival",
    "channel": "market segment or channel of the booking; 'corporate' means a company's negotiated rate",
    "price_per_night": "room price per night of the booking (average daily rate), in one currency for all rows",
}

SOURCE = """
feature purpose "Trip purpose: family, business, couple or leisure" = travel.trip_purpose()
feature type "Traveler type: business, luxury, budget, family or solo (null when none applies)" =
    travel.traveler_type(purpose: purpose)

segment business_trips
    "Business trips: a corporate booking, or a solo adult's short weekday-only stay booked within 14 days" =
    purpose = "business"
segment leisure_trips "Leisure trips: no children, not business and not a couple's weekend" =
    purpose = "leisure"
segment family_trips "Family trips: children or babies in the party" =
    purpose = "family"
segment couples_getaways "Couples' getaways: two adults, no children, a stay that includes a weekend night" =
    purpose = "couple"
segment luxury_travelers "Luxury travellers: not on business, price per night in the top quintile of all bookings" =
    type = "luxury"
segment budget_travelers "Budget travellers: not on business, price per night in the bottom quintile of all bookings" =
    type = "budget"
segment solo_travelers "Solo travellers: one adult, not on business, mid-priced" =
    type = "solo"
"""
