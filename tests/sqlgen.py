"""Random segql expressions, each paired with an independent DuckDB translation.

The differential tests (``test_differential_duckdb.py``) draw a random nullable
Arrow table and a random, well-typed segql expression.  The generator writes the
segql text and, at the same time, DuckDB SQL that means the same thing according
to LANGUAGE.md and docs/decisions.md.  DuckDB then runs that SQL over the same
Arrow table and serves as the oracle; segql's own output is never the expectation.

Conventions of the SQL side:

* every SQL fragment is fully parenthesised, so segql's precedence rules are
  checked against an unambiguous reading;
* integers are BIGINT (narrow Arrow integers are widened, as segql does), floats
  DOUBLE, strings VARCHAR, dates DATE;
* timestamps and durations are BIGINT nanoseconds since the epoch (UTC instants).
  DuckDB rounds nanoseconds when it converts TIMESTAMP_NS to microseconds and
  casts negative TIMESTAMP_NS values to the wrong day, so all calendar work goes
  through the macros of ``SQL_MACROS``, which floor explicitly;
* integer overflow: segql raises only for a row whose result needs the failing
  value (decisions.md 18a): a ``case`` branch only on the rows that take it, an
  ``if``/``coalesce`` argument likewise, an ``and``/``or`` operand only on the
  rows the other operands leave undecided (an error stands when every operand
  raises somewhere).  Each expression carries ``checks``: the SQL of every
  sub-expression whose own operation can overflow, wrapped in a lazy ``CASE``
  that evaluates it only on the rows needing it; the tests evaluate them in
  DuckDB one column each, and segql must raise exactly when one of them does.
  Where two operands of one ``and``/``or`` can both overflow, whether segql
  raises depends on which rows each would decide: such an expression is
  ``ambiguous`` (either outcome is accepted, the values are compared when
  neither side raises).  The SQL of an ``and``/``or`` with one operand that can
  overflow lets the other decide first (DuckDB's own AND/OR evaluate every
  operand of every row);
* float sub-expressions are kept below 1e300, so no infinity or NaN appears
  (segql's NaN ordering deliberately differs from DuckDB's, decisions.md #14).
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

import pyarrow as pa
from hypothesis import strategies as st

T = TypeVar("T")


class PrettyPrinter(Protocol):
    def text(self, obj: str) -> None: ...


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR
FLOAT_LIMIT = 1e300
UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

SQL_MACROS = (
    # Floor division by a positive constant (DuckDB's // truncates towards zero).
    "CREATE MACRO seg_fdiv(a, b) AS (a // b) - (CASE WHEN (a % b) < 0 THEN 1 ELSE 0 END)",
    # Epoch nanoseconds -> TIMESTAMP (microseconds, floored).
    "CREATE MACRO seg_ts(n) AS make_timestamp(seg_fdiv(n, 1000))",
    # Epoch nanoseconds -> the instant's UTC date.
    "CREATE MACRO seg_date(n) AS DATE '1970-01-01' + CAST(seg_fdiv(n, 86400000000000) AS INTEGER)",
    # Epoch nanoseconds + k calendar months (day clamped to the month's end), sub-microseconds kept.
    "CREATE MACRO seg_add_months(n, k) AS epoch_ns(seg_ts(n) + to_months(k)) + (n - seg_fdiv(n, 1000) * 1000)",
)

# Precedence levels of segql (LANGUAGE.md §2 and grammar/segql.lark), loosest first.
OR, AND, NOT, PRED, SUM, PRODUCT, UNARY, ATOM = range(8)


class Kind(enum.Enum):
    INT = enum.auto()
    FLOAT = enum.auto()
    STR = enum.auto()
    BOOL = enum.auto()
    DATE = enum.auto()
    TS = enum.auto()
    DUR = enum.auto()


SQL_TYPE = {
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.STR: "VARCHAR",
    Kind.BOOL: "BOOLEAN",
    Kind.DATE: "DATE",
    Kind.TS: "BIGINT",
    Kind.DUR: "BIGINT",
}


@dataclass(frozen=True)
class Expr:
    """One generated expression: segql text, SQL text and what is known about its values."""

    seg: str
    sql: str
    kind: Kind
    prec: int = ATOM
    fbound: float = 0.0
    """FLOAT: |value| <= fbound (an INT used as a float: 2**63)."""
    checks: tuple[str, ...] = ()
    """SQL of the sub-expressions whose own operation can overflow (integer + - *
    negate abs round), each evaluated (in a lazy CASE) only on the rows whose result needs it."""
    ambiguous: bool = False
    """Whether segql may raise or not: two operands of one and/or can overflow."""
    literal: tuple[object, ...] = ()
    """``(python value,)`` when the text is a plain literal."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    arrow_type: pa.DataType
    fbound: float = 0.0
    junk: str = ""
    """"min"/"max": the storage type's extreme value lies under the null slots."""

    @property
    def sql(self) -> str:
        quoted = '"' + self.name.replace('"', '""') + '"'
        if self.kind is Kind.INT:
            return f"CAST({quoted} AS BIGINT)"
        if self.kind is Kind.TS:
            return f"epoch_ns({quoted})"
        return quoted


def kind_of(arrow_type: pa.DataType) -> Kind:
    if pa.types.is_dictionary(arrow_type):
        return kind_of(arrow_type.value_type)
    if pa.types.is_integer(arrow_type):
        return Kind.INT
    if pa.types.is_floating(arrow_type):
        return Kind.FLOAT
    if pa.types.is_boolean(arrow_type):
        return Kind.BOOL
    if pa.types.is_date32(arrow_type):
        return Kind.DATE
    if pa.types.is_timestamp(arrow_type):
        return Kind.TS
    return Kind.STR


