"""Aggregates over dictionary columns whose dictionaries hold a null entry.

A related column may be dictionary-encoded with a dictionary that contains a
null *entry* (rows pointing at it are null, like rows with a null index), and a
chunked column may carry a different dictionary in every chunk.  Arrow cannot
unify such dictionaries (``take`` across chunks, ``combine_chunks``), which
once ended 163 of 4,000 random programs in an InternalError (issue #15).

Hypothesis draws such columns (string and integer values, int8 or int32
indices, one to four chunks, each with its own dictionary holding None, plus
null indices) and a program of one to three aggregates over them (``count``,
``count_distinct``, ``min``, ``max``, ``sum``/``avg`` of integers, ``first`` /
``last … by`` with the column as value or as ``by``, ``exists`` and
``count`` with ``where`` filters on it).  DuckDB, on the decoded column,
computes every aggregate by hand-written SQL (tests/duck_oracle.py).

Examples per run: 200; ``SEGQL_LONG=1``: 4,000.
"""

from __future__ import annotations

import os

import pyarrow as pa
from duck_oracle import Agg, assert_same_column, connect, evaluate, register_profile, register_related
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segql

EXAMPLES = 4_000 if os.environ.get("SEGQL_LONG") else 200

STRINGS = ["a", "b", "ab", "", "zz"]
INTS = [-3, 0, 1, 2, 40]


def dictionary_chunk(draw, values: list, value_type: pa.DataType, index_type: pa.DataType, rows: int) -> pa.Array:
    """One chunk: its own dictionary (some of ``values`` and a null entry, in
    random order) and indices into it, some of them null."""
    entries = draw(st.lists(st.sampled_from(values), unique=True, max_size=len(values)))
    entries.insert(draw(st.integers(0, len(entries))), None)
    index = st.integers(0, len(entries) - 1)
    indices = draw(st.lists(st.none() | index | index, min_size=rows, max_size=rows))
    return pa.DictionaryArray.from_arrays(pa.array(indices, index_type), pa.array(entries, value_type))


@st.composite
def tables(draw) -> tuple[pa.Table, pa.Table, str]:
    kind = draw(st.sampled_from(["s", "i"]))
    values = STRINGS if kind == "s" else INTS
    value_type = pa.string() if kind == "s" else draw(st.sampled_from([pa.int64(), pa.int32()]))
    index_type = draw(st.sampled_from([pa.int8(), pa.int32()]))
    sizes = draw(st.lists(st.integers(0, 8), min_size=1, max_size=4))
    x, keys, t = [], [], []
    for rows in sizes:
        x.append(dictionary_chunk(draw, values, value_type, index_type, rows))
        keys.append(pa.array(draw(st.lists(st.none() | st.integers(0, 5), min_size=rows, max_size=rows)), pa.int64()))
        t.append(pa.array(draw(st.lists(st.none() | st.integers(0, 4), min_size=rows, max_size=rows)), pa.int64()))
    orders = pa.table(
        {
            "customer_id": pa.chunked_array(keys, pa.int64()),
            "x": pa.chunked_array(x, pa.dictionary(index_type, value_type)),
            "t": pa.chunked_array(t, pa.int64()),
        }
    )
    profile = pa.table({"customer_id": pa.array([0, 1, 2, 3, 4], pa.int64())})  # 5: unknown to the profile
    return profile, orders, kind


def literal(kind: str, value: object) -> tuple[str, str]:
    return (f'"{value}"', f"'{value}'") if kind == "s" else (str(value), str(value))


@st.composite
def conditions(draw, kind: str) -> tuple[str, str]:
    values = STRINGS if kind == "s" else INTS
    seg, sql = literal(kind, draw(st.sampled_from(values)))
    seg2, sql2 = literal(kind, draw(st.sampled_from(values)))
    return draw(
        st.sampled_from(
            [
                (f"x = {seg}", f"x = {sql}"),
                (f"x != {seg}", f"x <> {sql}"),
                (f"x > {seg}", f"x > {sql}"),
                (f"x <= {seg}", f"x <= {sql}"),
                (f"x in [{seg}, {seg2}]", f"x IN ({sql}, {sql2})"),
                ("x is null", "x IS NULL"),
                ("x is not null", "x IS NOT NULL"),
                (f"x = {seg} or t > 2", f"x = {sql} OR t > 2"),
                (f"not (x = {seg})", f"NOT (x = {sql})"),
                ("t >= 2", "t >= 2"),
            ]
        )
    )


