"""segql.pack, the pack SDK: the rule for unusable values on the Arrow engine
and in SQL (hand-computed expectations), constant checks, the testing helpers,
and that the packs use it (no private helper modules, no engine internals)."""

from __future__ import annotations

import decimal
import math
import re
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql
from segql import pack
from segql.engines.sql import hooks, literals
from segql.pack import testing

ROOT = Path(__file__).resolve().parents[1]
PACKS = ("bfsi", "d2c", "ecommerce", "edtech", "media", "travel")
INF, NAN = math.inf, math.nan


def _count(ctx: pack.CallContext, x: pack.Value) -> pa.Array:
    return pack.numbers(ctx, x, minimum=0)


def _share(ctx: pack.CallContext, x: pack.Value) -> pa.Array:
    values, valid = pack.floats(ctx, x, minimum=0, maximum=1)
    return pa.array(values, mask=~valid)


def _threshold(ctx: pack.CallContext, x: pack.Value, limit: pack.Value) -> pa.Array:
    cut = pack.constant_number(limit, "limit", minimum=0, maximum=1)
    return pc.greater_equal(pack.numbers(ctx, x), cut)


def _threshold_sql(x: str, limit: str, *, constants: tuple[object, ...]) -> str:
    cut = pack.check_number(constants[1], "limit", minimum=0, maximum=1)
    return f"({pack.number_sql(x)} >= {pack.python_literal(cut)})"


@pytest.fixture(scope="module")
def host() -> segql.PluginHost:
    def segql_register_functions(registry: pack.FunctionRegistry) -> None:
        registry.add(
            "sdk.count",
            _count,
            params=[("x", "number")],
            returns="float",
            sql=lambda x, *, kinds: pack.number_sql(x, kind=kinds[0], minimum=0),
        )
        registry.add(
            "sdk.share",
            _share,
            params=[("x", "number")],
            returns="float",
            sql=lambda x: pack.number_sql(x, minimum=0, maximum=1),
        )
        registry.add(
            "sdk.over",
            _threshold,
            params=[("x", "float"), ("limit", "float", "0.5")],
            returns="bool",
            constant_args=("limit",),
            sql=_threshold_sql,
        )

    sdk = types.SimpleNamespace(segql_register_functions=segql.hookimpl(segql_register_functions))
    h = segql.PluginHost(discover=False, packs={"sdk": sdk})
    assert h.packs["sdk"].ok, h.failures
    return h


SOURCE = """
feature c = sdk.count(x)
feature s = sdk.share(x)
feature o = sdk.over(x)
"""


def test_unusable_floats_are_null_on_every_engine(host: segql.PluginHost) -> None:
    table = pa.table({"x": [0.5, NAN, INF, -INF, -0.5, 2.0, None, 0.0, 1.0, 1e308]})
    testing.expect_everywhere(
        SOURCE,
        table,
        {
            # count: >= 0 and finite; share: 0..1; over: finite x >= 0.5
            "c": [0.5, None, None, None, None, 2.0, None, 0.0, 1.0, 1e308],
            "s": [0.5, None, None, None, None, None, None, 0.0, 1.0, None],
            "o": [True, None, None, None, False, True, None, False, True, True],
        },
        plugins=host,
    )


def test_integers_decimals_and_dictionaries(host: segql.PluginHost) -> None:
    ints = pa.table({"x": pa.array([3, -1, None, 0], pa.int64())})
    testing.expect_everywhere("feature c = sdk.count(x)", ints, {"c": [3.0, None, None, 0.0]}, plugins=host)
    decimals = pa.table({"x": pa.array([decimal.Decimal("0.25"), decimal.Decimal("-0.01")], pa.decimal128(5, 2))})
    testing.expect_everywhere("feature s = sdk.share(x)", decimals, {"s": [0.25, None]}, plugins=host)
    encoded = pa.table({"x": pa.array([0.2, NAN, 0.2]).dictionary_encode()})
    out = segql.compile("feature s = sdk.share(x)", plugins=host).evaluate(encoded)
    assert out["s"].to_pylist() == [0.2, None, 0.2]


def test_a_constant_row_argument_is_repeated(host: segql.PluginHost) -> None:
    table = pa.table({"y": [1, 2]})
    out = segql.compile("feature c = sdk.count(-3)\nfeature d = sdk.count(3)", plugins=host).evaluate(table)
    assert out["c"].to_pylist() == [None, None]
    assert out["d"].to_pylist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("null", "limit must not be null"),
        ("1.5", "limit must be between 0 and 1, got 1.5"),
        ("-0.5", "limit must be between 0 and 1, got -0.5"),
        ("$p", "limit must be a finite number, got inf"),
    ],
)
def test_invalid_constants_are_plugin_errors_at_the_call(host: segql.PluginHost, limit: str, message: str) -> None:
    source = f"param p: float = 0.5\nfeature o = sdk.over(x, {limit})"
    program = segql.compile(source, plugins=host)
    table = pa.table({"x": [1.0]})
    for run in (
        lambda: program.evaluate(table, params={"p": INF}),
        lambda: program.to_sql(schema=table.schema, params={"p": INF}),
    ):
        with pytest.raises(segql.PluginError, match=re.escape(message)) as info:
            run()
        assert (info.value.line, info.value.column, info.value.pack) == (2, 13, "sdk")


