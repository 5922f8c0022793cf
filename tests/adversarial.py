"""Hostile tables and expressions, each with an independent translation to DuckDB SQL.

The shapes the older generator (``sqlgen.py``) keeps away from, because each of
them once gave a wrong answer or an ``InternalError``:

* float columns with NaN, ±infinity, ±0, halfway values (2.675, 1.005) and 1e300;
* integers at 2**53 ± 1 and at the ends of int64, compared with float lists;
* dictionary columns whose dictionaries hold null entries, chunked with a
  different dictionary per chunk;
* timestamps of every unit at the ends of their range (``timestamp[s]`` of ±2**62 s);
* ``case``/``if``/``coalesce`` whose untaken branch overflows;
* null literals of every kind as operands;
* float sums that land exactly on a two-decimal threshold.

Each draw uses ``random.Random(seed)``: a failing seed reproduces its case.
The SQL side follows the documented rules (docs/decisions.md), written by hand:
it never asks segql what a form means.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass

import pyarrow as pa

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NS_PER_DAY = 86_400 * 10**9
UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
AS_OF = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
AS_OF_NS = (AS_OF - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000

INTS = (0, 1, -1, 5, 99, 100, 1000, -5, 2**53, 2**53 + 1, 2**53 - 1, 2**62, INT64_MAX, INT64_MIN, INT64_MAX - 10)
FLOATS = (
    *(math.nan, math.inf, -math.inf, 0.0, -0.0, 2.675, 1.005, 0.285, 2.5, -2.5, 0.5, -0.5, 1.5),
    *(1e300, -1e-300, 9007199254740992.0, 123.456, 7.0, -3.25, 1e-7, 0.1, 0.2, 0.3),
)
WORDS = ("x", "y", "PL", "", "ab", "Ab", "a")
DATES = (
    dt.date(1677, 9, 21),
    dt.date(1970, 1, 1),
    dt.date(2024, 2, 29),
    dt.date(2026, 11, 1),
    dt.date(2262, 4, 11),
    dt.date(2300, 1, 1),
    dt.date(1, 1, 1),
    dt.date(9999, 12, 31),
)


def sql_float(v: float) -> str:
    return f"CAST('{v!r}' AS DOUBLE)"


def seg_float(v: float) -> str:
    """A segql float operand: a literal where the language has one, else arithmetic."""
    if math.isnan(v):
        return "(0.0 * (1e308 * 10.0))"  # inf * 0 is NaN
    if math.isinf(v):
        return "(1e308 * 10.0)" if v > 0 else "(-1e308 * 10.0)"
    if v == 0 and math.copysign(1, v) < 0:
        return "(-0.0)"
    text = repr(v)
    return f"({text})" if text.startswith("-") else text


# ---------------------------------------------------------------- tables
@dataclass
class Hostile:
    table: pa.Table
    unit: str

    def describe(self) -> str:
        def values(name: str) -> list[object]:
            column = self.table.column(name)
            if pa.types.is_timestamp(column.type):  # raw counts: ±2**62 s is no Python datetime
                return [v for c in column.chunks for v in c.view(pa.int64()).to_pylist()]
            return column.to_pylist()

        return "\n".join(f"  {f.name} {f.type}: {values(f.name)!r}" for f in self.table.schema)


def _chunks(rng: random.Random, n: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.randint(0, n) for _ in range(rng.randint(0, 3)))
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


def dictionary_chunk(rng: random.Random, values: list[str | None]) -> pa.DictionaryArray:
    """``values`` as a dictionary array whose dictionary holds a null entry (and unused
    words); a null value points at the null entry or is a null index, at random."""
    dictionary = list({v for v in values if v is not None} | set(rng.sample(WORDS, 2)))
    rng.shuffle(dictionary)
    null_entry = rng.randint(0, len(dictionary))
    dictionary.insert(null_entry, None)
    indices = []
    for v in values:
        if v is None:
            indices.append(null_entry if rng.random() < 0.6 else None)
        else:
            indices.append(dictionary.index(v))
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary, pa.string()))


def _timestamp_counts(rng: random.Random, unit: str, n: int) -> list[int | None]:
    per = UNIT_NS[unit]
    if unit == "ns":
        edges = [INT64_MIN + 1, INT64_MAX, 0, -1, AS_OF_NS, AS_OF_NS - NS_PER_DAY]
    else:
        edges = [-(2**62), 2**62, INT64_MAX, INT64_MIN + 1, 0, -1, AS_OF_NS // per, (AS_OF_NS - NS_PER_DAY) // per]
    out: list[int | None] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(None)
        elif r < 0.55:
            out.append(rng.choice(edges))
        else:
            out.append((AS_OF_NS + rng.randint(-400, 400) * NS_PER_DAY + rng.randint(-NS_PER_DAY, NS_PER_DAY)) // per)
    return out


def hostile_table(rng: random.Random) -> Hostile:
    """Profile table: id (key), i int64, f and g float64, s dictionary<string>, t timestamp."""
    n = rng.randint(1, 30)

    def pick(pool: tuple[object, ...], nulls: float = 0.15) -> list[object]:
        return [None if rng.random() < nulls else rng.choice(pool) for _ in range(n)]

    ints = pick(INTS)
    fs = [
        None if rng.random() < 0.15 else (rng.choice(FLOATS) if rng.random() < 0.7 else rng.uniform(-1e3, 1e3))
        for _ in range(n)
    ]
    gs = pick(FLOATS)
    words = pick(WORDS, 0.3)
    unit = rng.choice(tuple(UNIT_NS))
    ts = _timestamp_counts(rng, unit, n)
    ts_type = pa.timestamp(unit, tz="UTC")
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("i", pa.int64()),
            ("f", pa.float64()),
            ("g", pa.float64()),
            ("s", pa.dictionary(pa.int32(), pa.string())),
            ("t", ts_type),
        ]
    )
    batches = []
    for start, stop in _chunks(rng, n):
        batches.append(
            pa.RecordBatch.from_arrays(
                [
                    pa.array(range(start, stop), pa.int64()),
                    pa.array(ints[start:stop], pa.int64()),
                    pa.array(fs[start:stop], pa.float64()),
                    pa.array(gs[start:stop], pa.float64()),
                    dictionary_chunk(rng, words[start:stop]),
                    pa.array(ts[start:stop], pa.int64()).view(ts_type),
                ],
                schema=schema,
            )
        )
    return Hostile(pa.Table.from_batches(batches, schema=schema), unit)


# ----------------------------------------------------------- expressions
@dataclass(frozen=True)
class Form:
    """One expression: segql text, DuckDB SQL over the oracle's view ``p``, and its kind."""

    seg: str
    sql: str
    kind: str  # "bool", "int", "float"


