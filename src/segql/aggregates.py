"""segql's aggregates over related tables (LANGUAGE.md §3, §10), each declared once.

One :class:`~segql.registry.AggregateSpec` per aggregate holds everything
about it: which value types it accepts and its result type (the checker),
its value over no rows, whether it takes a value / a ``by`` / constant
arguments, its Arrow reducer (:class:`segql.engines.arrow.aggregate.Groups`
does the grouping) and its SQL (written into the table's ``GROUP BY``
subquery by :mod:`segql.engines.sql.writer`).  The built-ins below are
registered by segql's own pack through the ``segql_register_functions`` hook,
with the same :meth:`~segql.registry.FunctionRegistry.add_aggregate` call a
pack uses (docs/plugins.md, "Aggregates").

Adding an aggregate is one ``registry.add_aggregate(...)`` here, plus tests
and docs; ``tests/test_aggregate_specs.py`` fails while one lacks an Arrow
reducer or SQL for a dialect without being on its explicit unsupported list.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.engines.arrow.exactsum import group_fsum
from segql.engines.arrow.values import to_float64
from segql.engines.sql.dialects import NAN_NOT_GREATEST
from segql.engines.sql.literals import python_literal
from segql.errors import SqlError
from segql.hookspecs import hookimpl
from segql.registry import FunctionRegistry
from segql.types import FLOAT, INT, SType


def _kind(node: ast.Node | None) -> str | None:
    return node.type.kind if node is not None and node.type is not None else None


def _f(value: float) -> str:
    return python_literal(float(value))


# ------------------------------------------------------------------ count / exists
def _count_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    if value is None:  # count(orders where …): rows
        return pa.array(groups.count_rows(mask))
    return pa.array(groups.count_rows(groups.valid(value, mask)))


def _exists_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    return pa.array(groups.count_rows(mask) > 0)


def _count_sql(writer: Any, node: ast.Aggregate) -> str:
    value = writer.sql(node.value) if node.value is not None else "*"
    return f"COUNT({value}){_filter(writer, node)}"


def _exists_sql(writer: Any, node: ast.Aggregate) -> str:
    return f"({_count_sql(writer, node)} > 0)"


def _filter(writer: Any, node: ast.Aggregate) -> str:
    return f" FILTER (WHERE {writer.sql(node.where)})" if node.where is not None else ""


# ----------------------------------------------------------------- count_distinct
def _count_distinct_sql(writer: Any, node: ast.Aggregate) -> str:
    value, where = writer.sql(node.value), _filter(writer, node)
    if _kind(node.value) != "float" or writer.dialect not in NAN_NOT_GREATEST:
        return f"COUNT(DISTINCT {value}){where}"  # 0.0 and -0.0 one value, the NaNs one
    nan = writer.is_nan(value)
    numbers = f"(CASE WHEN {nan} THEN NULL WHEN {value} = 0 THEN CAST(0 AS DOUBLE) ELSE {value} END)"
    return f"(COUNT(DISTINCT {numbers}){where} + COALESCE(MAX(CASE WHEN {nan} THEN 1 ELSE 0 END){where}, 0))"


# ---------------------------------------------------------------------- sum / avg
def _sum_avg_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    result: pa.Array = groups.sum_avg(node, mask, value)
    return result


def _sum_avg_sql(writer: Any, node: ast.Aggregate) -> str:
    value, where, kind = writer.sql(node.value), _filter(writer, node), _kind(node.value)
    count = f"CAST(NULLIF(COUNT({value}){where}, 0) AS DOUBLE)"
    if node.func == "avg" and kind == "decimal":
        # The exact sum as a double, over the count (engines' AVG of decimals round differently).
        return f"(CAST(SUM({value}){where} AS DOUBLE) / {count})"
    if node.func == "avg" and kind == "int":
        # The exact integer sum (38 digits hold any 2**63 * rows) as a double, over
        # the count: no int64 partial sum overflows (docs/decisions.md, "Float sums").
        return f"(CAST(SUM(CAST({value} AS DECIMAL(38, 0))){where} AS DOUBLE) / {count})"
    if kind != "float":
        return f"{node.func.upper()}({value}){where}"
    # The most accurate float sum each engine has (docs/sql.md): DuckDB's FSUM
    # (compensated), a compensated fold in Spark, the exact sum rounded once in
    # PostgreSQL; BigQuery and Snowflake add in their own order.
    if writer.dialect == "duckdb":
        total = f"FSUM({value}){where}"
    elif writer.dialect == "spark":
        total = _compensated_sum(f"LIST({value}){where}")
    elif writer.dialect == "postgres":
        total = _postgres_exact_sum(value, where)
    else:
        total = f"SUM({value}){where}"
    if node.func == "sum":
        return total
    if writer.dialect == "postgres":
        # PostgreSQL raises "underflow" where a nonzero quotient rounds to zero (IEEE gives
        # a signed zero: avg of [0.0, 5e-324]); such a sum is below 2**-1075 * count in size.
        ulps = f"((ABS({total}) * {_f(2.0**537)}) * {_f(2.0**537)})"  # the sum in units of 2**-1074
        tiny = f"ABS({total}) < {_f(1e-300)} AND {ulps} / {count} <= {_f(0.5)}"
        return f"(CASE WHEN {tiny} THEN {total} * {_f(0.0)} ELSE {total} / {count} END)"
    return f"({total} / {count})"


PG_NUMERIC = "pg_catalog.numeric"
"""PostgreSQL's unconstrained NUMERIC, spelled so that sqlglot keeps it (it
writes DuckDB's ``DECIMAL`` as ``DECIMAL(18, 3)``)."""


