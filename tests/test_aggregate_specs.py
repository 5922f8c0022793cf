"""Every aggregate has a translation for every engine (ibis-style completeness).

Each registered aggregate (segql's and those of the packs shipped in
plugins/) must have an Arrow reducer, and SQL that writes for every dialect,
unless the pair is in ``UNSUPPORTED`` with the reason.  The test also proves
it catches a missing translation, on a registry copy with one removed.  A tiny
test pack registers an aggregate through ``segql_register_functions`` and runs
on the Arrow engine and in DuckDB.
"""

from __future__ import annotations

import attrs
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segql
from segql.engines.sql.dialects import DIALECTS

UNSUPPORTED: dict[tuple[str, str], str] = {
    ("median", "bigquery"): "BigQuery's PERCENTILE_CONT is an analytic (window) function only, not an aggregate",
    ("quantile", "bigquery"): "BigQuery's PERCENTILE_CONT is an analytic (window) function only, not an aggregate",
}
"""(aggregate, dialect or "arrow") pairs without a translation, with the reason."""

PROFILE = pa.schema([("customer_id", pa.int64())])
ORDERS = pa.schema(
    [("customer_id", pa.int64()), ("amount", pa.float64()), ("n", pa.int64()), ("sku", pa.string()), ("at", pa.int64())]
)


def call_of(spec) -> str:
    """A call of the aggregate the checker accepts."""
    if spec.value == "none":
        arg = "orders where orders.n > 0"
    else:
        arg = "orders.amount" if spec.accepts in ("number", "orderable", "any") else "orders.sku"
    args = "".join(", 0.5" for _ in spec.params)
    by = " by orders.at" if spec.by else ""
    return f"{spec.name}({arg}{args}{by})"


def missing(host: segql.PluginHost) -> list[str]:
    """The aggregates' missing translations not in UNSUPPORTED."""
    problems = []
    orders = pa.table({f.name: pa.array([1, 1, 2], f.type) if f.name != "sku" else ["a", "b", "c"] for f in ORDERS})
    profile = pa.table({"customer_id": [1, 2, 3]})
    for spec in host.functions.aggregates():
        program = segql.compile(f"feature f = {call_of(spec)}", plugins=host)
        if ("arrow" not in [d for (n, d) in UNSUPPORTED if n == spec.name]) and spec.reducer is None:
            problems.append(f"{spec.name}: no Arrow reducer")
        elif spec.reducer is not None:
            program.evaluate(profile, key="customer_id", related={"orders": orders})
        for dialect in DIALECTS:
            if (spec.name, dialect) in UNSUPPORTED:
                with pytest.raises(segql.SqlError):
                    program.to_sql(dialect, schema=PROFILE, related={"orders": ORDERS}, key="customer_id")
                continue
            try:
                program.to_sql(dialect, schema=PROFILE, related={"orders": ORDERS}, key="customer_id")
            except segql.SqlError as exc:
                problems.append(f"{spec.name}: no {dialect} SQL ({exc.message})")
    return problems


def test_every_aggregate_has_every_translation():
    host = segql.PluginHost(discover=False)
    assert {a.name for a in host.functions.aggregates()} >= {"count", "sum", "median", "quantile"}
    assert missing(host) == []


def test_the_unsupported_list_names_real_aggregates():
    names = {a.name for a in segql.PluginHost(discover=False).functions.aggregates()}
    assert {name for name, _ in UNSUPPORTED} <= names
    assert all(reason for reason in UNSUPPORTED.values())


@pytest.mark.parametrize(("name", "part"), [("median", "sql"), ("sum", "sql"), ("first", "sql"), ("avg", "reducer")])
def test_a_removed_translation_is_caught(name, part):
    host = segql.PluginHost(discover=False)
    registry = host.functions
    registry._aggregates[name] = attrs.evolve(registry._aggregates[name], **{part: None})
    problems = missing(host)
    assert any(p.startswith(f"{name}: no ") for p in problems), problems