def _exact_int_equals(col: str, item: object) -> str:
    """``col = item`` for an int64 column: an int item by exact value, a float item as
    floats (decisions.md #13: int vs float compares as float, as in DuckDB)."""
    if item is None:
        return "NULL"
    if isinstance(item, float):
        return f"(CAST({col} AS DOUBLE) = {sql_float(item)})"
    return f"(CAST({col} AS HUGEINT) = CAST('{item}' AS HUGEINT))"


def _list_item(rng: random.Random) -> tuple[str, object]:
    r = rng.random()
    if r < 0.45:
        v = rng.choice(INTS)
        return str(v), v
    if r < 0.9:
        v = rng.choice((0.5, 2.0**53, 9007199254740993.0, 100.0, -1.0, 1.5, 2.0**63, -(2.0**63), 7.0))
        return repr(v), v
    return "null", None


def in_list(rng: random.Random) -> Form:
    items = [_list_item(rng) for _ in range(rng.randint(1, 4))]
    if all(v is None for _, v in items):
        items.append(("1.0", 1.0))  # a list of nulls alone has no element type
    if all(isinstance(v, int) or v is None for _, v in items) and rng.random() < 0.7:
        items.append(("0.5", 0.5))  # mostly a mixed list
    negated = rng.random() < 0.4
    seg = f"i {'not in' if negated else 'in'} [{', '.join(t for t, _ in items)}]"
    ors = " OR ".join(_exact_int_equals("i", v) for _, v in items)
    sql = f"(NOT ({ors}))" if negated else f"({ors})"
    return Form(seg, sql, "bool")


def equals_float(rng: random.Random) -> Form:
    v = rng.choice((2.0**53, 9007199254740993.0, 0.5, 100.0, -(2.0**63), 2.0**63))
    op = rng.choice(("=", "!="))
    eq = _exact_int_equals("i", v)
    return Form(f"i {op} {v!r}", eq if op == "=" else f"(NOT {eq})", "bool")