@dataclass(frozen=True)
class GeneratedTable:
    table: pa.Table
    columns: tuple[Column, ...]

    @classmethod
    def of(cls, table: pa.Table) -> GeneratedTable:
        """A hand-made table, for fixed examples (no expressions are drawn over it)."""
        return cls(table, tuple(Column(f.name, kind_of(f.type), f.type) for f in table.schema))

    def describe(self) -> str:
        sizes = [batch.num_rows for batch in self.table.to_batches()]
        lines = [f"{self.table.num_rows} rows in chunks {sizes}"]
        for col in self.columns:
            under_nulls = f" ({col.junk} under nulls)" if col.junk else ""
            lines.append(f"  {col.name!r} {col.arrow_type}{under_nulls}: {self.table.column(col.name).to_pylist()!r}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Scenario:
    """A table, an ``as_of`` and one expression with its parameters."""

    as_of: dt.datetime
    data: GeneratedTable
    expr: Expr
    params: dict[str, object] = field(default_factory=dict)

    @property
    def table(self) -> pa.Table:
        return self.data.table

    def report(self) -> str:
        return (
            f"segql:  {self.expr.seg}\n"
            f"SQL:    {self.expr.sql}\n"
            f"kind:   {self.expr.kind.name}\n"
            f"may overflow (checked in DuckDB one by one): {list(self.expr.checks)!r}\n"
            f"as_of:  {self.as_of.isoformat()}\n"
            f"params: {self.params!r}\n"
            f"table:  {self.data.describe()}"
        )

    def __repr__(self) -> str:
        return "Scenario(\n" + self.report() + "\n)"

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        """How Hypothesis prints a falsifying example."""
        printer.text(repr(self))


# ---------------------------------------------------------------- data pools

AS_OF_POOL = (
    dt.datetime(2024, 3, 31, 13, 45, 12, 345678, tzinfo=dt.UTC),
    dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC),
    dt.datetime(2023, 10, 29, 1, 30, tzinfo=dt.UTC),
)
FIXED_INSTANTS = (
    dt.datetime(2024, 12, 1),
    dt.datetime(2024, 12, 31, 23, 59, 59),
    dt.datetime(2025, 1, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(1970, 1, 1),
    dt.datetime(2024, 2, 29, 12),
    dt.datetime(2023, 3, 26, 1),
    dt.datetime(2000, 1, 31, 6, 30),
)
MIN_INSTANT, MAX_INSTANT = dt.datetime(1950, 1, 1), dt.datetime(2080, 12, 31)
EPOCH = dt.datetime(1970, 1, 1)

INT_EDGES = (INT64_MIN, INT64_MAX, 2**62, -(2**62), 2**31 - 1, -(2**31), 3_037_000_499, 10**18, 65_535, 127, -128)
INT_RANGES = {
    pa.int64(): (INT64_MIN, INT64_MAX),
    pa.int8(): (-128, 127),
    pa.int32(): (-(2**31), 2**31 - 1),
    pa.uint16(): (0, 65_535),
}
FLOAT_POOL = (0.0, -0.0, 0.1, 2.675, -2.5, 0.125, 1.5, 1e6, -1e6, 1e-3, 123.456)
STRING_POOL = ("PL", "pl", "DE", "", " ", "a", "ab", "abc", "Warszawa", "warszawa ", " Łódź", "ąę", "x@gmail.com", "A1")
ALPHABET = "aAbBzZ019 _@.-ąĄéÉŁł\t\n"
SUBSTRINGS = ("", "a", "A", "PL", "ą", " ", "@gmail.com", "ab", "Ł", "\t", "1")
REGEXES = (
    "^a",
    "a$",
    "^$",
    "a.b",
    "[ąę]",
    r"\d",
    r"\s",
    "(?i)pl",
    "^[a-z]+@",
    "b|c",
    "^.{3}$",
    "Ł",
    r"\.com$",
    r"^\w+$",
)
# Characters segql's trim removes that can occur in generated strings.
SQL_WHITESPACE = "(' ' || chr(9) || chr(10))"

ARROW_TYPES: dict[Kind, tuple[pa.DataType, ...]] = {
    Kind.INT: (pa.int64(), pa.int64(), pa.int8(), pa.int32(), pa.uint16()),
    Kind.FLOAT: (pa.float64(),),
    Kind.STR: (pa.string(), pa.dictionary(pa.int32(), pa.string()), pa.large_string()),
    Kind.BOOL: (pa.bool_(),),
    Kind.DATE: (pa.date32(),),
    Kind.TS: tuple(pa.timestamp(unit, tz=tz) for unit in UNIT_NS for tz in (None, "UTC", "Europe/Warsaw")),
}
SLOTS = (
    ("age", Kind.INT),
    ("Visits", Kind.INT),
    ("score", Kind.FLOAT),
    ("amount spent", Kind.FLOAT),
    ("country", Kind.STR),
    ("city", Kind.STR),
    ("vip", Kind.BOOL),
    ("signup_date", Kind.DATE),
    ("last_order_ts", Kind.TS),
    ("updated at", Kind.TS),
)


def add_months(value: dt.datetime, months: int) -> dt.datetime:
    """Calendar months, day clamped to the month's end (only used to pick data)."""
    total = value.year * 12 + value.month - 1 + months
    year, month = divmod(total, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def to_ns(instant: dt.datetime) -> int:
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


@functools.cache
def interesting_instants(as_of: dt.datetime) -> tuple[dt.datetime, ...]:
    """Naive UTC instants near the boundaries the expressions test."""
    now = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    found = [now, today]
    for base in (now, today):
        found += [base - dt.timedelta(days=k) for k in (1, 7, 14, 30, 90, 180, 365)]
        found += [add_months(base, k) for k in (-1, -6, -12, 1)]
    return tuple(found) + FIXED_INSTANTS


# ------------------------------------------------------------------- tables


@functools.cache
def _sampled(options: Sequence[T]) -> st.SearchStrategy[T]:
    """One strategy per set of options (building strategies is not free)."""
    return st.sampled_from(options)


@functools.cache
def _int_values(arrow_type: pa.DataType) -> st.SearchStrategy[int]:
    lo, hi = INT_RANGES[arrow_type]
    return st.one_of(
        st.integers(max(lo, -5), min(hi, 5)),
        st.integers(max(lo, -1000), min(hi, 1000)),
        st.integers(lo, hi),
        st.sampled_from([e for e in INT_EDGES if lo <= e <= hi]),
    )


# Zero or at least 1e-3 in size, so that dividing by a float leaf stays finite.
FLOATS = st.one_of(
    st.integers(-8000, 8000).map(lambda k: k / 8),
    st.sampled_from(FLOAT_POOL),
    st.floats(1e-3, 1e6),
    st.floats(-1e6, -1e-3),
)
STRINGS = st.one_of(st.sampled_from(STRING_POOL), st.text(ALPHABET, max_size=6))


@functools.cache
def _dates(as_of: dt.datetime) -> st.SearchStrategy[dt.date]:
    near = sorted({i.date() for i in interesting_instants(as_of)})
    return st.one_of(st.sampled_from(near), st.dates(MIN_INSTANT.date(), MAX_INSTANT.date()))


@functools.cache
def _instants(as_of: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    return st.one_of(st.sampled_from(interesting_instants(as_of)), st.datetimes(MIN_INSTANT, MAX_INSTANT))


@functools.cache
def _timestamp_counts(unit: str, as_of: dt.datetime) -> st.SearchStrategy[int]:
    """Values of a timestamp column, as counts of ``unit`` since the epoch."""
    per = UNIT_NS[unit]
    bases = sorted({to_ns(i) for i in interesting_instants(as_of)})
    day = NS_PER_DAY // per
    offsets = st.one_of(st.sampled_from((0, 1, -1)), st.integers(-2 * day, 2 * day))
    near = st.tuples(st.sampled_from(bases), offsets).map(lambda t: t[0] // per + t[1])
    return st.one_of(near, st.integers(to_ns(MIN_INSTANT) // per, to_ns(MAX_INSTANT) // per))


@functools.cache
def _values(kind: Kind, arrow_type: pa.DataType, as_of: dt.datetime) -> st.SearchStrategy[object]:
    if kind is Kind.INT:
        return _int_values(arrow_type)
    if kind is Kind.FLOAT:
        return FLOATS
    if kind is Kind.STR:
        return STRINGS
    if kind is Kind.BOOL:
        return st.booleans()
    if kind is Kind.DATE:
        return _dates(as_of)
    return _timestamp_counts(arrow_type.unit, as_of)


@functools.cache
def _cells(kind: Kind, arrow_type: pa.DataType, as_of: dt.datetime, nulls: int) -> st.SearchStrategy[object]:
    """Values of a column, null ``nulls`` times out of 8."""
    return st.one_of([st.none()] * nulls + [_values(kind, arrow_type, as_of)] * (8 - nulls))


def _storage(arrow_type: pa.DataType) -> pa.DataType | None:
    """The integer type an Arrow type is stored as (None: not an integer-backed type)."""
    if pa.types.is_integer(arrow_type):
        return arrow_type
    if pa.types.is_timestamp(arrow_type):
        return pa.int64()
    if pa.types.is_date32(arrow_type):
        return pa.int32()
    return None


def arrow_array(values: list[object], arrow_type: pa.DataType, junk: str = "") -> pa.Array:
    """An Arrow array of ``values``; ``junk`` ("min" or "max") puts the extreme value of
    the storage type under the null slots (Arrow leaves those values unspecified)."""
    if pa.types.is_dictionary(arrow_type):
        return pa.array(values, arrow_type.value_type).dictionary_encode()
    array = pa.array(values, arrow_type)
    storage = _storage(arrow_type)
    if not junk or storage is None or not array.null_count:
        return array
    lo, hi = INT_RANGES[storage]
    raw = array.cast(storage).fill_null(lo if junk == "min" else hi)
    return pa.Array.from_buffers(arrow_type, len(array), [array.buffers()[0], raw.buffers()[1]], array.null_count)


@st.composite
def generated_tables(draw: st.DrawFn, as_of: dt.datetime) -> GeneratedTable:
    """1..40 rows, every column of SLOTS nullable, sometimes split into chunks
    (each chunk of a dictionary column has its own dictionary; chunks may be empty),
    sometimes with extreme values under the null slots of integer-backed columns."""
    n = draw(st.integers(1, 40))
    columns: list[Column] = []
    values: list[list[object]] = []
    for name, kind in SLOTS:
        arrow_type = draw(_sampled(ARROW_TYPES[kind]))
        nulls = draw(_sampled((0, 0, 1, 1, 1, 2, 2, 3, 4, 8)))  # null cells, out of 8
        column_values = draw(st.lists(_cells(kind, arrow_type, as_of, nulls), min_size=n, max_size=n))
        floats = [v for v in column_values if isinstance(v, float)]
        junk = draw(_sampled(("", "", "min", "max"))) if _storage(arrow_type) is not None else ""
        columns.append(Column(name, kind, arrow_type, fbound=max(map(abs, floats), default=0.0), junk=junk))
        values.append(column_values)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    bounds = [0, *cuts, n]
    schema = pa.schema([pa.field(c.name, c.arrow_type) for c in columns])
    batches = [
        pa.RecordBatch.from_arrays(
            [arrow_array(v[start:stop], c.arrow_type, c.junk) for c, v in zip(columns, values)], schema=schema
        )
        for start, stop in itertools.pairwise(bounds)
    ]
    return GeneratedTable(pa.Table.from_batches(batches, schema=schema), tuple(columns))


# -------------------------------------------------------------- rendering


def paren(e: Expr, min_prec: int) -> str:
    """segql text of ``e`` as an operand that must bind at least as tightly as ``min_prec``."""
    return e.seg if e.prec >= min_prec else f"({e.seg})"


def as_double(e: Expr) -> str:
    return e.sql if e.kind is Kind.FLOAT else f"CAST({e.sql} AS DOUBLE)"


def as_ns(e: Expr) -> str:
    """A DATE or TS expression as epoch nanoseconds (a date is its UTC midnight)."""
    return f"epoch_ns({e.sql})" if e.kind is Kind.DATE else e.sql


def as_date(e: Expr) -> str:
    return f"seg_date({e.sql})" if e.kind is Kind.TS else e.sql


def promote(e: Expr, kind: Kind) -> str:
    """SQL of ``e`` converted to ``kind`` the way segql unifies branch types."""
    if kind is Kind.FLOAT:
        return as_double(e)
    if kind is Kind.TS:
        return as_ns(e)
    return e.sql


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def coerce_pair(a: Expr, b: Expr) -> tuple[str, str]:
    """SQL operands of a segql comparison: int vs float compares as float, a date
    vs a timestamp compares UTC days (LANGUAGE.md §2, decisions.md #7, #13)."""
    kinds = {a.kind, b.kind}
    if kinds == {Kind.INT, Kind.FLOAT}:
        return as_double(a), as_double(b)
    if kinds == {Kind.DATE, Kind.TS}:
        return as_date(a), as_date(b)
    return a.sql, b.sql


SQL_OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def compare_sql(a: Expr, op: str, b: Expr) -> str:
    left, right = coerce_pair(a, b)
    return f"({left} {SQL_OPS[op]} {right})"


def node(
    seg: str,
    sql: str,
    kind: Kind,
    prec: int,
    children: Sequence[Expr],
    fbound: float = 0.0,
    overflows: bool = False,
) -> Expr:
    """An expression built from ``children``; ``overflows``: its own operation can overflow."""
    checks = [c for child in children for c in child.checks] + ([sql] if overflows else [])
    ambiguous = any(child.ambiguous for child in children)
    return Expr(seg, sql, kind, prec, fbound=fbound, checks=tuple(dict.fromkeys(checks)), ambiguous=ambiguous)


def needed_when(e: Expr, skip: Sequence[str], take: str | None = None) -> Expr:
    """``e`` with its checks evaluated only on the rows where none of the
    conditions ``skip`` is true and (with ``take``) ``take`` is: the rows a
    ``case`` branch reaches (DuckDB's CASE is lazy, as segql's is)."""
    if not e.checks or (not skip and take is None):
        return e
    whens = "".join(f"WHEN {c} THEN NULL " for c in skip)
    wrap = (
        (lambda c: f"(CASE {whens}WHEN {take} THEN {c} END)")
        if take is not None
        else (lambda c: f"(CASE {whens}ELSE {c} END)")
    )
    return replace(e, checks=tuple(wrap(c) for c in e.checks))


def lazy_junction(word: str, a: Expr, b: Expr) -> tuple[str, tuple[Expr, Expr], bool]:
    """SQL of ``a AND b`` / ``a OR b`` in which an operand is needed only on the
    rows the other leaves undecided (decisions.md 18a), the operands as the
    checks should see them, and whether the outcome is ambiguous (both can overflow)."""
    plain = f"({a.sql} {word} {b.sql})"
    decided = "FALSE" if word == "AND" else "TRUE"
    if a.checks and b.checks:
        return plain, (a, b), True
    if a.checks:  # b cannot raise: it decides first
        return (
            f"(CASE WHEN ({b.sql}) IS {decided} THEN {decided} ELSE {plain} END)",
            (
                needed_when(a, [f"({b.sql}) IS {decided}"]),
                b,
            ),
            False,
        )
    if b.checks:
        return (
            f"(CASE WHEN ({a.sql}) IS {decided} THEN {decided} ELSE {plain} END)",
            (
                a,
                needed_when(b, [f"({a.sql}) IS {decided}"]),
            ),
            False,
        )
    return plain, (a, b), False


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str  # d w h m y

    @property
    def months(self) -> int:
        return self.count * (12 if self.unit == "y" else 1) if self.unit in "my" else 0

    @property
    def ns(self) -> int:
        return self.count * {"d": NS_PER_DAY, "w": 7 * NS_PER_DAY, "h": NS_PER_HOUR}.get(self.unit, 0)

    @property
    def text(self) -> str:
        return f"{self.count}{self.unit}"


def shift_ns_sql(base: str, sign: str, d: Duration) -> str:
    """Epoch-nanosecond SQL of ``base ± d`` (calendar months clamp like DuckDB's intervals)."""
    if d.months:
        return f"seg_add_months({base}, {sign}{d.months})"
    return f"({base} {sign} {d.ns})"


# -------------------------------------------------------------- generator


INT_FBOUND = 2.0**63
FAMILIES = ("numeric", "numeric", "string", "bool", "temporal", "temporal", "duration")
BOOL_FORMS = (
    *("leaf", "compare", "compare", "compare", "between", "in", "in", "is_null", "is_bool"),
    *("and", "and", "or", "or", "not", "string", "string", "generic"),
)


class ExprGen:
    """Draws typed segql expressions together with their SQL translation."""

    BUDGET = 40
    """Expressions drawn per scenario before only leaves are drawn."""

    def __init__(self, draw: st.DrawFn, columns: Sequence[Column], as_of: dt.datetime) -> None:
        self._draw = draw
        self._columns = {kind: tuple(c for c in columns if c.kind is kind) for kind in Kind}
        self._as_of = as_of
        naive = as_of.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        self._now_sql = f"epoch_ns(TIMESTAMP '{naive}')"
        self._today_sql = f"epoch_ns(date_trunc('day', TIMESTAMP '{naive}'))"
        self._budget = self.BUDGET
        self.params: dict[str, object] = {}

    # ------------------------------------------------------------ helpers
    def pick(self, options: Sequence[T]) -> T:
        """One of ``options`` (a tuple, range or str: cached by value)."""
        strategy: st.SearchStrategy[T] = _sampled(options)
        return self._draw(strategy)

    def chance(self, one_in: int) -> bool:
        return self.pick(range(one_in)) == 0

    def kw(self, word: str) -> str:
        """A keyword or function name in a random letter case."""
        return self.pick((word, word.upper(), word.capitalize()))

    def bind_param(self, value: object) -> str:
        """``$name``, bound at evaluation to ``value``; names match case-insensitively."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + self.pick((name, name.upper()))

    def expr(self, kind: Kind, depth: int) -> Expr:
        self._budget -= 1
        if self._budget <= 0:
            depth = 0
        make = {
            Kind.INT: self._int,
            Kind.FLOAT: self._float,
            Kind.STR: self._str,
            Kind.BOOL: self._bool,
            Kind.DATE: self._date,
            Kind.TS: self._ts,
            Kind.DUR: self._dur,
        }[kind]
        return make(depth)

    def call(self, name: str, args: Sequence[Expr], sql: str, kind: Kind, fbound: float = 0.0) -> Expr:
        text = f"{self.kw(name)}({', '.join(a.seg for a in args)})"
        return node(text, sql, kind, ATOM, args, fbound=fbound)

    def negate(self, a: Expr, sql: str, kind: Kind, overflows: bool = False) -> Expr:
        inner = paren(a, UNARY)
        if inner[0] in "-+":  # `--` would start a comment (decisions.md #3)
            inner = f"({a.seg})"
        return node("-" + inner, sql, kind, UNARY, [a], fbound=a.fbound, overflows=overflows)

    # ------------------------------------------------------------- leaves
    def column(self, kind: Kind) -> Expr | None:
        if not self._columns[kind]:
            return None
        col = self.pick(self._columns[kind])
        name = self.pick((col.name, col.name.lower(), col.name.upper()))
        if not name.isidentifier() or self.chance(3):
            name = f"`{name}`"
        return Expr(name, col.sql, kind, fbound=INT_FBOUND if kind is Kind.INT else col.fbound)

    def _leaf(self, kind: Kind, literal: Callable[[], Expr]) -> Expr:
        """A column of ``kind`` (mostly) or a literal."""
        col = self.column(kind)
        return col if col is not None and not self.chance(4) else literal()

    def _literal(self, value: object, render: Callable[[], str], sql: str, kind: Kind, fbound: float = 0.0) -> Expr:
        """A constant: mostly its literal text, now and then a ``$parameter`` bound to ``value``."""
        if self.chance(8):
            return Expr(self.bind_param(value), sql, kind, fbound=fbound)
        text = render()
        return Expr(text, sql, kind, UNARY if text[0] == "-" else ATOM, fbound=fbound, literal=(value,))

    def null(self, kind: Kind) -> Expr:
        return Expr(self.kw("null"), f"CAST(NULL AS {SQL_TYPE[kind]})", kind, literal=(None,))

    def int_literal(self) -> Expr:
        v = self._draw(_int_values(pa.int64()))
        return self._literal(v, lambda: self.pick((str(v), f"{v:_}")), f"CAST({v} AS BIGINT)", Kind.INT, INT_FBOUND)

    def float_literal(self) -> Expr:
        v = self._draw(FLOATS)
        return self._literal(v, lambda: repr(v), f"CAST('{v!r}' AS DOUBLE)", Kind.FLOAT, abs(v))

    def bool_literal(self) -> Expr:
        value = self.pick((True, False, True, False, None))
        if value is None:
            return self.null(Kind.BOOL)
        return Expr(self.kw(str(value).lower()), str(value).upper(), Kind.BOOL, literal=(value,))

    def segql_string(self, value: str) -> str:
        """A segql string literal: SQL-style single quotes or escaped double quotes (decisions.md #2)."""
        if self.chance(2):
            return "'" + value.replace("'", "''") + "'"
        kept_backslash = self.chance(2)
        out = []
        for i, ch in enumerate(value):
            nxt = value[i + 1 : i + 2]
            if ch == "\\":
                out.append("\\" if kept_backslash and nxt and nxt not in "\\\"'ntr0uU" else "\\\\")
            elif ch == '"':
                out.append(self.pick(('\\"', '""')))
            elif ch in "\n\t":
                out.append(self.pick((ch, "\\n" if ch == "\n" else "\\t")))
            elif ord(ch) > 127 and self.chance(2):
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    def str_literal(self, pool: st.SearchStrategy[str] = STRINGS) -> Expr:
        v = self._draw(pool)
        return self._literal(v, lambda: self.segql_string(v), sql_string(v), Kind.STR)

    def date_literal(self) -> Expr:
        v = self._draw(_dates(self._as_of))
        return self._literal(v, v.isoformat, f"DATE '{v.isoformat()}'", Kind.DATE)

    def ts_literal(self) -> Expr:
        instant = self._draw(_instants(self._as_of))
        sql = f"epoch_ns(TIMESTAMP '{instant.isoformat(sep=' ', timespec='microseconds')}')"
        return self._literal(instant.replace(tzinfo=dt.UTC), lambda: self.timestamp_text(instant), sql, Kind.TS)

    def timestamp_text(self, instant: dt.datetime) -> str:
        """ISO 8601 text of a naive UTC instant: naive (= UTC), with Z, or with an offset."""
        offset = self.pick((None, dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(hours=-5, minutes=-30)))
        local = instant + (offset or dt.timedelta(0))
        text = local.strftime("%Y-%m-%dT%H:%M")
        if local.second or local.microsecond or self.chance(2):
            text += f":{local.second:02d}"
        if local.microsecond:
            text += "." + self.pick((f"{local.microsecond:06d}", f"{local.microsecond:06d}".rstrip("0")))
        if offset is None:
            return text
        minutes = int(offset.total_seconds()) // 60
        if not minutes:
            return text + self.pick(("Z", "+00:00"))
        sign = "+" if minutes >= 0 else "-"
        return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    def duration(self, units: str = "ddwhmy") -> Duration:
        unit = self.pick(units)
        counts = {"d": (0, 1, 7, 30, 90, 180, 365), "w": (1, 2, 8), "h": (1, 12, 36), "m": (1, 6, 13), "y": (1, 2)}
        return Duration(self.pick(counts[unit]), unit)

    def relative(self) -> Expr:
        """A signed duration where an instant is expected: ``as_of ± duration`` (decisions.md #5)."""
        sign, d = self.pick(("-", "+")), self.duration()
        return Expr(f"{sign}{d.text}", shift_ns_sql(self._now_sql, sign, d), Kind.TS, UNARY)

    def instant_operand(self, depth: int) -> Expr:
        """A timestamp, or a signed duration that stands for one."""
        return self.relative() if self.chance(3) else self.expr(Kind.TS, depth)

    def temporal_operand(self, depth: int) -> Expr:
        return self.expr(Kind.DATE, depth) if self.chance(2) else self.instant_operand(depth)

    # ------------------------------------------------------------ integers
    def _int(self, depth: int) -> Expr:
        if depth <= 0:
            return self._leaf(Kind.INT, self.int_literal)
        choice = self.pick(
            ("leaf", "arith", "arith", "arith", "negate", "abs", "round", "floor", "length", "part", "days", "generic")
        )
        if choice == "arith":
            op = self.pick(("+", "-", "*", "%"))
            a, b = self.expr(Kind.INT, depth - 1), self.expr(Kind.INT, depth - 1)
            prec = SUM if op in "+-" else PRODUCT
            if op == "%":
                # Remainder with the dividend's sign, null for a zero divisor; HUGEINT
                # because INT64_MIN % -1 is 0, not an overflow.
                sql = f"CAST((CAST({a.sql} AS HUGEINT) % NULLIF(CAST({b.sql} AS HUGEINT), 0)) AS BIGINT)"
            else:
                sql = f"({a.sql} {op} {b.sql})"
            text = f"{paren(a, prec)} {op} {paren(b, prec + 1)}"
            return node(text, sql, Kind.INT, prec, [a, b], INT_FBOUND, overflows=op != "%")
        if choice == "negate":
            a = self.expr(Kind.INT, depth - 1)
            if a.literal == (INT64_MIN,):
                # `-(-9223372036854775808)` folds to a literal out of range: a compile-time error (decisions.md #4).
                return a
            return self.negate(a, f"(CAST(0 AS BIGINT) - {a.sql})", Kind.INT, overflows=True)
        if choice == "abs":
            a = self.expr(Kind.INT, depth - 1)
            return node(f"{self.kw('abs')}({a.seg})", f"abs({a.sql})", Kind.INT, ATOM, [a], INT_FBOUND, overflows=True)
        if choice == "round":
            # Half away from zero; an int stays an int (decisions.md #15).
            a = self.expr(Kind.INT, depth - 1)
            digits = self.pick((None, 0, 2, -1, -2, -3))
            args = a.seg if digits is None else f"{a.seg}, {digits}"
            sql = f"round({a.sql}, {digits or 0})"
            return node(f"{self.kw('round')}({args})", sql, Kind.INT, ATOM, [a], INT_FBOUND, overflows=bool(digits))
        if choice == "floor":
            a = self.expr(Kind.INT, depth - 1)
            return self.call(self.pick(("floor", "ceil")), [a], a.sql, Kind.INT, INT_FBOUND)
        if choice == "length":
            s = self.expr(Kind.STR, depth - 1)
            return self.call("length", [s], f"length({s.sql})", Kind.INT, INT_FBOUND)
        if choice == "part":
            # Calendar parts in UTC (decisions.md #8); ISO day of week.
            name = self.pick(("year", "month", "day", "hour", "day_of_week"))
            t = self.temporal_operand(depth - 1)
            sql_name = "isodow" if name == "day_of_week" else name
            if t.kind is Kind.TS:
                arg = f"seg_ts({t.sql})"
            elif name == "hour":
                arg = f"CAST({t.sql} AS TIMESTAMP)"
            else:
                arg = t.sql
            return self.call(name, [t], f"CAST({sql_name}({arg}) AS BIGINT)", Kind.INT, INT_FBOUND)
        if choice == "days":
            # days_since(t) = floor((as_of - t) / 1 day), a date counting as its midnight (decisions.md #11).
            t = self.temporal_operand(depth - 1)
            name = self.pick(("days_since", "days_until"))
            diff = f"({self._now_sql} - {as_ns(t)})" if name == "days_since" else f"({as_ns(t)} - {self._now_sql})"
            return self.call(name, [t], f"seg_fdiv({diff}, {NS_PER_DAY})", Kind.INT, INT_FBOUND)
        if choice == "generic":
            return self._generic(Kind.INT, depth)
        return self._int(0)

    # -------------------------------------------------------------- floats
    def _float_leaf(self) -> Expr:
        return self._leaf(Kind.FLOAT, self.float_literal)

    def _float(self, depth: int) -> Expr:
        if depth <= 0:
            return self._float_leaf()
        choice = self.pick(("leaf", "arith", "arith", "divide", "divide", "negate", "abs", "round", "floor", "generic"))
        if choice == "arith":
            op = self.pick(("+", "-", "*", "%"))
            kinds = self.pick(((Kind.FLOAT, Kind.FLOAT), (Kind.FLOAT, Kind.INT), (Kind.INT, Kind.FLOAT)))
            a, b = (self.expr(k, depth - 1) for k in kinds)
            fbound = {"+": a.fbound + b.fbound, "-": a.fbound + b.fbound, "*": a.fbound * b.fbound}.get(op, a.fbound)
            if fbound > FLOAT_LIMIT:
                return a if a.kind is Kind.FLOAT else b
            prec = SUM if op in "+-" else PRODUCT
            right = f"NULLIF({as_double(b)}, 0)" if op == "%" else as_double(b)
            text = f"{paren(a, prec)} {op} {paren(b, prec + 1)}"
            return node(text, f"({as_double(a)} {op} {right})", Kind.FLOAT, prec, [a, b], fbound)
        if choice == "divide":
            # True division, null for a zero divisor (decisions.md #14).  The divisor
            # is an integer (at least 1 in size) or a float leaf (at least 1e-3).
            a = self.expr(self.pick((Kind.INT, Kind.FLOAT)), depth - 1)
            b, smallest = (self.expr(Kind.INT, depth - 1), 1.0) if self.chance(2) else (self._float_leaf(), 1e-3)
            fbound = a.fbound / smallest
            if fbound > FLOAT_LIMIT:
                return self._float_leaf()
            text = f"{paren(a, PRODUCT)} / {paren(b, UNARY)}"
            return node(text, f"({as_double(a)} / NULLIF({as_double(b)}, 0))", Kind.FLOAT, PRODUCT, [a, b], fbound)
        if choice == "negate":
            a = self.expr(Kind.FLOAT, depth - 1)
            return self.negate(a, f"(-({a.sql}))", Kind.FLOAT)
        if choice == "abs":
            a = self.expr(Kind.FLOAT, depth - 1)
            return self.call("abs", [a], f"abs({a.sql})", Kind.FLOAT, a.fbound)
        if choice == "round":
            a = self.expr(Kind.FLOAT, depth - 1)
            digits = self.pick((None, 0, 1, 2, 3, -1, -2))
            args = a.seg if digits is None else f"{a.seg}, {digits}"
            sql = f"round({a.sql}, {digits or 0})"
            return node(f"{self.kw('round')}({args})", sql, Kind.FLOAT, ATOM, [a], a.fbound + 100)
        if choice == "floor":
            a = self.expr(Kind.FLOAT, depth - 1)
            name = self.pick(("floor", "ceil"))
            return self.call(name, [a], f"{name}({a.sql})", Kind.FLOAT, a.fbound + 1)
        if choice == "generic":
            return self._generic(Kind.FLOAT, depth)
        return self._float_leaf()

    # ------------------------------------------------------------- strings
    def _str(self, depth: int) -> Expr:
        if depth <= 0:
            return self._leaf(Kind.STR, self.str_literal)
        choice = self.pick(("leaf", "leaf", "lower", "upper", "trim", "concat", "generic"))
        if choice in ("lower", "upper", "trim"):
            s = self.expr(Kind.STR, depth - 1)
            sql = f"trim({s.sql}, {SQL_WHITESPACE})" if choice == "trim" else f"{choice}({s.sql})"
            return self.call(choice, [s], sql, Kind.STR)
        if choice == "concat":
            # concat is null when any part is null (decisions.md #27), like SQL's ||.
            a, b = self.expr(Kind.STR, depth - 1), self.expr(Kind.STR, depth - 1)
            return self.call("concat", [a, b], f"({a.sql} || {b.sql})", Kind.STR)
        if choice == "generic":
            return self._generic(Kind.STR, depth)
        return self._str(0)

    # --------------------------------------------------------------- dates
    def _date(self, depth: int) -> Expr:
        if depth <= 0:
            return self._leaf(Kind.DATE, self.date_literal)
        choice = self.pick(("leaf", "leaf", "date_of", "shift", "shift", "generic"))
        if choice == "date_of":
            t = self.instant_operand(depth - 1)
            return self.call("date", [t], f"seg_date({t.sql})", Kind.DATE)
        if choice == "shift":
            # date ± whole days, weeks, months or years stays a date (decisions.md #9).
            base = self.expr(Kind.DATE, depth - 1)
            sign, d = self.pick(("+", "-")), self.duration("ddwmy")
            if d.months:
                sql = f"CAST(({base.sql} {sign} to_months({d.months})) AS DATE)"
            else:
                sql = f"({base.sql} {sign} CAST({d.ns // NS_PER_DAY} AS INTEGER))"
            return node(f"{paren(base, SUM)} {sign} {d.text}", sql, Kind.DATE, SUM, [base])
        if choice == "generic":
            return self._generic(Kind.DATE, depth)
        return self._date(0)

    # ---------------------------------------------------------- timestamps
    def _ts(self, depth: int) -> Expr:
        if depth <= 0:
            leaf = self.pick(("column", "column", "literal", "now", "today"))
            if leaf == "now":
                return Expr(self.kw("now"), self._now_sql, Kind.TS)
            if leaf == "today":
                # as_of truncated to midnight UTC (decisions.md #6).
                return Expr(self.kw("today"), self._today_sql, Kind.TS)
            return self._leaf(Kind.TS, self.ts_literal) if leaf == "column" else self.ts_literal()
        choice = self.pick(("leaf", "shift", "shift", "date_hours", "generic"))
        if choice == "shift":
            base = self.expr(Kind.TS, depth - 1)
            sign, d = self.pick(("+", "-")), self.duration()
            sql = shift_ns_sql(base.sql, sign, d)
            if sign == "+" and self.chance(2):
                return node(f"{d.text} + {paren(base, PRODUCT)}", sql, Kind.TS, SUM, [base])
            return node(f"{paren(base, SUM)} {sign} {d.text}", sql, Kind.TS, SUM, [base])
        if choice == "date_hours":
            # date ± hours is a timestamp (decisions.md #9).
            base = self.expr(Kind.DATE, depth - 1)
            sign, d = self.pick(("+", "-")), self.duration("h")
            return node(f"{paren(base, SUM)} {sign} {d.text}", f"({as_ns(base)} {sign} {d.ns})", Kind.TS, SUM, [base])
        if choice == "generic":
            return self._generic(Kind.TS, depth)
        return self._ts(0)

    # ----------------------------------------------------------- durations
    def _dur(self, depth: int) -> Expr:
        """A fixed duration literal, or the difference of two instants (or dates)."""
        if self.chance(3):
            d = self.duration("dwh")
            return Expr(d.text, f"CAST({d.ns} AS BIGINT)", Kind.DUR)
        kinds = self.pick(((Kind.TS, Kind.TS), (Kind.DATE, Kind.DATE), (Kind.DATE, Kind.TS), (Kind.TS, Kind.DATE)))
        a, b = (self.expr(k, depth - 1) for k in kinds)
        return node(f"{paren(a, SUM)} - {paren(b, PRODUCT)}", f"({as_ns(a)} - {as_ns(b)})", Kind.DUR, SUM, [a, b])

    # ------------------------------------------------ case / coalesce / …
    def _branch(self, kind: Kind, depth: int) -> Expr:
        """An operand of ``kind``, or of a kind segql unifies into it (int -> float, date -> timestamp)."""
        narrower = {Kind.FLOAT: Kind.INT, Kind.TS: Kind.DATE}.get(kind)
        return self.expr(narrower if narrower is not None and self.chance(2) else kind, depth)

    def _maybe_null(self, kind: Kind, depth: int) -> Expr:
        return self.null(kind) if self.chance(3) else self._branch(kind, depth)

    def _generic(self, kind: Kind, depth: int) -> Expr:
        """case, simple case, coalesce, least, greatest or if with ``kind`` results; the
        first result always has exactly ``kind`` so that segql infers that type."""
        form = self.pick(("case", "simple_case", "coalesce", "least", "greatest", "if"))
        if form in ("case", "simple_case"):
            return self._case(kind, depth, simple=form == "simple_case")
        if form == "if":
            # A null condition gives the third argument (decisions.md #17).
            cond, a, b = self.expr(Kind.BOOL, depth - 1), self.expr(kind, depth - 1), self._maybe_null(kind, depth - 1)
            sql = f"(CASE WHEN {cond.sql} THEN {promote(a, kind)} ELSE {promote(b, kind)} END)"
            seg = f"{self.kw('if')}({cond.seg}, {a.seg}, {b.seg})"
            a_needed, b_needed = needed_when(a, [], take=cond.sql), needed_when(b, [cond.sql])
            return node(seg, sql, kind, ATOM, [cond, a_needed, b_needed], a.fbound)
        # least and greatest skip nulls (decisions.md #16), as in DuckDB.
        args = [self.expr(kind, depth - 1)] + [self._maybe_null(kind, depth - 1) for _ in range(self.pick((1, 1, 2)))]
        if self.chance(2):
            args.reverse()
        text = f"{self.kw(form)}({', '.join(a.seg for a in args)})"
        sql = f"{form}({', '.join(promote(a, kind) for a in args)})"
        fbound = max(a.fbound for a in args)
        if form == "coalesce":  # an argument is needed where every earlier one is null
            args = [needed_when(a, [f"({e.sql}) IS NOT NULL" for e in args[:i]]) for i, a in enumerate(args)]
        return node(text, sql, kind, ATOM, args, fbound)

    def _case(self, kind: Kind, depth: int, simple: bool) -> Expr:
        """First match wins; a null condition is no match; no else gives null (decisions.md #17)."""
        results = [self.expr(kind, depth - 1)] + [self._branch(kind, depth - 1) for _ in range(self.pick((0, 1, 2)))]
        default = self.pick(("none", "null", "value"))
        else_expr = (
            None if default == "none" else self.null(kind) if default == "null" else self._branch(kind, depth - 1)
        )
        parts: list[Expr] = []
        seg_whens, sql_whens = [], []
        head = self.kw("case")
        if simple:
            subject_kind = self.pick((Kind.INT, Kind.STR, Kind.DATE))
            subject = self.expr(subject_kind, depth - 1)
            literal = {Kind.INT: self.int_literal, Kind.STR: self.str_literal, Kind.DATE: self.date_literal}
            head += " " + subject.seg
            parts.append(subject)
            conditions = [
                (value.seg, compare_sql(subject, "=", value)) for value in (literal[subject_kind]() for _ in results)
            ]
        else:
            conds = [self.expr(Kind.BOOL, depth - 1) for _ in results]
            # a condition is needed on the rows no earlier condition took
            parts += [needed_when(c, [e.sql for e in conds[:i]]) for i, c in enumerate(conds)]
            conditions = [(c.seg, c.sql) for c in conds]
        for (cond_seg, cond_sql), result in zip(conditions, results, strict=True):
            seg_whens.append(f"{self.kw('when')} {cond_seg} {self.kw('then')} {result.seg}")
            sql_whens.append(f"WHEN {cond_sql} THEN {promote(result, kind)}")
        values = [*results, *([else_expr] if else_expr is not None else [])]
        seg = f"{head} {' '.join(seg_whens)}"
        sql = f"(CASE {' '.join(sql_whens)}"
        if else_expr is not None:
            seg += f" {self.kw('else')} {else_expr.seg}"
            sql += f" ELSE {promote(else_expr, kind)}"
        fbound = max(v.fbound for v in values)
        # a branch is needed on the rows that take it (decisions.md 18a)
        taken = [c for _, c in conditions]
        needed = [needed_when(r, taken[:i], take=taken[i]) for i, r in enumerate(results)]
        if else_expr is not None:
            needed.append(needed_when(else_expr, taken))
        return node(f"{seg} {self.kw('end')}", f"{sql} END)", kind, ATOM, [*parts, *needed], fbound)

    # ------------------------------------------------------------- booleans
    def _bool(self, depth: int) -> Expr:
        if depth <= 0:
            return self._leaf(Kind.BOOL, self.bool_literal)
        choice = self.pick(BOOL_FORMS)
        if choice == "compare":
            return self._compare(depth)
        if choice == "between":
            return self._between(depth)
        if choice == "in":
            return self._in(depth)
        if choice == "is_null":
            x = self.expr(self.pick(tuple(Kind)), depth - 1)
            neg = self.chance(2)
            seg = f"{paren(x, SUM)} {self.kw('is')} {self.kw('not') + ' ' if neg else ''}{self.kw('null')}"
            return node(seg, f"({x.sql} IS {'NOT ' if neg else ''}NULL)", Kind.BOOL, PRED, [x])
        if choice == "is_bool":
            # x is [not] true/false, never null (decisions.md #27).
            x = self.expr(Kind.BOOL, depth - 1)
            neg, value = self.chance(2), self.pick(("true", "false"))
            seg = f"{paren(x, SUM)} {self.kw('is')} {self.kw('not') + ' ' if neg else ''}{self.kw(value)}"
            return node(seg, f"({x.sql} IS {'NOT ' if neg else ''}{value.upper()})", Kind.BOOL, PRED, [x])
        if choice in ("and", "or"):
            # Kleene logic; `not` binds tighter than `and`, `and` tighter than `or`.
            a, b = self.expr(Kind.BOOL, depth - 1), self.expr(Kind.BOOL, depth - 1)
            prec = AND if choice == "and" else OR
            seg = f"{paren(a, prec)} {self.kw(choice)} {paren(b, prec + 1)}"
            sql, operands, ambiguous = lazy_junction(choice.upper(), a, b)
            made = node(seg, sql, Kind.BOOL, prec, operands)
            return replace(made, ambiguous=True) if ambiguous else made
        if choice == "not":
            a = self.expr(Kind.BOOL, depth - 1)
            return node(f"{self.kw('not')} {paren(a, NOT)}", f"(NOT {a.sql})", Kind.BOOL, NOT, [a])
        if choice == "string":
            return self._string_test(depth)
        if choice == "generic":
            return self._generic(Kind.BOOL, depth)
        return self._bool(0)

    def _operands(self, family: str, count: int, depth: int) -> list[Expr]:
        """``count`` mutually comparable operands; in the temporal family only the
        first is never a relative instant (two signed durations compare as durations)."""
        if family == "numeric":
            return [self.expr(self.pick((Kind.INT, Kind.FLOAT)), depth) for _ in range(count)]
        if family == "temporal":
            first = self.expr(self.pick((Kind.DATE, Kind.TS)), depth)
            return [first, *(self.temporal_operand(depth) for _ in range(count - 1))]
        kind = {"string": Kind.STR, "bool": Kind.BOOL, "duration": Kind.DUR}[family]
        return [self.expr(kind, depth) for _ in range(count)]

    def _compare(self, depth: int) -> Expr:
        family = self.pick((*FAMILIES, "null"))
        if family == "null":
            x = self.expr(self.pick(tuple(Kind)), depth - 1)
            a, b = x, self.null(x.kind)
        elif family == "duration" and self.chance(2):
            # A signed duration compared with a duration stays a duration (decisions.md #5).
            a, d = self.expr(Kind.DUR, depth - 1), self.duration("dwh")
            b = Expr(f"-{d.text}", f"CAST({-d.ns} AS BIGINT)", Kind.DUR, UNARY)
        else:
            a, b = self._operands(family, 2, depth - 1)
        if self.chance(2):
            a, b = b, a
        op = self.pick(tuple(SQL_OPS))
        return node(f"{paren(a, SUM)} {op} {paren(b, SUM)}", compare_sql(a, op, b), Kind.BOOL, PRED, [a, b])

    def _between(self, depth: int) -> Expr:
        x, lo, hi = self._operands(self.pick(FAMILIES), 3, depth - 1)
        neg = self.chance(2)
        seg = (
            f"{paren(x, SUM)} {self.kw('not') + ' ' if neg else ''}{self.kw('between')} "
            f"{paren(lo, SUM)} {self.kw('and')} {paren(hi, SUM)}"
        )
        # Inclusive on both ends; each bound is compared on its own terms.
        low = Expr("", compare_sql(x, ">=", lo), Kind.BOOL, checks=lo.checks, ambiguous=lo.ambiguous)
        high = Expr("", compare_sql(x, "<=", hi), Kind.BOOL, checks=hi.checks, ambiguous=hi.ambiguous)
        # When the bounds need x in different types (an int between a float and an
        # int, a timestamp between a date and a timestamp), segql checks
        # `x >= lo and x <= hi`, whose operands are needed as in any `and`.
        split = (x.kind is Kind.INT and (lo.kind is Kind.FLOAT) != (hi.kind is Kind.FLOAT)) or (
            x.kind is Kind.TS and (lo.kind is Kind.DATE) != (hi.kind is Kind.DATE)
        )
        if split:
            sql, (low, high), ambiguous = lazy_junction("AND", low, high)
        else:
            sql, ambiguous = f"({low.sql} AND {high.sql})", False
        made = node(seg, f"(NOT {sql})" if neg else sql, Kind.BOOL, PRED, [x, low, high])
        return replace(made, ambiguous=True) if ambiguous else made

    def _in(self, depth: int) -> Expr:
        """SQL membership: null when nothing matches and the list holds a null
        (LANGUAGE.md §4); `x in []` is false for every row (decisions.md #18)."""
        family = self.pick(("numeric", "numeric", "string", "bool", "temporal", "temporal"))
        x = self._operands(family, 1, depth - 1)[0]
        item_kind = self.pick((Kind.DATE, Kind.TS)) if family == "temporal" else x.kind
        items = [self._in_item(family, item_kind) for _ in range(self.pick((0, 1, 2, 3, 4)))]
        neg = self.chance(2)
        if not items:
            sql = "TRUE" if neg else "FALSE"
        else:
            if any(e.kind is Kind.FLOAT for e in [x, *items]):
                operand, values = as_double(x), [as_double(i) for i in items]
            elif x.kind is not item_kind:  # a date against timestamps: whole UTC days
                operand, values = as_date(x), [as_date(i) for i in items]
            else:
                operand, values = x.sql, [i.sql for i in items]
            sql = f"({operand} IN ({', '.join(values)}))"
            sql = f"(NOT {sql})" if neg else sql
        texts = [i.seg for i in items]
        if items and all(i.literal for i in items) and self.chance(4):
            listed = self.bind_param([i.literal[0] for i in items])  # a list parameter
        elif len(items) == 1 and self.chance(2):
            listed = f"({texts[0]})"
        elif len(items) > 1 and self.chance(2):
            listed = f"({', '.join(texts)})"
        else:
            listed = "[" + ", ".join(texts) + (", " if items and self.chance(3) else "") + "]"
        seg = f"{paren(x, SUM)} {self.kw('not') + ' ' if neg else ''}{self.kw('in')} {listed}"
        # (x is computed also for `x in []`, whose result does not depend on it)
        return node(seg, sql, Kind.BOOL, PRED, [x, *items])

    def _in_item(self, family: str, kind: Kind) -> Expr:
        """A list item: a literal, a null, or now and then a column (decisions.md #18)."""
        choice = self.pick(("literal", "literal", "literal", "null", "column"))
        if family == "numeric" and self.chance(3):
            kind = Kind.INT if kind is Kind.FLOAT else Kind.FLOAT
        if choice == "null":
            return self.null(kind)
        col = self.column(kind) if choice == "column" else None
        if col is not None:
            return col
        if kind is Kind.TS and self.chance(3):
            return self.relative()
        make = {
            Kind.INT: self.int_literal,
            Kind.FLOAT: self.float_literal,
            Kind.STR: self.str_literal,
            Kind.BOOL: self.bool_literal,
            Kind.DATE: self.date_literal,
            Kind.TS: self.ts_literal,
        }
        return make[kind]()

    def _string_test(self, depth: int) -> Expr:
        """Case-sensitive tests with constant patterns; `matches` is RE2, anywhere in the string."""
        s = self.expr(Kind.STR, depth - 1)
        neg = self.chance(2)
        not_ = self.kw("not") + " " if neg else ""
        test = self.pick(("starts", "ends", "contains", "matches", "any", "all"))
        if test in ("any", "all"):
            # On strings, contains any/all are OR/AND of substring tests (decisions.md #20).
            patterns = [self.pick(SUBSTRINGS) for _ in range(self.pick((1, 2, 3)))]
            listed = "[" + ", ".join(self.segql_string(p) for p in patterns) + "]"
            seg = f"{paren(s, SUM)} {not_}{self.kw('contains')} {self.kw(test)} {listed}"
            joiner = " OR " if test == "any" else " AND "
            sql = "(" + joiner.join(f"contains({s.sql}, {sql_string(p)})" for p in patterns) + ")"
        else:
            pattern = self.str_literal(_sampled(REGEXES if test == "matches" else SUBSTRINGS))
            words = {"starts": "starts with", "ends": "ends with", "contains": "contains", "matches": "matches"}[test]
            seg = f"{paren(s, SUM)} {not_}{' '.join(self.kw(w) for w in words.split())} {pattern.seg}"
            function = {"starts": "starts_with", "ends": "ends_with", "contains": "contains"}.get(
                test, "regexp_matches"
            )
            sql = f"{function}({s.sql}, {pattern.sql})"
        return node(seg, f"(NOT {sql})" if neg else sql, Kind.BOOL, PRED, [s])


@st.composite
def scenarios(draw: st.DrawFn, kinds: Sequence[Kind], max_depth: int = 4) -> Scenario:
    """An ``as_of``, a random table and a random expression of one of ``kinds``."""
    as_of = draw(st.sampled_from(AS_OF_POOL))
    data = draw(generated_tables(as_of))
    gen = ExprGen(draw, data.columns, as_of)
    expr = gen.expr(draw(st.sampled_from(kinds)), draw(st.integers(1, max_depth)))
    return Scenario(as_of, data, expr, dict(gen.params))


@dataclass(frozen=True)
class Batch:
    """A table, an ``as_of`` and several expressions over it (one program per
    batch: engines with a high cost per query, such as Spark, check many
    expressions at once)."""

    as_of: dt.datetime
    data: GeneratedTable
    exprs: list[Expr]
    params: dict[str, object] = field(default_factory=dict)

    @property
    def table(self) -> pa.Table:
        return self.data.table


@st.composite
def scenario_batches(draw: st.DrawFn, kinds: Sequence[Kind], size: int, max_depth: int = 4) -> Batch:
    """An ``as_of``, a random table and ``size`` random expressions over it."""
    as_of = draw(st.sampled_from(AS_OF_POOL))
    data = draw(generated_tables(as_of))
    gen = ExprGen(draw, data.columns, as_of)
    exprs = [gen.expr(draw(st.sampled_from(kinds)), draw(st.integers(1, max_depth))) for _ in range(size)]
    return Batch(as_of, data, exprs, dict(gen.params))
