"""segql-d2c: the preferred contact channel and the benefit sought, for direct-to-consumer brands.

Functions (README.md states every rule, threshold and source):

* ``d2c.preferred_channel(window, email, sms, push, social, evidence, min_engagements)``
  -> "email" / "sms" / "push" / "social" / "none"
* ``d2c.benefit_sought(window, order_count, price, quality, convenience, sustainability,
  min_orders, <benefit>_threshold …)`` -> "price" / "quality" / "convenience" / "sustainability"

Ready-made features ``d2c.channel`` and ``d2c.benefit``, and segments such as
``d2c.email_first``, ``d2c.unreachable``, ``d2c.deal_seekers`` and ``d2c.eco_conscious``.

The defaults read two related tables, ``messages`` and ``orders`` (see
:data:`CONVENTIONS`); hosts with other names rename them::

    segql.PluginHost(conventions={"d2c": {"messages": "sends", "messages.ts": "sent_at"}})
"""

from __future__ import annotations

import inspect

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_d2c import benefit, channel
from segql_d2c.library import LIBRARY

__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "segql_register_conventions",
    "segql_register_functions",
    "segql_register_library",
]

CONVENTIONS: dict[str, tuple[str, str]] = {
    "messages": ("table", "one row per marketing message sent to a customer, keyed like the profile table"),
    "messages.channel": ("column", 'the channel: "email", "sms", "push" or "social" (string)'),
    "messages.ts": ("column", "when the message was sent (timestamp or date)"),
    "messages.opened": ("column", "the customer opened it (bool; null when the channel cannot tell)"),
    "messages.clicked": ("column", "the customer clicked a link in it (bool; null when not tracked)"),
    "orders": ("table", "one row per order, keyed like the profile table"),
    "orders.ts": ("column", "when the order was placed (timestamp or date)"),
    "orders.discount_code": ("column", "the discount code used (string; null or empty when none)"),
    "orders.tier": ("column", 'the product tier: "premium" marks the premium line (string)'),
    "orders.shipping": ("column", 'shipping speed: "express", "next_day" and "same_day" count as fast (string)'),
    "orders.is_subscription": ("column", "the order is a subscription delivery (bool)"),
    "orders.eco_label": ("column", "the product carries an eco label (bool)"),
}


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    for name, (kind, doc) in CONVENTIONS.items():
        conventions.add(name, kind=kind, doc=doc)


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "d2c.preferred_channel",
        channel.preferred_channel,
        params=channel.PARAMS,
        returns="string",
        constant_args=channel.CONSTANT_ARGS,
        doc=inspect.getdoc(channel.preferred_channel) or "",
    )
    registry.add(
        "d2c.benefit_sought",
        benefit.benefit_sought,
        params=benefit.PARAMS,
        returns="string",
        constant_args=benefit.CONSTANT_ARGS,
        doc=inspect.getdoc(benefit.benefit_sought) or "",
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(LIBRARY)