def dictionary_strings(rng: random.Random) -> Form:
    w, w2 = rng.choice(WORDS), rng.choice(WORDS)
    q, q2 = f"'{w}'", f"'{w2}'"
    forms = (
        (f"s not in ({q}, {q2})", f"(s NOT IN ({q}, {q2}))"),
        (f"s not in ({q})", f"(s NOT IN ({q}))"),
        (f"s in [{q}, null]", f"(s IN ({q}, NULL))"),
        (f"s = {q}", f"(s = {q})"),
        (f"s != {q}", f"(s <> {q})"),
        (f"s starts with {q}", f"starts_with(s, {q})"),
        (f"s ends with {q}", f"ends_with(s, {q})"),
        (f"s contains {q}", f"contains(s, {q})"),
        ("s is null", "(s IS NULL)"),
        ("s is not null", "(s IS NOT NULL)"),
        ("length(s) > 1", "(length(s) > 1)"),
        (f"lower(s) = {q.lower()}", f"(lower(s) = {q.lower()})"),
        (f"s < {q}", f"(s < {q})"),
    )
    seg, sql = rng.choice(forms)
    return Form(seg, sql, "bool")


def least_greatest(rng: random.Random) -> Form:
    name = rng.choice(("least", "greatest"))
    args = [("f", "f"), ("g", "g")]
    if rng.random() < 0.5:
        v = rng.choice(FLOATS)
        args.append((seg_float(v), sql_float(v)))
    rng.shuffle(args)
    return Form(f"{name}({', '.join(a for a, _ in args)})", f"{name.upper()}({', '.join(b for _, b in args)})", "float")


def min_max_compare(rng: random.Random) -> Form:
    """least/greatest compared with a value: NaN is the greatest float."""
    inner = least_greatest(rng)
    v = rng.choice((0.0, -1.0, 1e300, 2.675))
    op = rng.choice(("<", ">", ">="))
    nan_false = f"(NOT isnan({inner.sql}) AND {inner.sql} {op} {sql_float(v)})"
    # segql compares IEEE (decisions.md #14): any comparison with NaN is false.
    return Form(f"{inner.seg} {op} {seg_float(v)}", nan_false, "bool")


def round_float(rng: random.Random) -> Form:
    col = rng.choice(("f", "g"))
    digits = rng.choice((0, 1, 2, 2, 3, -1, -2, 5))
    return Form(f"round({col}, {digits})", f"round({col}, {digits})", "float")


def lazy_branch(rng: random.Random) -> Form:
    """An untaken branch that would overflow must not raise."""
    forms = (
        (
            "case when i < 100 then i * 1000 else 0 end > 1",
            "((CASE WHEN i < 100 THEN i * 1000 ELSE 0 END) > 1)",
            "bool",
        ),
        ("if(i < 100, i * 1000, -1)", "(CASE WHEN i < 100 THEN i * 1000 ELSE -1 END)", "int"),
        ("if(i > 100, 0, i * 2)", "(CASE WHEN i > 100 THEN 0 ELSE i * 2 END)", "int"),
        ("coalesce(if(i < 100, i, null), i - 1)", "COALESCE(CASE WHEN i < 100 THEN i ELSE NULL END, i - 1)", "int"),
        (
            "case when i >= 0 then i - 9223372036854775807 when i < -100 then i + 100 else i * 3 end",
            "(CASE WHEN i >= 0 THEN i - 9223372036854775807 WHEN i < -100 THEN i + 100 ELSE i * 3 END)",
            "int",
        ),
    )
    seg, sql, kind = rng.choice(forms)
    return Form(seg, sql, kind)


def _date_bounds(d: dt.date) -> tuple[int, int]:
    start = (d - dt.date(1970, 1, 1)).days * NS_PER_DAY
    return start, start + NS_PER_DAY


def timestamp_vs_date(rng: random.Random, unit: str) -> Form:
    """Whole-day comparison of a timestamp with a date (LANGUAGE.md §2), in exact integers."""
    d = rng.choice(DATES)
    op = rng.choice(("<", "<=", ">", ">=", "=", "!="))
    start, stop = _date_bounds(d)
    t = f"(CAST(t_raw AS HUGEINT) * {UNIT_NS[unit]})"
    h = lambda v: f"CAST('{v}' AS HUGEINT)"
    sql = {
        "<": f"({t} < {h(start)})",
        "<=": f"({t} < {h(stop)})",
        ">": f"({t} >= {h(stop)})",
        ">=": f"({t} >= {h(start)})",
        "=": f"({t} >= {h(start)} AND {t} < {h(stop)})",
        "!=": f"(NOT ({t} >= {h(start)} AND {t} < {h(stop)}))",
    }[op]
    return Form(f"t {op} {d.isoformat()}", sql, "bool")