def test_constant_helpers() -> None:
    assert pack.constant(pa.scalar(3), "n") == 3
    assert pack.constant(pa.scalar(None, pa.int64()), "n", allow_null=True) is None
    with pytest.raises(pack.PluginError, match="n must be a constant"):
        pack.constant(pa.chunked_array([[1]]), "n")
    assert pack.check_number(decimal.Decimal("2.5"), "n", minimum=0) == 2.5
    with pytest.raises(pack.PluginError, match="n must be >= 0, got -1"):
        pack.check_number(-1, "n", minimum=0)
    with pytest.raises(pack.PluginError, match="n must be <= 1, got 2"):
        pack.check_number(2, "n", maximum=1)
    with pytest.raises(pack.PluginError, match="n must be a number"):
        pack.check_number(True, "n")
    with pytest.raises(pack.PluginError, match="n must be a finite number"):
        pack.check_number(NAN, "n")
    with pytest.raises(pack.PluginError, match="n must be a constant"):
        pack.check_number(pack.NOT_CONSTANT, "n")


def test_labels_and_three_valued_rules() -> None:
    valid = np.array([True, False, True])
    assert pack.labels(["a", "b"], np.array([1, 0, 0]), valid).to_pylist() == ["b", None, "a"]
    assert pack.labels([], np.array([0, 0]), np.array([True, True])).to_pylist() == [None, None]
    t, f, n = pa.array([True, True, None]), pa.array([False, None, False]), pa.array([None, False, True])
    assert pack.all_of(t, n).to_pylist() == [None, False, None]
    assert pack.any_of(f, n).to_pylist() == [None, None, True]
    # rule 1 = f, rule 2 = t: row 0 -> "two"; row 1: rule 1 unknown -> null; row 2: rule 1 false, rule 2 null -> null
    assert pack.first_true([(f, "one"), (t, "two")], "else", 3).to_pylist() == ["two", None, None]


def test_assertion_helpers_name_the_engine_column_and_row() -> None:
    a = pa.table({"k": [1, 2], "v": [1.0, NAN]})
    testing.assert_agree({"arrow": a, "duckdb": a})
    with pytest.raises(AssertionError, match=r"duckdb vs arrow: v\[0\] is 1.5, expected 1.0"):
        testing.assert_agree({"arrow": a, "duckdb": pa.table({"k": [1, 2], "v": [1.5, NAN]})})
    testing.assert_agree({"arrow": a, "duckdb": pa.table({"k": [1, 2], "v": [1.0 + 1e-15, NAN]})}, rel_tol=1e-12)
    with pytest.raises(AssertionError, match="columns"):
        testing.assert_agree({"arrow": a, "duckdb": pa.table({"k": [1, 2]})})
    with pytest.raises(AssertionError, match=r"arrow: y\[1\] is 4.0, expected 5"):
        testing.expect_everywhere("feature y = x * 2", pa.table({"x": [1.0, 2.0]}), {"y": [2.0, 5]}, engines=["arrow"])
    with pytest.raises(segql.SegqlError, match="unknown engine 'polars'"):
        testing.run_everywhere("feature y = x", pa.table({"x": [1]}), engines=["polars"])


def test_related_tables_keys_and_row_order_on_duckdb() -> None:
    customers = pa.table({"id": [3, 1, 2]})
    orders = pa.table({"id": [1, 1, 3], "amount": [2.0, 3.0, 7.0]})
    results = testing.run_everywhere(
        "feature total = sum(orders.amount)", customers, key="id", related={"orders": orders}
    )
    testing.assert_agree(results)
    assert results["duckdb"].to_pydict() == {"id": [3, 1, 2], "total": [7.0, 5.0, 0.0]}


def test_the_sdk_re_exports_the_engines_interfaces() -> None:
    assert pack.SqlContext is hooks.SqlContext and pack.NOT_CONSTANT is hooks.NOT_CONSTANT
    assert pack.python_literal is literals.python_literal and pack.string_literal is literals.string_literal
    assert pack.PluginError is segql.PluginError and issubclass(pack.SqlError, segql.SegqlError)
    assert set(pack.__all__) <= set(dir(pack))


@pytest.mark.parametrize("name", PACKS)
def test_packs_use_the_sdk_not_private_helpers_or_engine_internals(name: str) -> None:
    source = ROOT / "plugins" / name / "src"
    files = sorted(source.rglob("*.py"))
    assert files
    assert not [f.name for f in files if f.name in ("_arrow.py", "arrays.py")]
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert "segql.engines" not in text and "segql.sql" not in text, file
        assert not re.search(r"writer: Any", text), file
        assert "raise ValueError" not in text, file
    assert any("from segql.pack import" in f.read_text(encoding="utf-8") for f in files)