def _postgres_exact_sum(value: str, where: str) -> str:
    """The exact sum of a group's doubles rounded once (Python's ``math.fsum``,
    as the Arrow engine sums; docs/decisions.md, "Float sums") in PostgreSQL.

    A finite double is ``±m * 2**p`` (integers ``m < 2**53``, ``-1074 <= p <=
    971``), read exactly from its IEEE bits (``float8send``; ``x::numeric``
    keeps 15 digits only).  As a NUMERIC it is ``±m * 2**p``, or for ``p < 0``
    ``±m * 5**-p * 10**p`` (PostgreSQL's integer powers and products of
    numerics are exact; ``10**p`` comes from the text ``'1e<p>'``).  SUM of
    numerics is exact; NaN and ±Infinity are numerics too (+inf + -inf is NaN).
    The cast to double precision prints the numeric's digits and reads them
    with strtod: correctly rounded.  It raises beyond the double range, so a
    sum of magnitude ``2**1024 - 2**970`` or more (which rounds to infinity)
    is written as ±infinity; an exact zero is +0.0."""
    n = PG_NUMERIC
    x = f"CAST({value} AS DOUBLE)"
    bits = f"CAST(CAST(('x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND({x}), 'hex')) AS BIT(64)) AS BIGINT)"
    p = f"(GREATEST(({bits} >> 52) & 2047, 1) - 1075)"
    hidden = f"CASE WHEN ABS({x}) >= CAST({2.0**-1022!r} AS DOUBLE) THEN 4503599627370496 ELSE 0 END"  # normal
    m = f"(({bits} & 4503599627370495) + {hidden})"
    scale = (
        f"(CASE WHEN ABS({x}) < CAST({2.0**52!r} AS DOUBLE) "
        f"THEN POWER(CAST(5 AS {n}), -{p}) * CAST(('1e' || CAST({p} AS VARCHAR)) AS {n}) "
        f"ELSE POWER(CAST(2 AS {n}), {p}) END)"
    )
    special = f"{x} = CAST('NaN' AS DOUBLE) OR ABS({x}) = CAST('Infinity' AS DOUBLE)"
    exact = f"(CASE WHEN {special} THEN CAST({x} AS {n}) ELSE CAST(SIGN({x}) AS {n}) * {m} * {scale} END)"
    total = f"SUM({exact}){where}"
    limit = f"(POWER(CAST(2 AS {n}), 1024) - POWER(CAST(2 AS {n}), 970))"
    # ABS(NaN) is above every numeric: SIGN(NaN) * inf is NaN, SIGN(±Infinity) * inf is ±inf.
    return (
        f"(CASE WHEN ABS({total}) < {limit} THEN CAST({total} AS DOUBLE) "
        f"ELSE CAST(SIGN({total}) AS DOUBLE) * CAST('Infinity' AS DOUBLE) END)"
    )


def _compensated_sum(values: str) -> str:
    """Neumaier's compensated sum of a list of doubles as a fold (Spark's
    ``AGGREGATE`` over ``COLLECT_LIST``, which skips nulls): the running sum and
    the rounding errors it made, added at the end; a NaN or infinite running
    sum is the answer as it is (NaN, or the infinity)."""
    acc, v = "segql_acc", "segql_v"
    t = f"({acc}.s + {v})"
    error = f"CASE WHEN ABS({acc}.s) >= ABS({v}) THEN ({acc}.s - {t}) + {v} ELSE ({v} - {t}) + {acc}.s END"
    step = f"({acc}, {v}) -> {{'s': {t}, 'c': {acc}.c + {error}}}"
    finish = (
        f"{acc} -> CASE WHEN ISNAN({acc}.s) OR ABS({acc}.s) = CAST('Infinity' AS DOUBLE) "
        f"THEN {acc}.s ELSE {acc}.s + {acc}.c END"
    )
    return f"AGGREGATE({values}, {{'s': CAST(0 AS DOUBLE), 'c': CAST(0 AS DOUBLE)}}, {step}, {finish})"