def timestamp_vs_instant(rng: random.Random, unit: str) -> Form:
    instant = rng.choice(("2300-01-01T00:00:00", "1900-01-01T00:00:00Z", "2026-10-31T09:30:00", "1677-09-22T00:00:00"))
    base = dt.datetime.fromisoformat(instant.replace("Z", "+00:00")).replace(tzinfo=dt.UTC)
    ns = (base - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
    op = rng.choice(("<", ">=", "="))
    return Form(
        f"t {op} {instant}", f"((CAST(t_raw AS HUGEINT) * {UNIT_NS[unit]}) {op} CAST('{ns}' AS HUGEINT))", "bool"
    )


def days_since(rng: random.Random, unit: str) -> Form:
    """days_since(t): whole days from t to as_of, floored; a value beyond int64 is an error."""
    name = rng.choice(("days_since", "days_until"))
    t = f"(CAST(t_raw AS HUGEINT) * {UNIT_NS[unit]})"
    now = f"CAST('{AS_OF_NS}' AS HUGEINT)"
    diff = f"({now} - {t})" if name == "days_since" else f"({t} - {now})"
    floored = f"(({diff} - ((({diff}) % {NS_PER_DAY} + {NS_PER_DAY}) % {NS_PER_DAY})) // {NS_PER_DAY})"
    return Form(f"{name}(t)", f"CAST({floored} AS BIGINT)", "int")


def null_operands(rng: random.Random) -> Form:
    forms = (
        ("null between null and null", "bool"),
        ("i between null and 5", "bool"),
        ("-1m = null", "bool"),
        ("null = -1m", "bool"),
        ("f > null", "bool"),
        ("s = null", "bool"),
        ("t < null", "bool"),
        ("null in [1, 2]", "bool"),
        ("null + 1 > 0", "bool"),
        ("now - 1d = null", "bool"),
        ("null between 1 and 2", "bool"),
        ("1d > null", "bool"),
    )
    seg, kind = rng.choice(forms)
    if seg == "i between null and 5":
        return Form(seg, "(CASE WHEN i > 5 THEN FALSE ELSE NULL END)", kind)
    return Form(seg, "CAST(NULL AS BOOLEAN)", kind)


def expression(rng: random.Random, unit: str) -> Form:
    maker = rng.choice(
        (
            in_list,
            in_list,
            equals_float,
            dictionary_strings,
            dictionary_strings,
            least_greatest,
            min_max_compare,
            round_float,
            round_float,
            lazy_branch,
            null_operands,
            "t_date",
            "t_instant",
            "days",
        )
    )
    if maker == "t_date":
        return timestamp_vs_date(rng, unit)
    if maker == "t_instant":
        return timestamp_vs_instant(rng, unit)
    if maker == "days":
        return days_since(rng, unit)
    assert callable(maker)
    return maker(rng)


# -------------------------------------------------------------- aggregates
@dataclass
class Orders:
    table: pa.Table
    thresholds: list[float]


def cents_summing_to(rng: random.Random, total_cents: int, parts: int) -> list[int]:
    cuts = sorted(rng.randint(0, total_cents) for _ in range(parts - 1))
    bounds = [0, *cuts, total_cents]
    return [b - a for a, b in itertools.pairwise(bounds)]


def hostile_orders(rng: random.Random, customers: int) -> Orders:
    """orders(id, amount: two-decimal floats, some customers' summing exactly to a threshold,
    v: float with NaN/±inf/±0, c: chunked dictionary with null entries, ts: distinct per customer)."""
    thresholds = [rng.choice((500.0, 100.0, 0.3, 19.99, 1000.01))]
    ids, amounts = [], []
    for cid in range(customers):
        r = rng.random()
        if r < 0.4:
            cents = cents_summing_to(rng, round(thresholds[0] * 100), rng.randint(1, 40))
        elif r < 0.8:
            cents = [rng.randint(0, 50_000) for _ in range(rng.randint(0, 12))]
        else:
            cents = [rng.choice((10, 20, 30, 1, 99, 1999)) for _ in range(rng.randint(0, 25))]
        for c in cents:
            ids.append(cid)
            amounts.append(None if rng.random() < 0.05 else c / 100)
    n = len(ids)
    order = list(range(n))
    rng.shuffle(order)  # the sum must not depend on row order
    ids = [ids[k] for k in order]
    amounts = [amounts[k] for k in order]
    vs = [None if rng.random() < 0.1 else rng.choice(FLOATS) for _ in range(n)]
    words = [None if rng.random() < 0.25 else rng.choice(WORDS) for _ in range(n)]
    # Distinct times per customer (ties are the subject of LANGUAGE.md §3, not of this suite).
    ts = [
        AS_OF_NS // 1000 - (k + 1) * 3_600_000_000 - rng.randint(0, 1000) * 86_400_000_000_000 // 1000 for k in range(n)
    ]
    seen: set[tuple[int, int]] = set()
    for k in range(n):
        while (ids[k], ts[k]) in seen:
            ts[k] -= 1
        seen.add((ids[k], ts[k]))
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.float64()),
            ("v", pa.float64()),
            ("c", pa.dictionary(pa.int32(), pa.string())),
            ("ts", pa.timestamp("us", tz="UTC")),
        ]
    )
    batches = [
        pa.RecordBatch.from_arrays(
            [
                pa.array(ids[a:b], pa.int64()),
                pa.array(amounts[a:b], pa.float64()),
                pa.array(vs[a:b], pa.float64()),
                dictionary_chunk(rng, words[a:b]),
                pa.array(ts[a:b], pa.timestamp("us", tz="UTC")),
            ],
            schema=schema,
        )
        for a, b in _chunks(rng, n)
    ]
    return Orders(pa.Table.from_batches(batches, schema=schema), thresholds)


