"""Fixtures of the d2c pack's tests: a host with only this pack, and a kit that
builds the hand-made ``messages`` and ``orders`` tables and evaluates segment
files over them.

No public offline dataset carries per-channel message engagement together with
discount, tier, shipping, subscription and eco-label signals, so every table
here is built by hand (expected labels derived on paper in each test's
docstring) or generated with a fixed seed and checked against independent
plain-Python and DuckDB implementations of the documented rules.

Test modules share one pytest run with the other packs, so nothing is imported
from this file: everything is reached through the fixtures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
import segql_d2c

import segql

Message = tuple[int, str | None, dt.datetime | None, bool | None, bool | None]
"""(customer_id, channel, sent at (naive = UTC), opened, clicked)."""

Order = tuple[int, dt.datetime | None, str | None, str | None, str | None, bool | None, bool | None]
"""(customer_id, ts, discount_code, tier, shipping, is_subscription, eco_label)."""

MESSAGE_COLUMNS = ("customer_id", "channel", "ts", "opened", "clicked")
MESSAGE_TYPES = (pa.int64(), pa.string(), pa.timestamp("us"), pa.bool_(), pa.bool_())
ORDER_COLUMNS = ("customer_id", "ts", "discount_code", "tier", "shipping", "is_subscription", "eco_label")
ORDER_TYPES = (pa.int64(), pa.timestamp("us"), pa.string(), pa.string(), pa.string(), pa.bool_(), pa.bool_())


def _table(rows: Sequence[tuple[Any, ...]], names: Sequence[str], types: Sequence[pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array([r[i] for r in rows], t) for i, (name, t) in enumerate(zip(names, types))})


class Kit:
    """Builders and an evaluator for hand-made tables (see the module docstring)."""

    AS_OF = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    """The evaluation instant of the hand-made tests."""

    def __init__(self, host: segql.PluginHost) -> None:
        self.host = host

    def ago(self, days: float = 0, **delta: float) -> dt.datetime:
        """A naive UTC datetime ``days`` (plus ``delta``, e.g. ``microseconds=1``) before AS_OF."""
        return self.AS_OF.replace(tzinfo=None) - dt.timedelta(days=days, **delta)

    def messages(self, rows: Sequence[Message], names: Sequence[str] = MESSAGE_COLUMNS) -> pa.Table:
        return _table(rows, names, MESSAGE_TYPES)

    def orders(self, rows: Sequence[Order], names: Sequence[str] = ORDER_COLUMNS) -> pa.Table:
        return _table(rows, names, ORDER_TYPES)

    @staticmethod
    def customers(n: int) -> pa.Table:
        return pa.table({"customer_id": pa.array(range(1, n + 1), pa.int64())})

    def run(
        self,
        source: str,
        n: int,
        messages: Sequence[Message] = (),
        orders: Sequence[Order] = (),
        **kwargs: Any,
    ) -> dict[str, list[Any]]:
        """Compile ``source`` with the pack and evaluate it for customers 1..n:
        column name -> values, in customer-id order."""
        kwargs.setdefault("as_of", self.AS_OF)
        program = segql.compile(source, plugins=kwargs.pop("plugins", self.host))
        related = {"messages": self.messages(messages), "orders": self.orders(orders)}
        out = program.evaluate(self.customers(n), key="customer_id", related=related, **kwargs)
        assert out["customer_id"].to_pylist() == list(range(1, n + 1))
        result: dict[str, list[Any]] = out.to_pydict()
        return result


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """segql's built-ins and this pack only (other packs cannot interfere)."""
    host = segql.PluginHost(discover=False, packs={"d2c": segql_d2c})
    assert host.packs["d2c"].ok, host.failures
    return host


@pytest.fixture(scope="session")
def kit(host: segql.PluginHost) -> Kit:
    return Kit(host)