# ---------------------------------------------------------------------- min / max
def _min_max_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    result: pa.Array = groups.min_max(node.func, mask, value)
    return result


def _min_max_sql(writer: Any, node: ast.Aggregate) -> str:
    value, where = writer.sql(node.value), _filter(writer, node)
    if _kind(node.value) == "float" and writer.dialect in NAN_NOT_GREATEST:
        # NaN is the greatest float: a MIN is NaN only when every value is, a MAX as soon as one is.
        nan = writer.is_nan(value)
        if node.func == "min":
            return f"COALESCE(MIN(CASE WHEN {nan} THEN NULL ELSE {value} END){where}, MIN({value}){where})"
        some_nan = f"MAX(CASE WHEN {nan} THEN 1 ELSE 0 END){where} = 1"
        return f"(CASE WHEN {some_nan} THEN CAST('NaN' AS DOUBLE) ELSE MAX({value}){where} END)"
    return f"{node.func.upper()}({value}){where}"


# -------------------------------------------------------------- first / last … by
def _first_last_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    result: pa.Array = groups.first_last(node.func, mask, value, by)
    return result


def _first_last_sql(writer: Any, node: ast.Aggregate, k: str, source: str, column: str) -> str:
    """``first``/``last(value by b where w)``: per key, the value of the first /
    last row in the order ``(b, value)`` ascending (LANGUAGE.md §3, "Ties"):
    rows with a null or NaN ``b``, or ``w`` not true, left out; -0.0 and 0.0 one
    ``b``; values with nulls after every value, NaN after every number, -0.0
    before 0.0 (by the sign ``ATAN2(v, -1)`` gives a zero) and strings by code
    point (``COLLATE "C"`` in PostgreSQL).  Every key is spelled out, so no
    dialect's own order of nulls or NaN matters: ``ROW_NUMBER()`` over it,
    ascending for ``first`` and descending for ``last``."""
    assert node.value is not None and node.by is not None
    by, value = writer.sql(node.by), writer.sql(node.value)
    by_kind, value_kind = _kind(node.by), _kind(node.value)
    kept = [f"{k} IS NOT NULL", f"{by} IS NOT NULL"]
    if by_kind == "float":
        kept.append(f"NOT {writer.is_nan(by)}")
        by = f"({by} + {_f(0.0)})"  # -0.0 and 0.0 tie, as they compare equal
    if node.where is not None:
        kept.append(f"COALESCE({writer.sql(node.where)}, FALSE)")
    b, v = '"__segql_by"', '"__segql_v"'
    keys = [_binary(writer, b, by_kind), f"(CASE WHEN {v} IS NULL THEN 1 ELSE 0 END)"]
    if value_kind == "float":
        keys.append(f"(CASE WHEN {writer.is_nan(v)} THEN 1 ELSE 0 END)")
    if value_kind == "list":
        keys.extend(_list_keys(writer, node, v))
    else:
        keys.append(_binary(writer, v, value_kind))
    if value_kind == "float":
        keys.append(f"(CASE WHEN {v} = {_f(0.0)} THEN ATAN2({v}, {_f(-1.0)}) ELSE {_f(0.0)} END)")
    # Nulls spelled as the keys' smallest (what BigQuery does by itself): no key holds one that matters.
    direction = "ASC NULLS FIRST" if node.func == "first" else "DESC NULLS LAST"
    order = ", ".join(f"{key} {direction}" for key in keys)
    rank = f"ROW_NUMBER() OVER (PARTITION BY {k} ORDER BY {order})"
    row = '"__segql_row"'
    rows = f"SELECT {k}, {by} AS {b}, {value} AS {v} FROM {source} WHERE {' AND '.join(kept)}"
    return (
        f"SELECT {k}, {v} AS {column} FROM (SELECT {k}, {v}, {rank} AS {row} FROM ({rows}) AS candidates) "
        f"AS ranked WHERE {row} = 1"
    )


