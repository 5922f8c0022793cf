"""``d2c.benefit_sought``: the main benefit a customer's purchases show they look for."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Floats, Mask, PluginError, Value, constant_number, floats, labels
from segql_d2c.window import check_window

BENEFITS = ("price", "quality", "convenience", "sustainability")
"""The benefits, in parameter order."""

TIE_PRIORITY = ("sustainability", "quality", "convenience", "price")
"""Tie order: the most deliberate choice first, discount use (often driven by the brand's own promotions) last."""

FAST_SHIPPING = ("express", "next_day", "same_day")
DEFAULT_WINDOW = "1y"
DEFAULT_MIN_ORDERS = "3"
DEFAULT_THRESHOLD = "0.5"

IN_WINDOW = "ts >= now - $window and ts <= now"

SIGNALS = {
    "price": 'discount_code is not null and discount_code != ""',
    "quality": 'tier = "premium"',
    "convenience": "(is_subscription or shipping in [" + ", ".join(f'"{s}"' for s in FAST_SHIPPING) + "])",
    "sustainability": "eco_label",
}
"""Which orders show each benefit (a condition on the columns of ``orders``)."""


def share(benefit: str) -> str:
    """The default of one benefit's argument: the share of the window's orders showing it."""
    return f"count(orders where {SIGNALS[benefit]} and {IN_WINDOW}) / $order_count"


PARAMS: tuple[tuple[str, str, str], ...] = (
    ("window", "duration", DEFAULT_WINDOW),
    ("order_count", "float", f"count(orders where {IN_WINDOW})"),
    *((benefit, "float", share(benefit)) for benefit in BENEFITS),
    ("min_orders", "float", DEFAULT_MIN_ORDERS),
    *((f"{benefit}_threshold", "float", DEFAULT_THRESHOLD) for benefit in BENEFITS),
)
CONSTANT_ARGS = ("window", "min_orders", *(f"{benefit}_threshold" for benefit in BENEFITS))


def benefit_sought(
    ctx: CallContext,
    window: Value,
    order_count: Value,
    price: Value,
    quality: Value,
    convenience: Value,
    sustainability: Value,
    min_orders: Value,
    price_threshold: Value,
    quality_threshold: Value,
    convenience_threshold: Value,
    sustainability_threshold: Value,
) -> pa.Array:
    """The benefit sought: "price", "quality", "convenience" or "sustainability", or null.

    Inputs are shares in 0..1 of the customer's orders placed from ``window``
    before as_of up to as_of (both ends included); ``order_count`` is the number
    of those orders. By default:

    * price: orders with a discount code (``discount_code`` not null and not "");
    * quality: orders of the premium tier (``tier = "premium"``);
    * convenience: subscription orders or orders shipped fast
      (``is_subscription``, or ``shipping`` in "express", "next_day", "same_day");
    * sustainability: orders of eco-labelled products (``eco_label``).

    Rule: each benefit's normalised score is share / threshold (every threshold
    0.5 by default: the behaviour is at least half of the customer's orders).

    1. null when ``order_count`` is null or < ``min_orders`` (default 3);
    2. a benefit competes only when its share is not null (nor NaN) and
       share >= its threshold;
    3. null when no benefit competes;
    4. otherwise the competing benefit with the largest normalised score
       (computed in double precision); ties go to the first tied benefit in the
       order sustainability, quality, convenience, price.

    A customer without orders in the window has null shares (0 / 0) and gets
    null. A share outside 0..1, and an ``order_count`` that is NaN, infinite
    or negative, is unusable and counts as null (segql.pack's rule);
    ``min_orders`` must be a constant >= 0, each threshold a constant in (0, 1], ``window`` a constant
    positive duration (used by the defaults only).

    Source: benefit segmentation (R. I. Haley, "Benefit Segmentation: A
    Decision-oriented Research Tool", Journal of Marketing 32(3), 1968), which
    groups customers by the benefit they seek; here the benefit is inferred from
    purchase behaviour instead of a survey. The signals, thresholds, minimum of
    3 orders and tie order are this pack's choices.
    """
    check_window(window)
    floor = constant_number(min_orders, "min_orders", minimum=0)
    given = dict(zip(BENEFITS, (price, quality, convenience, sustainability)))
    limits = dict(zip(BENEFITS, (price_threshold, quality_threshold, convenience_threshold, sustainability_threshold)))
    scores: list[Floats] = []
    competes: list[Mask] = []
    for name in TIE_PRIORITY:
        threshold = constant_number(limits[name], f"{name}_threshold")
        if not 0 < threshold <= 1:
            raise PluginError(f"{name}_threshold must be in (0, 1], got {threshold:g}")
        # A share outside 0..1 (or NaN) is unusable, i.e. null: it does not compete.
        values, valid = floats(ctx, given[name], minimum=0, maximum=1)
        competes.append(valid & (values >= threshold))
        scores.append(values / threshold)
    count, known = floats(ctx, order_count, minimum=0)
    ranked = np.where(np.stack(competes), np.stack(scores), -1.0)
    best = ranked.argmax(axis=0)  # the first maximum, i.e. the tie priority
    found = known & (count >= floor) & np.stack(competes).any(axis=0)
    return labels(TIE_PRIORITY, best.astype(np.int64), found)
