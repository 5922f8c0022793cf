"""Differential test: segql's aggregates against DuckDB on random data.

Hypothesis draws a small profile table (int keys in a dense range, sparse
int keys or string keys, so both key indexes run; sometimes a null key) and a
related ``orders`` table (keys partly unknown to the profile, some null,
sometimes dictionary-encoded; nullable int64/int32, float64/float32, string,
dictionary-string, bool and timestamp columns, the timestamps aware or naive,
in us or ms; one to three chunks),
and a program of one to four features, each an aggregate with a random
function, column, optional ``where`` and ``by``, sometimes inside arithmetic
or a comparison.  Every expression is built twice, once in segql and once in
DuckDB SQL, and the per-customer values must agree.

Floats are multiples of 0.25 (sums are exact, so the order of summation does
not matter); NaN is left out (segql and DuckDB order it differently and the
contract does not say how ``min``/``max`` treat it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass, field

import pyarrow as pa
from duck_oracle import Agg, assert_same_column, connect, evaluate, register_profile, register_related
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segql

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)  # -1m clamps to 29 February
NOW = "TIMESTAMPTZ '2024-03-31 10:30:00+00'"
TODAY = f"date_trunc('day', {NOW})"

# Examples per run (with test_differential_duckdb.py: 5,000 in all).
# A third of them by default (the full counts under CI or SEGQL_LONG=1), so that the
# default run stays under ten minutes on 2 cores.
FULL = bool(os.environ.get("CI") or os.environ.get("SEGQL_LONG"))
SINGLE_AGGREGATE_EXAMPLES = 650 if FULL else 220
COMBINED_AGGREGATE_EXAMPLES = 450 if FULL else 150

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WORDS = ["a", "b", "c", "ab", "ba", ""]
NUMERIC, ORDERABLE = ("i", "f"), ("i", "f", "s", "d", "t")
ALL_COLUMNS = ("i", "f", "s", "d", "b", "t")


# ------------------------------------------------------------------- data
@dataclass(repr=False)
class Scenario:
    profile: pa.Table
    orders: pa.Table
    features: dict[str, str] = field(default_factory=dict)  # name -> segql
    aggregates: dict[str, Agg] = field(default_factory=dict)  # hidden name -> DuckDB aggregate
    outputs: dict[str, str] = field(default_factory=dict)  # name -> DuckDB expression over the aggregates

    def __repr__(self) -> str:  # what a failing example prints: enough to replay it
        def table(t: pa.Table) -> str:
            return (
                "pa.table({"
                + ", ".join(f"{n!r}: pa.array({c.to_pylist()!r}, {c.type})" for n, c in zip(t.column_names, t.columns))
                + "})"
            )

        return f"\nsource:\n{self.source}\nprofile = {table(self.profile)}\norders = {table(self.orders)}\n"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # hypothesis prints falsifying examples with this
        printer.text(repr(self))

    @property
    def source(self) -> str:
        return "\n".join(
            f"{'segment' if name.startswith('seg') else 'feature'} {name} = {text}"
            for name, text in self.features.items()
        )


def key_maker(kind: str):
    """Turns the drawn small ints into keys of one kind (the dense and the hashed key index)."""
    if kind == "dense int":
        return lambda k: k
    if kind == "sparse int":
        return lambda k: k * 1_000_000_000_007 - 3
    return lambda k: f"c{k:03d}"


def chunked(table: pa.Table, cuts: list[int]) -> pa.Table:
    """The same rows in several chunks (cut at the given row numbers)."""
    bounds = sorted({0, table.num_rows, *(c for c in cuts if 0 < c < table.num_rows)})
    pieces = [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    return pa.concat_tables(pieces) if pieces else table


timestamps = st.builds(
    lambda days, time: dt.datetime(2024, 3, 31, tzinfo=dt.UTC) + dt.timedelta(days=days) + time,
    st.integers(-420, 5),
    st.sampled_from([dt.timedelta(0), dt.timedelta(hours=10, minutes=30), dt.timedelta(hours=23, minutes=59)])
    | st.integers(0, 86_399).map(lambda s: dt.timedelta(seconds=s)),
)


@st.composite
def tables(draw) -> tuple[pa.Table, pa.Table]:
    make_key = key_maker(draw(st.sampled_from(["dense int", "sparse int", "string"])))
    key_type = pa.string() if isinstance(make_key(1), str) else pa.int64()
    known = draw(st.lists(st.integers(0, 30), unique=True, max_size=10))
    profile_keys = [make_key(k) for k in known]
    if draw(st.booleans()) and draw(st.booleans()):
        profile_keys.insert(draw(st.integers(0, len(profile_keys))), None)  # matches nothing
    profile = pa.table({"customer_id": pa.array(profile_keys, key_type), "tier": pa.array(range(len(profile_keys)))})

    order_key = st.sampled_from(known) if known else st.nothing()
    order_keys = draw(
        st.lists(order_key | st.integers(31, 36) | st.none(), max_size=40)  # known, unknown or null
    )
    n = len(order_keys)

    def column(values):
        return draw(st.lists(st.none() | values, min_size=n, max_size=n))

    int_type = draw(st.sampled_from([pa.int64(), pa.int32()]))
    float_type = draw(st.sampled_from([pa.float64(), pa.float32()]))
    ts_type = draw(st.sampled_from([pa.timestamp("us", tz="UTC"), pa.timestamp("us"), pa.timestamp("ms", tz="UTC")]))
    ts_values = column(timestamps)
    if ts_type.tz is None:
        ts_values = [None if t is None else t.replace(tzinfo=None) for t in ts_values]
    related_key = pa.array([None if k is None else make_key(k) for k in order_keys], key_type)
    if key_type == pa.string() and draw(st.booleans()):
        related_key = related_key.dictionary_encode()
    orders = pa.table(
        {
            "customer_id": related_key,
            "i": pa.array(column(st.integers(-50, 50)), int_type),
            "f": pa.array(column(st.integers(-400, 400).map(lambda q: q / 4)), float_type),
            "s": pa.array(column(st.sampled_from(WORDS)), pa.string()),
            "d": pa.array(column(st.sampled_from(WORDS)), pa.string()).dictionary_encode(),
            "b": pa.array(column(st.booleans()), pa.bool_()),
            "t": pa.array(ts_values, ts_type),
        }
    )
    orders = chunked(orders, draw(st.lists(st.integers(1, max(1, n - 1)), max_size=2)))
    profile = chunked(profile, draw(st.lists(st.integers(1, max(1, len(profile_keys) - 1)), max_size=1)))
    return profile, orders


# -------------------------------------------------------------- conditions
def _ts_atom(draw) -> tuple[str, str]:
    days = draw(st.sampled_from([1, 7, 30, 90, 365]))
    options = [
        (f"t >= -{days}d", f"t >= {NOW} - INTERVAL {days} DAY"),
        (f"t < -{days}d", f"t < {NOW} - INTERVAL {days} DAY"),
        ("t between -1y and -90d", f"t BETWEEN {NOW} - INTERVAL 1 YEAR AND {NOW} - INTERVAL 90 DAY"),
        ("t >= -1m", f"t >= {NOW} - INTERVAL 1 MONTH"),
        ("t >= -6m", f"t >= {NOW} - INTERVAL 6 MONTH"),
        ("t >= today", f"t >= {TODAY}"),
        ("t < today - 2w", f"t < {TODAY} - INTERVAL 14 DAY"),
        ("t >= now - 12h", f"t >= {NOW} - INTERVAL 12 HOUR"),
        ("t between 2024-01-01 and 2024-02-29", "CAST(t AS DATE) BETWEEN DATE '2024-01-01' AND DATE '2024-02-29'"),
        ("t > 2023-12-31", "CAST(t AS DATE) > DATE '2023-12-31'"),
        ("t is null", "t IS NULL"),
    ]
    return draw(st.sampled_from(options))


@st.composite
def atoms(draw) -> tuple[str, str]:
    kind = draw(st.sampled_from(["i", "f", "s", "d", "b", "t", "t"]))
    if kind == "t":
        return _ts_atom(draw)
    if kind == "b":
        return draw(st.sampled_from([("b", "b"), ("not b", "NOT b"), ("b is not null", "b IS NOT NULL")]))
    if kind in NUMERIC:
        c = draw(st.integers(-40, 40))
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        sql_op = "<>" if op == "!=" else op
        return draw(
            st.sampled_from(
                [
                    (f"{kind} {op} {c}", f"{kind} {sql_op} {c}"),
                    (f"{kind} between {c} and {c + 20}", f"{kind} BETWEEN {c} AND {c + 20}"),
                    (f"{kind} in [{c}, {c + 1}, 0]", f"{kind} IN ({c}, {c + 1}, 0)"),
                    (f"{kind} is null", f"{kind} IS NULL"),
                ]
            )
        )
    word = draw(st.sampled_from(WORDS[:-1]))
    return draw(
        st.sampled_from(
            [
                (f'{kind} = "{word}"', f"{kind} = '{word}'"),
                (f'{kind} != "{word}"', f"{kind} <> '{word}'"),
                (f'{kind} in ["{word}", "c"]', f"{kind} IN ('{word}', 'c')"),
                (f'{kind} not in ["{word}"]', f"{kind} NOT IN ('{word}')"),
                (f'{kind} starts with "{word}"', f"starts_with({kind}, '{word}')"),
                (f'{kind} contains "{word}"', f"contains({kind}, '{word}')"),
                (f'{kind} > "{word}"', f"{kind} > '{word}'"),
                (f"{kind} is not null", f"{kind} IS NOT NULL"),
            ]
        )
    )


@st.composite
def conditions(draw, depth: int = 2) -> tuple[str, str]:
    if depth == 0 or draw(st.booleans()):
        return draw(atoms())
    left, right = draw(conditions(depth - 1)), draw(conditions(depth - 1))
    shape = draw(st.sampled_from(["and", "or", "not"]))
    if shape == "not":
        return f"not ({left[0]})", f"NOT ({left[1]})"
    return f"({left[0]}) {shape} ({right[0]})", f"({left[1]}) {shape.upper()} ({right[1]})"


# -------------------------------------------------------------- aggregates
RESULT_KIND = {"count": "int", "count_distinct": "int", "exists": "bool", "avg": "float"}


@st.composite
def aggregates(draw, numeric_only: bool = False) -> tuple[str, Agg, str]:
    """(segql text, DuckDB aggregate, result kind: int float str bool ts)."""
    func = draw(st.sampled_from(["count", "sum", "avg", "min", "max", "count_distinct", "first", "last", "exists"]))
    if numeric_only and func == "exists":
        func = "count"
    where = draw(st.none() | conditions())
    by = None
    if func == "exists" or (func == "count" and draw(st.booleans())):
        value = None
    elif func in ("sum", "avg"):
        value = draw(st.sampled_from(NUMERIC))
    elif func in ("min", "max"):
        value = draw(st.sampled_from(NUMERIC if numeric_only else ORDERABLE))
    else:
        value = draw(st.sampled_from(NUMERIC if numeric_only and func != "count_distinct" else ALL_COLUMNS))
    if func in ("first", "last"):
        by = draw(st.sampled_from(ORDERABLE))
    seg_value, sql_value = (f"orders.{value}", value) if value else ("orders", None)
    if value in NUMERIC and func in ("sum", "avg", "min", "max") and draw(st.booleans()):
        seg_value, sql_value = draw(
            st.sampled_from([(f"orders.{value} * 2", f"{value} * 2"), (f"orders.{value} + i", f"{value} + i")])
        )
    text = func + "(" + seg_value + (f" by {by}" if by else "") + (f" where {where[0]}" if where else "") + ")"
    agg = Agg(func, sql_value, by, where[1] if where else None)
    kind = RESULT_KIND.get(func) or {"i": "int", "f": "float", "s": "str", "d": "str", "b": "bool", "t": "ts"}[value]
    if func == "sum" and "f" in (sql_value or ""):
        kind = "float"
    return text, agg, kind


def numeric(kind: str) -> bool:
    return kind in ("int", "float")


@st.composite
def scenarios(draw, combined: bool, size: int | None = None) -> Scenario:
    """Random tables and 1-4 random aggregate features (``size`` of them if given)."""
    profile, orders = draw(tables())
    scenario = Scenario(profile, orders)
    for n in range(draw(st.integers(1, 4)) if size is None else size):
        text, agg, kind = draw(aggregates())
        scenario.aggregates[f"a{n}"] = agg
        name, sql = f"f{n}", f"a{n}"
        if combined and numeric(kind) and draw(st.booleans()):
            other_text, other_agg, other_kind = draw(aggregates(numeric_only=True))
            scenario.aggregates[f"b{n}"] = other_agg
            op = draw(st.sampled_from(["+", "-", "*", "/", "%"]))
            text = f"{text} {op} {other_text}"
            sql = f"a{n} {op} NULLIF(b{n}, 0)" if op in "/%" else f"a{n} {op} b{n}"
            kind = "float" if op == "/" or "float" in (kind, other_kind) else "int"
        if combined and draw(st.booleans()):
            if numeric(kind):
                c = draw(st.integers(-5, 60))
                op = draw(st.sampled_from(["<", ">=", "=", "!="]))
                text, sql = f"{text} {op} {c}", f"({sql}) {'<>' if op == '!=' else op} {c}"
            elif kind == "str":
                text, sql = f'{text} >= "b"', f"({sql}) >= 'b'"
            elif kind == "ts":
                text, sql = draw(
                    st.sampled_from(
                        [
                            (f"{text} >= -90d", f"({sql}) >= {NOW} - INTERVAL 90 DAY"),
                            (f"{text} - 30d < -1y", f"({sql}) - INTERVAL 30 DAY < {NOW} - INTERVAL 1 YEAR"),
                            (f"{text} + 2w >= today", f"({sql}) + INTERVAL 14 DAY >= {TODAY}"),
                        ]
                    )
                )
            name, sql = f"seg{n}", f"COALESCE({sql}, false)"  # membership: true only
        elif combined and kind == "bool":
            name, sql = f"seg{n}", f"COALESCE({sql}, false)"
        scenario.features[name] = text
        scenario.outputs[name] = sql
    return scenario


def check(scenario: Scenario) -> None:
    program = segql.compile(scenario.source)
    out = program.evaluate(scenario.profile, key="customer_id", related={"orders": scenario.orders}, as_of=AS_OF)
    assert out.column("customer_id").equals(scenario.profile.column("customer_id"))
    con = connect()
    register_profile(con, scenario.profile)
    register_related(con, scenario.orders)
    expected = evaluate(con, scenario.aggregates, scenario.outputs)
    keys = out.column("customer_id").to_pylist()
    for name in scenario.features:
        got = out.column(name)
        assert_same_column(f"{name} = {scenario.features[name]}", got.to_pylist(), expected[name], keys)
        if name.startswith("seg"):
            assert got.null_count == 0
    con.close()


@settings(SETTINGS, max_examples=SINGLE_AGGREGATE_EXAMPLES)
@given(scenarios(combined=False))
def test_single_aggregates_match_duckdb(scenario):
    check(scenario)


@settings(SETTINGS, max_examples=COMBINED_AGGREGATE_EXAMPLES)
@given(scenarios(combined=True))
def test_aggregates_in_expressions_match_duckdb(scenario):
    check(scenario)