def _list_keys(writer: Any, node: ast.Aggregate, v: str) -> list[str]:
    """Sort keys of a list value: element by element, a list before the lists
    it starts, null elements after every element (DuckDB's and PostgreSQL's
    own order of lists; Spark orders null elements first, so each element is
    paired with its null test), and, last, the list as text: among lists equal
    but for the sign of a zero element, ``-0`` is before ``0`` there."""
    assert node.value is not None and node.value.type is not None
    elem = node.value.type.elem.kind if node.value.type.elem is not None else None
    if writer.dialect in ("bigquery", "snowflake"):
        raise SqlError(
            f"{node.func}(… by …) of a list has no {writer.dialect} translation: it cannot order lists "
            "(element by element, null elements last) as segql does",
            span=node.value.span,
            hint="use another dialect, or the Arrow engine",
        )
    if writer.dialect == "spark":
        keys = [f"LIST_TRANSFORM({v}, x -> STRUCT_PACK(n := x IS NULL, x := x))"]
    else:
        keys = [_binary(writer, v, elem)]
    if elem == "float":
        keys.append(_binary(writer, f"CAST({v} AS VARCHAR)", "string"))
    return keys


def _binary(writer: Any, sql: str, kind: str | None) -> str:
    """A sort key; strings by code point (PostgreSQL orders by the database's collation)."""
    return f'({sql} COLLATE "C")' if kind == "string" and writer.dialect == "postgres" else sql


# ------------------------------------------------------------- median / quantile
def _q_of(node: ast.Aggregate) -> float:
    return float(node.args[0]) if node.func == "quantile" else 0.5