@st.composite
def aggregates(draw, kind: str) -> tuple[str, Agg]:
    funcs = ["count", "count_distinct", "min", "max", "first", "last", "exists", "count(orders)"]
    if kind == "i":
        funcs += ["sum", "avg"]
    func = draw(st.sampled_from(funcs))
    where = draw(st.none() | conditions(kind))
    tail = f" where {where[0]}" if where else ""
    sql_where = where[1] if where else None
    if func in ("exists", "count(orders)"):
        name = "exists" if func == "exists" else "count"
        return f"{name}(orders{tail})", Agg(name, None, None, sql_where)
    if func in ("first", "last"):
        value, by = draw(st.sampled_from([("x", "t"), ("t", "x"), ("x", "x")]))
        return f"{func}(orders.{value} by {by}{tail})", Agg(func, value, by, sql_where)
    return f"{func}(orders.x{tail})", Agg(func, "x", None, sql_where)


@st.composite
def scenarios(draw) -> tuple[pa.Table, pa.Table, dict[str, str], dict[str, Agg]]:
    profile, orders, kind = draw(tables())
    features, oracle = {}, {}
    for n in range(draw(st.integers(1, 3))):
        text, agg = draw(aggregates(kind))
        features[f"f{n}"] = text
        oracle[f"f{n}"] = agg
    return profile, orders, features, oracle


CON: list = []


def check(profile: pa.Table, orders: pa.Table, features: dict[str, str], oracle: dict[str, Agg]) -> None:
    source = "\n".join(f"feature {name} = {text}" for name, text in features.items())
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    con = CON[0] if CON else CON.append(connect()) or CON[0]  # one connection: connecting costs ~25 ms
    register_profile(con, profile)
    register_related(con, orders)  # decoded (duck_oracle.plain)
    expected = evaluate(con, oracle)
    keys = out.column("customer_id").to_pylist()
    for name, text in features.items():
        assert_same_column(f"{name} = {text}", out.column(name).to_pylist(), expected[name], keys)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_aggregates_over_chunked_dictionaries_with_null_entries_match_duckdb(scenario):
    check(*scenario)


def dictionary(indices: list, entries: list) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(entries, pa.string()))


def test_two_chunks_with_null_dictionary_entries():
    """The shape that raised "Cannot yet unify dictionaries with nulls"."""
    x = pa.chunked_array([dictionary([0, 1, None, 2], ["a", None, "b"]), dictionary([1, 0], [None, "c"])])
    orders = pa.table({"customer_id": pa.chunked_array([[0, 0, 1, 1], [1, 0]]), "x": x, "t": [1, 2, 3, 4, 5, 6]})
    profile = pa.table({"customer_id": [0, 1, 2]})
    source = """
        feature n = count(orders.x)
        feature nd = count_distinct(orders.x)
        feature lo = min(orders.x)
        feature hi = max(orders.x)
        feature lt = last(orders.x by orders.t)
        feature ft = first(orders.t by orders.x)
        feature nulls = count(orders where orders.x is null)
    """
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders}).to_pydict()
    # customer 0: a (t 1), null entry (t 2), null entry (t 6); customer 1: null index (t 3), b (t 4), c (t 5)
    assert out["n"] == [1, 2, 0]
    assert out["nd"] == [1, 2, 0]
    assert out["lo"] == ["a", "b", None]
    assert out["hi"] == ["a", "c", None]
    assert out["lt"] == [None, "c", None]
    assert out["ft"] == [1, 4, None]
    assert out["nulls"] == [2, 1, 0]