# ------------------------------------------------------------ a pack's aggregate
def _range_reducer(groups, node, mask, value, by):
    """max - min of the kept non-null values per customer (null when none)."""
    keep = groups.valid(value, mask)
    numbers = np.asarray(pc.fill_null(pc.cast(value, pa.float64()), 0.0).to_numpy(zero_copy_only=False))[keep]
    pos = groups.positions[keep]
    low = np.full(groups.n, np.inf)
    high = np.full(groups.n, -np.inf)
    np.minimum.at(low, pos, numbers)
    np.maximum.at(high, pos, numbers)
    present = np.bincount(pos, minlength=groups.n) > 0
    return pa.array(np.where(present, high - low, 0.0), mask=~present)


def _range_sql(writer, node):
    value = f"CAST({writer.sql(node.value)} AS DOUBLE)"
    where = f" FILTER (WHERE {writer.sql(node.where)})" if node.where is not None else ""
    return f"(MAX({value}){where} - MIN({value}){where})"


class StatsPack:
    @segql.hookimpl
    def segql_register_functions(self, registry):
        registry.add_aggregate(
            "stats.spread",
            reducer=_range_reducer,
            sql=_range_sql,
            accepts="number",
            returns="float",
            refuse="{func} needs numbers, but {value} is {type}",
            doc="max - min",
        )


def test_a_pack_registers_an_aggregate():
    host = segql.PluginHost(discover=False, packs={"stats": StatsPack()})
    assert host.packs["stats"].ok
    profile = pa.table({"customer_id": [1, 2, 3]})
    orders = pa.table({"customer_id": [1, 1, 1, 2, 2], "amount": [5.0, 1.5, 3.0, 4.0, 9.0], "n": [1, 1, 0, 1, 1]})
    source = "feature s = stats.spread(orders.amount)\nfeature w = stats.spread(orders.amount where orders.n > 0)"
    program = segql.compile(source, plugins=host)
    out = program.evaluate(profile, key="customer_id", related={"orders": orders}).to_pydict()
    assert out["s"] == [3.5, 5.0, None] and out["w"] == [3.5, 5.0, None]
    sql = program.to_sql(schema=profile.schema, related={"orders": orders}, key="customer_id")
    con = duckdb.connect()
    con.register("profiles", profile)
    con.register("orders", orders)
    got = con.sql(sql + " ORDER BY customer_id").to_arrow_table().to_pydict()
    assert got["s"] == out["s"] and got["w"] == out["w"]
    assert not missing(host)
    with pytest.raises(segql.SegqlError, match=r"stats\.spread needs numbers"):
        segql.compile("feature s = stats.spread(orders.sku)", plugins=host).evaluate(
            profile, key="customer_id", related={"orders": orders.append_column("sku", pa.array(["a"] * 5))}
        )


def test_a_pack_aggregate_must_be_namespaced_and_new():
    class Bad:
        @segql.hookimpl
        def segql_register_functions(self, registry):
            registry.add_aggregate("spread", reducer=_range_reducer, sql=_range_sql)

    class Clash:
        @segql.hookimpl
        def segql_register_functions(self, registry):
            registry.add_aggregate("clash.x", reducer=_range_reducer, sql=_range_sql)
            registry.add_aggregate("clash.x", reducer=_range_reducer, sql=_range_sql)

    class Wrong:
        @segql.hookimpl
        def segql_register_functions(self, registry):
            registry.add_aggregate("wrong.x", reducer=_range_reducer, sql=_range_sql, accepts="numbers")

    class Dialect:
        @segql.hookimpl
        def segql_register_functions(self, registry):
            registry.add_aggregate("dialect.x", reducer=_range_reducer, sql=_range_sql, query=["postgress"])

    packs = {"bad": Bad(), "clash": Clash(), "wrong": Wrong(), "dialect": Dialect()}
    host = segql.PluginHost(discover=False, packs=packs)
    assert "must be named bad.<name>" in host.packs["bad"].error.message
    assert "already registered" in host.packs["clash"].error.message
    assert "accepts='numbers'" in host.packs["wrong"].error.message
    assert "query=['postgress']; name dialects among duckdb, spark, postgres" in host.packs["dialect"].error.message
    assert host.functions.aggregate("clash.x") is None and host.functions.aggregate("spread") is None