@dataclass(frozen=True)
class AggForm:
    """An aggregate feature: segql text and either DuckDB SQL over ``o`` grouped by id
    (``sql``, with the value for a customer without rows in ``empty``) or a Python
    reference over the customer's rows (``python``)."""

    seg: str
    kind: str
    sql: str = ""
    empty: str = "NULL"
    python: str = ""


def aggregate(rng: random.Random, thresholds: list[float]) -> AggForm:
    w = rng.choice(WORDS)
    t = rng.choice(thresholds)
    forms = (
        AggForm(f"sum(orders.amount) > {t!r}", "bool", python=f"fsum_gt:{t!r}"),
        AggForm(f"sum(orders.amount) >= {t!r}", "bool", python=f"fsum_ge:{t!r}"),
        AggForm("sum(orders.amount)", "float", python="fsum"),
        AggForm("avg(orders.amount)", "float", python="favg"),
        AggForm("min(orders.v)", "float", "MIN(v)"),
        AggForm("max(orders.v)", "float", "MAX(v)"),
        AggForm("min(orders.v) < 0", "bool", "(MIN(v) < 0 AND NOT isnan(MIN(v)))"),
        AggForm("count_distinct(orders.v)", "int", "COUNT(DISTINCT v)", "0"),
        AggForm("count_distinct(orders.c)", "int", "COUNT(DISTINCT c)", "0"),
        AggForm("min(orders.c)", "str", "MIN(c)"),
        AggForm("max(orders.c)", "str", "MAX(c)"),
        AggForm(f"count(orders where c = '{w}')", "int", f"COUNT(*) FILTER (WHERE c = '{w}')", "0"),
        AggForm(f"count(orders where c not in ('{w}'))", "int", f"COUNT(*) FILTER (WHERE c NOT IN ('{w}'))", "0"),
        AggForm("count(orders where c is null)", "int", "COUNT(*) FILTER (WHERE c IS NULL)", "0"),
        AggForm("exists(orders where v > 0)", "bool", "COALESCE(BOOL_OR(v > 0 AND NOT isnan(v)), FALSE)", "FALSE"),
        AggForm("last(orders.c by ts)", "str", "arg_max_null(c, ts)"),
        AggForm("first(orders.v by ts)", "float", "arg_min_null(v, ts)"),
        AggForm(
            "count_distinct(orders.c where v >= 0)",
            "int",
            "COUNT(DISTINCT c) FILTER (WHERE v >= 0 AND NOT isnan(v))",
            "0",
        ),
    )
    return rng.choice(forms)


def python_reference(kind: str, amounts: list[float]) -> object:
    """Exact references for float sums: math.fsum is correctly rounded."""
    values = [a for a in amounts if a is not None]
    if kind == "fsum":
        return math.fsum(values)
    if kind == "favg":
        return math.fsum(values) / len(values) if values else None
    op, threshold = kind.split(":")
    total = math.fsum(values)
    return total > float(threshold) if op == "fsum_gt" else total >= float(threshold)
