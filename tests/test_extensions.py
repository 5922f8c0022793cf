"""Behaviour added beyond LANGUAGE.md, as documented in docs/decisions.md:
duration arithmetic, duration parameters as relative times, list rules, and the
messages for a few mistakes."""

from __future__ import annotations

import datetime as dt
import re
import types

import pyarrow as pa
import pytest

import segql

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DURATIONS = pa.table({"d": pa.array([dt.timedelta(days=14), None, dt.timedelta(hours=36)]), "n": [2, 3, 0]})


def values(source: str, table: pa.Table = DURATIONS, **kw: object) -> dict[str, list[object]]:
    out = segql.compile(source).evaluate(table, as_of=AS_OF, **kw)
    return {name: out.column(name).to_pylist() for name in out.column_names}


def test_durations_scale_and_divide() -> None:
    got = values("feature a = 14d / 7d\nfeature b = d / 7d\nfeature c = 2 * 7d\nfeature e = d * n\nfeature f = d / n")
    day = dt.timedelta(days=1)
    assert got["a"] == [2.0, 2.0, 2.0]
    assert got["b"] == [2.0, None, 36 / 168]
    assert got["c"] == [14 * day] * 3
    assert got["e"] == [28 * day, None, dt.timedelta(0)]
    assert got["f"] == [7 * day, None, None]  # by zero: null


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("feature x = 1m * 2", "months and years have no fixed length"),
        ("feature x = 7d * 7d", "cannot apply * to 7d (duration) and 7d (duration)"),
    ],
)
def test_duration_arithmetic_errors(source: str, message: str) -> None:
    with pytest.raises(segql.SegqlTypeError, match=re.escape(message)):
        segql.compile(source)


def test_a_duration_parameter_is_a_relative_time_where_an_instant_is_expected() -> None:
    table = pa.table({"ts": pa.array([dt.datetime(2026, 10, 20), dt.datetime(2026, 1, 1)], pa.timestamp("us"))})
    program = segql.compile("param window: duration = -30d\nsegment recent = ts >= $window")
    assert program.evaluate(table, as_of=AS_OF).column("recent").to_pylist() == [True, False]
    wide = program.evaluate(table, as_of=AS_OF, params={"window": segql.Duration(months=-12)})
    assert wide.column("recent").to_pylist() == [True, True]


def test_list_items_must_be_constants() -> None:
    with pytest.raises(segql.SegqlTypeError, match="list items must be constants") as err:
        segql.compile("feature f = [x, 1]")
    assert err.value.column == 14
    # In `in`, items that depend on rows are fine: x = a or x = b.
    table = pa.table({"x": [1, 2, 3], "a": [1, 0, 3]})
    assert segql.evaluate("x in (a, 2)", table).to_pylist() == [True, True, True]


def test_a_list_literal_error_points_at_its_bracket() -> None:
    with pytest.raises(segql.SegqlTypeError) as err:
        segql.compile("segment s = 3 = [1, 2]")
    assert err.value.column == 17
    assert "[1, 2] (list<int>)" in err.value.message


def test_an_empty_list_fits_a_list_parameter_of_a_pack_function() -> None:
    def register(registry):
        registry.add(
            "shop.n", lambda ctx, xs: pa.scalar(len(xs.as_py())), params=[("xs", "list<string>")], returns="int"
        )

    host = segql.PluginHost(
        discover=False, packs={"shop": types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))}
    )
    out = segql.compile("feature a = shop.n([])\nfeature b = shop.n(['x'])", plugins=host).evaluate(
        pa.table({"x": [1]})
    )
    assert out.to_pylist() == [{"a": 0, "b": 1}]


def test_a_timestamp_parameter_accepts_a_relative_time() -> None:
    def register(registry):
        registry.add("shop.when", lambda ctx, t: t, params=[("t", "timestamp")], returns="timestamp")

    host = segql.PluginHost(
        discover=False, packs={"shop": types.SimpleNamespace(segql_register_functions=segql.hookimpl(register))}
    )
    out = segql.compile("feature w = shop.when(-30d)", plugins=host).evaluate(pa.table({"x": [1]}), as_of=AS_OF)
    assert out.column("w").to_pylist() == [AS_OF - dt.timedelta(days=30)]


def test_a_default_reading_a_missing_renamed_table_names_it() -> None:
    def register(registry):
        registry.add("shop.total", lambda ctx, s: s, params=[("s", "float", "sum(orders.amount)")], returns="float")

    def conventions(conventions):
        conventions.add("orders", kind="table")
        conventions.add("orders.amount", kind="column")

    pack = types.SimpleNamespace(
        segql_register_functions=segql.hookimpl(register), segql_register_conventions=segql.hookimpl(conventions)
    )
    host = segql.PluginHost(
        discover=False, packs={"shop": pack}, conventions={"shop": {"orders": "purchases", "orders.amount": "total"}}
    )
    program = segql.compile("feature t = shop.total()", plugins=host)
    with pytest.raises(segql.SegqlNameError) as err:
        program.evaluate(pa.table({"id": [1]}), key="id", related={"buys": pa.table({"id": [1], "total": [1.0]})})
    message = err.value.message
    assert "sum(purchases.total)" in message  # the default as renamed for this host
    assert "unknown related table 'purchases'" in message