def _check_q(args: tuple[Any, ...]) -> list[str | None]:
    q = args[0]
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1:
        return [f"q must be a number from 0 to 1, e.g. 0.9, not {q!r}"]
    return [None]


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once (a fused multiply-add), elementwise, for
    finite ``a``, ``c`` and ``0 < b <= 1``: Dekker's exact product ``a * b =
    p + e`` and the three terms added exactly and rounded once
    (:func:`group_fsum`).  Magnitudes where the exact product cannot be had
    in doubles (beyond 2**995, or a product below 2**-969) are computed with
    exact fractions.  An exact zero is +0.0."""
    m = a.size
    if m == 0:
        return np.zeros(0)
    split = 134217729.0  # 2**27 + 1
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        p = a * b
        ta, tb = split * a, split * b
        ah = ta - (ta - a)
        al = a - ah
        bh = tb - (tb - b)
        bl = b - bh
        e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    exact = (np.abs(a) < 2.0**995) & ((np.abs(p) >= 2.0**-969) | (a == 0))
    terms = np.stack([p, np.where(exact, e, 0.0), c], axis=1).ravel()
    result = group_fsum(np.repeat(np.arange(m), 3), terms, m)
    for i in np.flatnonzero(~exact).tolist():  # rare: extreme magnitudes
        value = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        try:
            result[i] = float(value) + 0.0
        except OverflowError:
            result[i] = math.inf if value > 0 else -math.inf
    return result


def _quantile_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    """Per group, DuckDB's ``quantile_cont``: the values (as doubles, NaN the
    greatest) sorted, ``r = (count - 1) * q``, ``lo``/``hi`` the values at
    ``floor(r)``/``ceil(r)`` and, when they differ, ``lo * (1 - d) + hi * d``
    with ``d = r - floor(r)``, rounded once as DuckDB's fused multiply-add
    does; a zero is +0.0 (docs/decisions.md, "median and quantile")."""
    n = groups.n
    if pa.types.is_null(value.type):
        return pa.nulls(n, pa.float64())
    floats = to_float64(pa.chunked_array([value]))
    keep = groups.valid(value, mask)
    numbers = np.asarray(pc.fill_null(floats, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)[keep]
    pos = groups.positions[keep]
    order = np.lexsort((numbers, pos))  # by position, then value (NaN last)
    pos, numbers = pos[order], numbers[order]
    counts = np.bincount(pos, minlength=n)
    present = counts > 0
    starts = np.cumsum(counts) - counts
    rank = (counts[present] - 1).astype(np.float64) * _q_of(node)
    low, high = np.floor(rank), np.ceil(rank)
    d = rank - low
    lo = numbers[starts[present] + low.astype(np.int64)]
    hi = numbers[starts[present] + high.astype(np.int64)]
    result = lo.copy()
    mixed = low != high
    finite = mixed & np.isfinite(lo) & np.isfinite(hi)
    with np.errstate(invalid="ignore", over="ignore"):
        special = mixed & ~finite  # NaN or infinities: no rounding to care about
        result[special] = lo[special] * (1.0 - d[special]) + hi[special] * d[special]
        result[finite] = _fma(lo[finite], 1.0 - d[finite], hi[finite] * d[finite])
    out = np.zeros(n, dtype=np.float64)
    out[present] = result + 0.0
    return pa.array(out, mask=~present)


def _quantile_sql(writer: Any, node: ast.Aggregate, *query: str) -> str:
    """``QUANTILE_CONT`` in DuckDB (whose interpolation segql's is) and
    Snowflake; in PostgreSQL and Spark, whose own functions interpolate as
    ``lo + (hi - lo) * d`` (NaN from ``-inf`` and a number, ``inf`` when ``hi
    - lo`` overflows), a query of one row per key (:func:`_interpolated_sql`)."""
    if writer.dialect == "bigquery":
        raise SqlError(
            f"{node.func}(…) has no BigQuery translation: BigQuery's PERCENTILE_CONT is an analytic "
            "(window) function only, not an aggregate",
            span=node.span,
            hint="use another dialect, or the Arrow engine",
        )
    if query:
        return _interpolated_sql(writer, node, *query)
    value = f"CAST({writer.sql(node.value)} AS DOUBLE)"
    # + 0.0: a zero is +0.0 whatever the order of 0.0 and -0.0 among equal values.
    return f"(QUANTILE_CONT({value}, {_f(_q_of(node))}){_filter(writer, node)} + {_f(0.0)})"


def _interpolated_sql(writer: Any, node: ast.Aggregate, k: str, source: str, column: str) -> str:
    """PostgreSQL's and Spark's quantile, per key: the kept values numbered in
    order (NaN last in both), ``lo`` and ``hi`` picked by ``floor``/``ceil`` of
    ``(count - 1) * q``; where either is NaN or infinite the result is written
    out as DuckDB's ``lo * (1 - d) + hi * d`` gives it, where ``hi - lo`` could
    overflow it is that sum (a term below 1e-250 is 0 there, next to one above
    8e307: PostgreSQL raises on an underflowing product), and otherwise it is
    the dialect's own ``PERCENTILE_CONT`` (Spark: ``PERCENTILE``), computed
    without the overflow and underflow checks of PostgreSQL's SQL arithmetic."""
    assert node.value is not None
    value = f"CAST({writer.sql(node.value)} AS DOUBLE)"
    kept = [f"{k} IS NOT NULL", f"{value} IS NOT NULL"]
    if node.where is not None:
        kept.append(f"COALESCE({writer.sql(node.where)}, FALSE)")
    v, r, n, at, lo, hi, pc = (f'"__segql_{name}"' for name in ("v", "r", "n", "at", "lo", "hi", "pc"))
    rows = f"SELECT {k}, {value} AS {v} FROM {source} WHERE {' AND '.join(kept)}"
    numbered = (
        f"SELECT {k}, {v}, ROW_NUMBER() OVER (PARTITION BY {k} ORDER BY {v}) - 1 AS {r}, "
        f"COUNT(*) OVER (PARTITION BY {k}) AS {n} FROM ({rows}) AS kept"
    )
    rank = f"(CAST({n} - 1 AS DOUBLE) * {_f(_q_of(node))})"
    own = "PERCENTILE" if writer.dialect == "spark" else "QUANTILE_CONT"
    picked = (
        f"SELECT {k}, MAX({rank}) AS {at}, MAX(CASE WHEN {r} = FLOOR({rank}) THEN {v} END) AS {lo}, "
        f"MAX(CASE WHEN {r} = CEIL({rank}) THEN {v} END) AS {hi}, {own}({v}, {_f(_q_of(node))}) AS {pc} "
        f"FROM ({numbered}) AS numbered GROUP BY {k}"
    )
    d = f"({at} - FLOOR({at}))"
    inf, minus_inf, nan, zero = _f(math.inf), _f(-math.inf), _f(math.nan), _f(0.0)
    big, tiny = _f(8e307), _f(1e-250)
    low = f"(CASE WHEN ABS({lo}) < {tiny} THEN {zero} ELSE {lo} * ({_f(1.0)} - {d}) END)"
    high = f"(CASE WHEN ABS({hi}) < {tiny} THEN {zero} ELSE {hi} * {d} END)"
    result = (
        f"(CASE WHEN {d} = {zero} THEN {lo} "
        f"WHEN {writer.is_nan(lo)} OR {writer.is_nan(hi)} THEN {nan} "
        f"WHEN {lo} = {minus_inf} THEN (CASE WHEN {hi} = {inf} THEN {nan} ELSE {minus_inf} END) "
        f"WHEN {hi} = {inf} THEN {inf} "
        f"WHEN {lo} < {zero} AND {hi} > {zero} AND ({lo} < -{big} OR {hi} > {big}) THEN {low} + {high} "
        f"ELSE {pc} END + {zero})"
    )
    return f"SELECT {k}, {result} AS {column} FROM ({picked}) AS picked"


# ------------------------------------------------------------------------ stddev
def _stddev_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    """Per group, the sample standard deviation of the values as doubles
    (docs/decisions.md, "stddev"): null for fewer than two values, NaN when
    one is NaN or infinite, else ``sqrt(M2 / (n - 1))`` with the sum of
    squared deviations ``M2`` computed accurately: each group scaled by a
    power of two so that its largest magnitude is in [0.5, 1) (no square
    overflows or underflows; exact, but for parts below 2**-1074 of the
    largest magnitude, which are negligible), the mean from the correctly rounded sum
    (:func:`group_fsum`), then ``M2 = sum(d**2) - sum(d)**2 / n`` over the
    deviations ``d`` from that mean (the corrected two-pass algorithm, both
    sums correctly rounded), divided once and square-rooted once, and the
    scale undone.  Vectorised: NumPy reductions over the group positions."""
    n = groups.n
    if pa.types.is_null(value.type):
        return pa.nulls(n, pa.float64())
    floats = to_float64(pa.chunked_array([value]))
    keep = groups.valid(value, mask)
    x = np.asarray(pc.fill_null(floats, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)[keep]
    pos = groups.positions[keep]
    counts = np.bincount(pos, minlength=n)
    finite = np.isfinite(x)
    poisoned = np.bincount(pos[~finite], minlength=n) > 0  # a NaN or an infinity: NaN
    pos, x = pos[finite], x[finite]
    largest = np.zeros(n)
    np.maximum.at(largest, pos, np.abs(x))
    exponent = np.frexp(largest)[1].astype(np.int64)  # largest < 2**exponent (0 for 0.0)
    scaled = np.ldexp(x, (-exponent[pos]).astype(np.int32))  # |scaled| < 1
    m = np.maximum(counts, 1).astype(np.float64)
    mean = group_fsum(pos, scaled, n) / m
    d = scaled - mean[pos]
    s1 = group_fsum(pos, d, n)
    s2 = group_fsum(pos, d * d, n)
    with np.errstate(over="ignore"):
        m2 = np.maximum(s2 - s1 * s1 / m, 0.0)
        root = np.sqrt(m2 / np.maximum(counts - 1, 1))
        result = np.ldexp(root, exponent.astype(np.int32))  # exact, or ±inf/subnormal at the ends
    result = np.where(poisoned, np.nan, result)
    return pa.array(result, mask=counts < 2)


def _stddev_sql(writer: Any, node: ast.Aggregate) -> str:
    # DuckDB's STDDEV_SAMP; sqlglot writes STDDEV_SAMP for Spark, PostgreSQL,
    # BigQuery and Snowflake.  Fewer than two values give null in each.
    return f"STDDEV_SAMP(CAST({writer.sql(node.value)} AS DOUBLE)){_filter(writer, node)}"


# -------------------------------------------------------------------------- mode
_MODE_PACKED = 2**62
"""While a profile position and a value's rank fit in this many values (as
``position << bits | rank``), each pair is one int64 and the pairs are sorted
with ``np.sort`` (no permutation: several times faster than ``np.lexsort``);
beyond, ``np.lexsort``."""


def _mode_reducer(groups: Any, node: ast.Aggregate, mask: Any, value: Any, by: Any) -> pa.Array:
    """Per group, the most frequent non-null value kept by ``where``; ties:
    the smallest in segql's order (docs/decisions.md, "mode").  Floats: NaN one
    value, the greatest; -0.0 and 0.0 one value, given as +0.0.

    Vectorised: the kept values are dictionary-encoded (a hash, O(rows)), the
    distinct values sorted in segql's order (Arrow's sort: numbers by value,
    NaN after every number, strings and binaries by bytes, i.e. by code
    point, false before true), each row's (group, value rank) packed into the
    bits of one int64 and sorted; equal neighbours are runs whose lengths are
    the counts.  Runs come by group and, within one, by value: a group's mode
    is its first run of the greatest length."""
    n = groups.n
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if pa.types.is_dictionary(value.type):  # (the engine decodes; a dictionary may repeat a value)
        value = value.cast(value.type.value_type)
    result_type = value.type
    if pa.types.is_null(result_type):
        return pa.nulls(n, result_type)
    if pa.types.is_string_view(result_type):
        value = value.cast(pa.large_string())
    elif pa.types.is_binary_view(result_type):
        value = value.cast(pa.large_binary())
    keep = groups.valid(value, mask)
    if keep.all():
        rows, pos = value, np.asarray(groups.positions, dtype=np.int64)
    else:
        rows, pos = pc.filter(value, pa.array(keep)), np.asarray(groups.positions[keep], dtype=np.int64)
    if pa.types.is_floating(value.type):
        # One NaN and one zero (+0.0): Arrow's hash tells NaN payloads and zero signs apart.
        x = np.asarray(rows.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64) + 0.0
        x[np.isnan(x)] = np.nan
        rows = pa.array(x, pa.float64())
    encoded = pc.dictionary_encode(rows)
    distinct = encoded.dictionary
    u = len(distinct)
    if u == 0:
        return pa.nulls(n, result_type)
    order = np.asarray(pc.sort_indices(distinct).to_numpy(), dtype=np.int64)  # rank -> distinct value
    rank_of = np.empty(u, dtype=np.int64)
    rank_of[order] = np.arange(u, dtype=np.int64)
    ranks = rank_of[np.asarray(encoded.indices.to_numpy(zero_copy_only=False))]
    bits = max(u - 1, 1).bit_length()  # a rank takes this many bits
    if n < _MODE_PACKED >> bits:
        packed = np.sort((pos << bits) | ranks)
        new = np.empty(packed.size, dtype=bool)
        new[0] = True
        np.not_equal(packed[1:], packed[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        p, r = packed[starts] >> bits, packed[starts] & ((1 << bits) - 1)
    else:
        sort = np.lexsort((ranks, pos))
        pos, ranks = pos[sort], ranks[sort]
        new = np.empty(pos.size, dtype=bool)
        new[0] = True
        new[1:] = (pos[1:] != pos[:-1]) | (ranks[1:] != ranks[:-1])
        starts = np.flatnonzero(new)
        p, r = pos[starts], ranks[starts]
    counts = np.diff(np.append(starts, new.size))
    first = np.empty(p.size, dtype=bool)  # the first run of each group
    first[0] = True
    np.not_equal(p[1:], p[:-1], out=first[1:])
    most = np.maximum.reduceat(counts, np.flatnonzero(first))
    winners = np.flatnonzero(counts == most[np.cumsum(first) - 1])
    chosen = winners[np.concatenate(([True], p[winners][1:] != p[winners][:-1]))]  # the smallest of each group
    picked = np.zeros(n, dtype=np.int64)
    picked[p[chosen]] = order[r[chosen]]
    present = np.zeros(n, dtype=bool)
    present[p[chosen]] = True
    result = pc.take(distinct, pa.array(picked, mask=~present))
    return result if result.type == result_type else result.cast(result_type)


def _mode_sql(writer: Any, node: ast.Aggregate, k: str, source: str, column: str) -> str:
    """``mode(value where w)``: per key, the kept non-null values counted
    (``GROUP BY`` key and value), then ``ROW_NUMBER()`` over the count
    descending and the value ascending (strings by code point: ``COLLATE
    "C"`` in PostgreSQL), the first row.  Floats are grouped as a NaN flag and
    the number with -0.0 as 0.0 and NaN as null, so no dialect's equality or
    order of NaN and zeros matters; a NaN mode is written back as NaN."""
    assert node.value is not None
    value, kind = writer.sql(node.value), _kind(node.value)
    kept = [f"{k} IS NOT NULL", f"{value} IS NOT NULL"]
    if node.where is not None:
        kept.append(f"COALESCE({writer.sql(node.where)}, FALSE)")
    v, nan, count, row = '"__segql_v"', '"__segql_nan"', '"__segql_n"', '"__segql_row"'
    if kind == "float":
        x = f"CAST({value} AS DOUBLE)"
        is_nan = writer.is_nan(x)
        number = f"(CASE WHEN {is_nan} THEN NULL WHEN {x} = {_f(0.0)} THEN {_f(0.0)} ELSE {x} END)"
        selected = f"(CASE WHEN {is_nan} THEN 1 ELSE 0 END) AS {nan}, {number} AS {v}"
        grouped = f"{nan}, {v}"
        order = f"{count} DESC, {nan} ASC, {v} ASC"
        result = f"(CASE WHEN {nan} = 1 THEN CAST('NaN' AS DOUBLE) ELSE {v} END)"
    else:
        selected, grouped, result = f"{value} AS {v}", v, v
        order = f"{count} DESC, {_binary(writer, v, kind)} ASC"
    rows = f"SELECT {k}, {selected} FROM {source} WHERE {' AND '.join(kept)}"
    counted = f"SELECT {k}, {grouped}, COUNT(*) AS {count} FROM ({rows}) AS kept GROUP BY {k}, {grouped}"
    rank = f"ROW_NUMBER() OVER (PARTITION BY {k} ORDER BY {order})"
    ranked = f"SELECT {k}, {grouped}, {rank} AS {row} FROM ({counted}) AS counted"
    return f"SELECT {k}, {result} AS {column} FROM ({ranked}) AS ranked WHERE {row} = 1"


def _float_result(value: SType) -> SType:
    return FLOAT


def _sum_type(value: SType) -> SType:
    return value if not value.is_null else INT


QUANTILE_QUERIES = ("postgres", "spark")
"""The dialects whose ``median``/``quantile`` is a query of one row per key (:func:`_interpolated_sql`)."""

NEEDS_NUMBERS = "{func} needs numbers, but {value} is {type}"
"""The error of an aggregate over numbers given another type."""

BUILTIN_AGGREGATES: dict[str, dict[str, Any]] = {
    "count": dict(
        reducer=_count_reducer, sql=_count_sql, value="optional", returns="int", empty=0, empty_sql="0",
        doc="Rows (count(orders)) or non-null values (count(orders.x)).",
    ),
    "exists": dict(
        reducer=_exists_reducer, sql=_exists_sql, value="none", returns="bool", empty=False, empty_sql="FALSE",
        doc="Whether there is a row (with where: one that matches).",
    ),
    "count_distinct": dict(
        reducer=lambda g, node, mask, value, by: g.count_distinct(mask, value),
        sql=_count_distinct_sql, returns="int", empty=0, empty_sql="0",
        doc="Distinct non-null values (0.0 and -0.0 one value, every NaN one).",
    ),
    "sum": dict(
        reducer=_sum_avg_reducer, sql=_sum_avg_sql, accepts="number", type_rule=_sum_type, empty=0, empty_sql="0",
        refuse=NEEDS_NUMBERS,
        doc="Sum (floats: the exact sum rounded once).",
    ),
    "avg": dict(
        reducer=_sum_avg_reducer, sql=_sum_avg_sql, accepts="number", type_rule=_float_result,
        refuse=NEEDS_NUMBERS,
        doc="Mean: the exact sum rounded once, over the count.",
    ),
    "min": dict(
        reducer=_min_max_reducer, sql=_min_max_sql, accepts="orderable", refuse="{func} cannot order {value}",
        doc="Smallest value (NaN the greatest float).",
    ),
    "max": dict(
        reducer=_min_max_reducer, sql=_min_max_sql, accepts="orderable", refuse="{func} cannot order {value}",
        doc="Greatest value (NaN the greatest float).",
    ),
    "first": dict(
        reducer=_first_last_reducer, sql=_first_last_sql, by=True,
        doc="The value at the smallest 'by' (ties: the smallest value, null above every value).",
    ),
    "last": dict(
        reducer=_first_last_reducer, sql=_first_last_sql, by=True,
        doc="The value at the largest 'by' (ties: the largest value, null above every value).",
    ),
    "median": dict(
        reducer=_quantile_reducer, sql=_quantile_sql, query=QUANTILE_QUERIES, accepts="number",
        type_rule=_float_result, refuse=NEEDS_NUMBERS,
        doc="quantile(x, 0.5).",
    ),
    "quantile": dict(
        reducer=_quantile_reducer, sql=_quantile_sql, query=QUANTILE_QUERIES, accepts="number",
        type_rule=_float_result, params=("q",), check_args=_check_q, refuse=NEEDS_NUMBERS,
        doc="Continuous quantile, linear interpolation (DuckDB's quantile_cont); q a constant in [0, 1].",
    ),
    "stddev": dict(
        reducer=_stddev_reducer, sql=_stddev_sql, accepts="number", type_rule=_float_result,
        refuse=NEEDS_NUMBERS,
        doc="Sample standard deviation (DuckDB's stddev_samp): null below two values, NaN with a NaN or inf.",
    ),
    "mode": dict(
        reducer=_mode_reducer, sql=_mode_sql, query=True, accepts="orderable",
        refuse="{func} needs values it can order (numbers, strings, booleans, dates, timestamps, durations), "
        "not {value}",
        doc="The most frequent non-null value; ties: the smallest (NaN the greatest float, 0.0 and -0.0 one value).",
    ),
}  # fmt: skip
"""The built-in aggregates: the keyword arguments of their ``add_aggregate``."""


@hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    """segql's own aggregates, registered as a pack registers its own."""
    for name, declaration in BUILTIN_AGGREGATES.items():
        registry.add_aggregate(name, **declaration)


__all__ = ["BUILTIN_AGGREGATES", "segql_register_functions"]
