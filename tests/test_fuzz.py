"""Fuzzing: whatever the source, the data or the parameters, only SegqlError escapes.

docs/security.md, guarantee 5: for bad source, data, parameters or packs the
public API raises ``segql.SegqlError`` subclasses; anything else is a bug, and
a bug is raised as ``segql.InternalError``.  These tests feed the public API
(``segql.compile``, ``Program.evaluate``, ``Program.explain``, ``Program.why``,
``segql.evaluate`` and ``segql.format.format_source``) with

* sources generated from the real grammar (``hypothesis.extra.lark`` over
  ``segql.parse.grammar_text()``), most of them syntactically valid, evaluated
  over a small random nullable table and a related ``orders`` table;
* byte-level junk, random text, random edits of the demo segment file, huge
  numbers, deep nesting near and over the limits, awkward unicode;
* junk parameters, ``as_of`` values and tables (unsupported column types,
  duplicate column names, things that are not tables at all).

Every call must either succeed or raise a ``SegqlError`` that is not an
``InternalError``; an error with a position has a 1-based line and column.
Anything else fails the test.  The test ids name what is fed in.

The example counts are module constants; their sum (``TOTAL_EXAMPLES``) is the
number of fuzz cases per run.  The run is derandomized by default (the same
examples every time; see the conftest.py at the top of the repository).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import lark
import pyarrow as pa
import pytest
import sqlgen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import LarkStrategy, from_lark
from lark.grammar import Symbol

import segql
import segql.demo
import segql.format
from segql.limits import HARD_MAX_DEPTH
from segql.parse import grammar_text

FUZZ = settings(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)

# Examples per test (per run); the grammar's 700 under CI or SEGQL_LONG=1, 450 by
# default (the default run stays under ten minutes on 2 cores).
GRAMMAR_EXAMPLES = 700 if os.environ.get("CI") or os.environ.get("SEGQL_LONG") else 450
GRAMMAR_WITH_LIMITS_EXAMPLES = 150
TYPED_EXAMPLES = 300
BINARY_EXAMPLES = 200
TEXT_EXAMPLES = 200
TOKEN_SOUP_EXAMPLES = 200
MUTATION_EXAMPLES = 250
NUMBER_EXAMPLES = 100
NESTING_EXAMPLES = 60
UNICODE_EXAMPLES = 150
PARAMS_EXAMPLES = 200
AS_OF_EXAMPLES = 150
TABLE_EXAMPLES = 150
NOT_A_TABLE_EXAMPLES = 50
TOTAL_EXAMPLES = (
    GRAMMAR_EXAMPLES
    + GRAMMAR_WITH_LIMITS_EXAMPLES
    + TYPED_EXAMPLES
    + BINARY_EXAMPLES
    + TEXT_EXAMPLES
    + TOKEN_SOUP_EXAMPLES
    + MUTATION_EXAMPLES
    + NUMBER_EXAMPLES
    + NESTING_EXAMPLES
    + UNICODE_EXAMPLES
    + PARAMS_EXAMPLES
    + AS_OF_EXAMPLES
    + TABLE_EXAMPLES
    + NOT_A_TABLE_EXAMPLES
)
assert TOTAL_EXAMPLES >= 2_000

AS_OF = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


# ------------------------------------------------------------------ the oracle
def assert_documented(exc: segql.SegqlError, what: str) -> None:
    """A SegqlError for bad input: never an InternalError, a 1-based position, a message."""
    if isinstance(exc, segql.InternalError):
        cause = exc.__cause__
        raise AssertionError(f"InternalError from {what}: {exc}\ncaused by {cause!r}") from exc
    text = str(exc)
    assert isinstance(text, str) and exc.message, what
    if exc.line is not None:
        assert exc.line >= 1 and exc.column is not None and exc.column >= 1, (what, exc.line, exc.column, text)


def attempt(what: str, call: Callable[[], Any]) -> Any:
    """``call()``; a SegqlError is fine (and returns None) unless it is an InternalError.
    Any other exception propagates and fails the test."""
    try:
        return call()
    except segql.SegqlError as exc:
        assert_documented(exc, what)
        return None


def exercise(
    source: Any,
    profile: pa.Table | None = None,
    orders: pa.Table | None = None,
    *,
    params: Any = None,
    as_of: Any = AS_OF,
    limits: segql.Limits | None = None,
    key: str = "customer_id",
) -> segql.Program | None:
    """The whole public API on one source: format, compile, explain, evaluate, why."""
    shown = repr(source)[:2000]
    formatted = None
    if isinstance(source, str):
        formatted = attempt(f"format_source({shown})", lambda: segql.format.format_source(source))
    options = {"limits": limits} if limits is not None else {}
    program = attempt(f"compile({shown})", lambda: segql.compile(source, **options))
    if program is None:
        return None
    assert isinstance(program, segql.Program)
    if formatted is not None and limits is None:
        check_formatted(source, formatted, program, profile, orders, params, as_of)
    attempt(f"explain() of {shown}", program.explain)
    if profile is None:
        return program
    related = {"orders": orders} if orders is not None else None
    attempt(f"explain(data) of {shown}", lambda: program.explain(profile, related=related))
    out = attempt(
        f"evaluate of {shown}",
        lambda: program.evaluate(profile, key=key, related=related, as_of=as_of, params=params),
    )
    if out is not None:
        assert isinstance(out, pa.Table) and out.num_rows == profile.num_rows
        for name in program.segments:
            assert out.column(name).null_count == 0, f"segment {name} has nulls: {shown}"
    ids = profile.column(key).to_pylist() if key in profile.column_names else []
    for id in [*ids[:1], 10**6]:  # a customer, and one that does not exist
        attempt(
            f"why(id={id!r}) of {shown}",
            lambda id=id: program.why(profile, key=key, id=id, related=related, as_of=as_of, params=params),
        )
    return program


def outcome(
    program: segql.Program, profile: pa.Table, orders: pa.Table | None, params: Any, as_of: Any
) -> pa.Table | type[segql.SegqlError]:
    try:
        out = program.evaluate(
            profile, key="customer_id", related={"orders": orders} if orders is not None else None,
            as_of=as_of, params=params,
        )  # fmt: skip
    except segql.SegqlError as exc:
        return type(exc)
    return out.replace_schema_metadata(None)


def check_formatted(
    source: str,
    formatted: str,
    program: segql.Program,
    profile: pa.Table | None,
    orders: pa.Table | None,
    params: Any,
    as_of: Any,
) -> None:
    """The canonical form (``segql fmt``) is a fixed point and means the same program."""
    again = attempt(f"format_source of the formatted {formatted!r}", lambda: segql.format.format_source(formatted))
    assert again == formatted, f"formatting is not idempotent:\n{source!r}\n-> {formatted!r}\n-> {again!r}"
    reformatted = attempt(f"compile of the formatted {formatted!r}", lambda: segql.compile(formatted))
    assert reformatted is not None, f"{source!r} compiles, its canonical form {formatted!r} does not"
    assert reformatted.segments == program.segments and reformatted.features == program.features
    if profile is None or "customer_id" not in profile.column_names:
        return
    as_of = AS_OF if as_of is None else as_of  # the same instant for both
    before, after = (
        outcome(program, profile, orders, params, as_of),
        outcome(reformatted, profile, orders, params, as_of),
    )
    if isinstance(before, pa.Table) and isinstance(after, pa.Table):
        same = before.equals(after) or before.to_pylist() == after.to_pylist() or _same_with_nan(before, after)
        assert same, f"{source!r} and its canonical form {formatted!r} give different results"
    else:
        assert before == after, f"{source!r} gives {before}, its canonical form {formatted!r} gives {after}"


def _same_with_nan(a: pa.Table, b: pa.Table) -> bool:
    return repr(a.to_pylist()) == repr(b.to_pylist())


# ---------------------------------------------------------------- random data
PROFILE_COLUMNS = {
    "customer_id": pa.int64(),
    "age": pa.int32(),
    "score": pa.float64(),
    "country": pa.string(),
    "city": pa.dictionary(pa.int32(), pa.string()),
    "vip": pa.bool_(),
    "signup": pa.date32(),
    "last_seen": pa.timestamp("us", tz="UTC"),
    "updated at": pa.timestamp("ms"),
    "tags": pa.list_(pa.string()),
    "balance": pa.decimal128(12, 2),
    "visits": pa.int64(),
}
ORDER_COLUMNS = {
    "customer_id": pa.int64(),
    "amount": pa.float64(),
    "qty": pa.int64(),
    "category": pa.dictionary(pa.int32(), pa.string()),
    "ts": pa.timestamp("us", tz="UTC"),
    "coupon": pa.string(),
    "paid": pa.bool_(),
}
WORDS = ("PL", "DE", "", "books", "vip", "a", "Łódź", "x@gmail.com", " ", "é", "\u202e", "ab\u0301")
INT_EDGES = (0, 1, -1, 2**31 - 1, -(2**31), 2**62, 2**63 - 1, -(2**63), 10**15)


def _values_for(arrow_type: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_dictionary(arrow_type):
        return _values_for(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return st.booleans()
    if pa.types.is_integer(arrow_type):
        bits = arrow_type.bit_width - 1
        return st.integers(-50, 50) | st.sampled_from([v for v in INT_EDGES if -(2**bits) <= v < 2**bits])
    if pa.types.is_floating(arrow_type):
        return st.floats(-1e6, 1e6) | st.sampled_from([0.0, -0.0, 1e300, float("nan"), float("inf")])
    if pa.types.is_decimal(arrow_type):
        return st.decimals(-(10**9), 10**9, places=2, allow_nan=False, allow_infinity=False)
    if pa.types.is_string(arrow_type):
        return st.sampled_from(WORDS) | st.text(max_size=5)
    if pa.types.is_date32(arrow_type):
        return st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)) | st.sampled_from(
            [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)]
        )
    if pa.types.is_timestamp(arrow_type):
        lo, hi = dt.datetime(1900, 1, 1), dt.datetime(2100, 12, 31)
        naive = st.datetimes(lo, hi) | st.sampled_from([dt.datetime(1970, 1, 1), dt.datetime(2026, 10, 31, 23)])
        return naive.map(lambda d: d.replace(tzinfo=dt.UTC)) if arrow_type.tz else naive
    if pa.types.is_list(arrow_type):
        return st.lists(st.none() | _values_for(arrow_type.value_type), max_size=3)
    raise AssertionError(arrow_type)


@st.composite
def nullable_column(draw: st.DrawFn, arrow_type: pa.DataType, n: int) -> pa.Array:
    values = draw(st.lists(st.none() | _values_for(arrow_type), min_size=n, max_size=n))
    if pa.types.is_dictionary(arrow_type):
        return pa.array(values, arrow_type.value_type).dictionary_encode()
    return pa.array(values, arrow_type)


@st.composite
def fuzz_tables(draw: st.DrawFn) -> tuple[pa.Table, pa.Table]:
    """A profile (0..5 rows, unique non-null keys, every other column nullable)
    and an ``orders`` table (keys known, unknown or null)."""
    ids = draw(st.lists(st.integers(1, 9), unique=True, max_size=5))
    columns = {"customer_id": pa.array(ids, pa.int64())}
    for name, arrow_type in PROFILE_COLUMNS.items():
        if name != "customer_id":
            columns[name] = draw(nullable_column(arrow_type, len(ids)))
    profile = pa.table(columns)
    keys = draw(st.lists(st.none() | st.sampled_from(ids or [1]) | st.integers(10, 12), max_size=8))
    order_columns = {"customer_id": pa.array(keys, pa.int64())}
    for name, arrow_type in ORDER_COLUMNS.items():
        if name != "customer_id":
            order_columns[name] = draw(nullable_column(arrow_type, len(keys)))
    orders = pa.table(order_columns)
    if len(keys) > 2 and draw(st.booleans()):
        orders = pa.concat_tables([orders.slice(0, 2), orders.slice(2)])  # two chunks
    return profile, orders


# --------------------------------------------------- sources from the grammar
@functools.cache
def grammar() -> lark.Lark:
    """The shipped grammar, without segql's tree builder."""
    return lark.Lark(grammar_text(), parser="lalr", lexer="contextual", maybe_placeholders=True)


KEYWORDS = {
    "PARAM_KW": "param",
    "FEATURE_KW": "feature",
    "SEGMENT_KW": "segment",
    "_OR": "or",
    "_AND": "and",
    "NOT": "not",
    "BETWEEN": "between",
    "IN": "in",
    "IS": "is",
    "NULL": "null",
    "TRUE": "true",
    "FALSE": "false",
    "STARTS": "starts",
    "ENDS": "ends",
    "WITH": "with",
    "MATCHES": "matches",
    "CONTAINS": "contains",
    "ANY": "any",
    "ALL": "all",
    "CASE": "case",
    "WHEN": "when",
    "THEN": "then",
    "ELSE": "else",
    "END": "end",
    "BY": "by",
    "WHERE": "where",
    "NOW": "now",
    "TODAY": "today",
}
FUNCTIONS = (
    *("lower", "upper", "length", "trim", "abs", "round", "floor", "ceil", "coalesce", "least", "greatest"),
    *("year", "month", "day", "day_of_week", "hour", "date", "days_since", "days_until", "distance_km"),
    *("anniversary_within", "if", "concat", "count", "sum", "avg", "min", "max", "count_distinct", "first"),
    *("last", "exists", "median", "quantile", "stddev", "mode", "bucket", "trunc", "week", "quarter"),
)
PACK_FUNCTIONS = (
    "ecommerce.rfm_segment",
    "ecommerce.rfm_scores",
    "ecommerce.purchase_frequency_tier",
    "ecommerce.historic_clv",
    "ecommerce.favorite_season",
    "edtech.skill_level",
    "bfsi.life_stage",
    "travel.trip_purpose",
)
TYPE_NAMES = ("int", "float", "decimal", "string", "bool", "date", "timestamp", "duration", "list")
DECLARED = ("a", "b", "big", "f1", "tier")
PARAM_NAMES = ("p", "min_spend", "countries", "since", "x")
PROFILE_NAMES = (*(n for n in PROFILE_COLUMNS if n.isidentifier()), "Age", "COUNTRY")
ORDER_NAMES = ("orders", *(n for n in ORDER_COLUMNS if n.isidentifier()), *(f"orders.{n}" for n in ORDER_COLUMNS))
OTHER_NAMES = (*FUNCTIONS, *PACK_FUNCTIONS, *DECLARED, "segment", "ordersx", "subject")
SIMPLE_NAMES = (*PROFILE_NAMES, *ORDER_NAMES, *OTHER_NAMES, *TYPE_NAMES)
IDENTIFIERS = st.from_regex(r"[^\W\d]\w{0,6}", fullmatch=True)


def spaced(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Tokens that must not run into their neighbours (keywords, names, numbers)."""
    return strategy.map(lambda s: f" {s} ")


def letter_case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


def double_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def mostly(valid: st.SearchStrategy[str], odd: st.SearchStrategy[str], weight: int = 6) -> st.SearchStrategy[str]:
    """``valid`` ``weight`` times as often as ``odd`` (a source holds many tokens, and
    one odd token is enough to stop it short of evaluation)."""
    return st.one_of(*[valid] * weight, odd)


STRING_TEXT = st.sampled_from((*WORDS, "^[a-z]+@", "(", "[", "\\d", "a**", "(?P<x>", "\\")) | st.text(max_size=8)
STRING_TOKENS = mostly(
    STRING_TEXT.map(double_quoted) | STRING_TEXT.map(single_quoted),
    st.from_regex(r'"(?:[^"\\\n]|\\.){0,8}"', fullmatch=True)  # any escape, valid or not
    | st.sampled_from([r'"\u00e9"', r'"\ud800"', r'"\U0001F600"', r'"\x41"', r'"a""b"', r'"\u12"', r'"\0"']),
    weight=3,
)


def timestamp_text(t: dt.datetime, zone: str) -> str:
    return t.isoformat(timespec="auto").replace("+00:00", "") + zone


EXPLICIT: dict[str, st.SearchStrategy[str]] = {
    **{name: spaced(letter_case(word)) for name, word in KEYWORDS.items()},
    # Mostly names that mean something: columns, then types (for `param x: …`),
    # related tables and their columns, functions and declared names.
    "NAME": spaced(
        st.one_of(
            *[st.sampled_from(PROFILE_NAMES)] * 4,
            *[st.sampled_from(TYPE_NAMES)] * 2,
            *[st.sampled_from(ORDER_NAMES)] * 2,
            st.sampled_from(OTHER_NAMES),
            IDENTIFIERS,
        )
    ),
    "QUOTED_NAME": spaced(
        mostly(
            st.sampled_from([*PROFILE_COLUMNS, *ORDER_COLUMNS]).map(lambda s: f"`{s}`"),
            st.sampled_from(["Customer ID", "a``b", "segment"]).map(lambda s: f"`{s}`")
            | st.text(st.characters(exclude_characters="`"), min_size=1, max_size=6).map(lambda s: f"`{s}`"),
        )
    ),
    "PARAM": spaced(st.sampled_from(PARAM_NAMES).map(lambda s: "$" + s)),
    "STRING": spaced(STRING_TOKENS),
    "INT": spaced(
        mostly(
            st.integers(0, 100).map(str) | st.integers(0, 10**6).map(lambda v: f"{v:_}"),
            st.sampled_from([2**63 - 1, 2**63, 2**64, 10**30]).map(str),
        )
    ),
    "FLOAT": spaced(
        mostly(
            st.floats(0, 1e12, allow_nan=False, allow_infinity=False).map(repr),
            st.sampled_from(["1e3", "2.5", ".5", "1e999", "1e-999", "1_0.5e2", "0.0"]),
        )
    ),
    "DATE": spaced(
        mostly(
            st.dates().map(dt.date.isoformat),
            st.sampled_from(["2024-02-30", "0000-01-01", "2024-13-01", "9999-12-31"]),
        )
    ),
    "TIMESTAMP": spaced(
        mostly(
            st.builds(timestamp_text, st.datetimes(), st.sampled_from(["", "Z", "+01:00", "-05:30"])),
            st.sampled_from(["2024-12-24T10:30", "2024-12-24T24:00:00", "2024-12-24T10:30:00.123456789Z"])
            | st.builds(timestamp_text, st.datetimes(), st.just("+99:00")),
        )
    ),
    "DURATION": spaced(
        st.builds(
            "{}{}".format,
            mostly(st.integers(0, 400).map(str), st.sampled_from([10**6, 10**12, 2**63, 10**30]).map(str)),
            st.sampled_from("dwmyh"),
        )
    ),
    "ADD_OP": spaced(st.sampled_from("+-")),  # `--` would start a comment
    "COMMENT": st.sampled_from(["# a comment\n", "-- and another\n", "#\n"]),
    "__IGNORE_1": mostly(st.sampled_from([" ", "\n", "\t", "\r\n"]), st.sampled_from(["\u00a0", "\u2028", "\x0c"])),
}


class BoundedLarkStrategy(LarkStrategy):
    """``from_lark``'s strategy, with the size of a derivation bounded.

    The expression grammar branches more than once per level on average (lists,
    calls, ``case`` and arithmetic each hold several sub-expressions), so an
    unbounded random derivation usually grows until Hypothesis gives up on it
    (too much data), which makes ``from_lark`` slow and its sources huge.  Once
    ``budget`` rules have been expanded (or the derivation is ``max_depth`` rules
    deep) this strategy picks, for every further rule, only the expansions that
    finish soonest (at most one level more than the fewest), so every draw ends soon."""

    def __init__(
        self,
        lark_grammar: lark.Lark,
        start: str,
        explicit: dict[str, st.SearchStrategy[str]],
        budget: int,
        max_depth: int = 60,
    ) -> None:
        super().__init__(lark_grammar, start, explicit, st.characters(codec="utf-8"))
        self.budget, self.max_depth = budget, max_depth
        expansions = {name: list(strategy.elements) for name, strategy in self.nonterminal_strategies.items()}
        height: dict[str, float] = {}

        def height_of(expansion: tuple[Symbol, ...]) -> float:
            return 1 + max((height.get(s.name, math.inf) for s in expansion if not s.is_term), default=0)

        changed = True
        while changed:  # a fixpoint: the fewest levels each rule needs to finish
            changed = False
            for name, options in expansions.items():
                best = min(height_of(e) for e in options)
                if best < height.get(name, math.inf):
                    height[name], changed = best, True
        self.closing = {
            name: st.sampled_from([e for e in options if height_of(e) == height[name]])
            for name, options in expansions.items()
        }
        self.local = threading.local()

    def do_draw(self, data: Any) -> str:
        self.local.depth, self.local.expanded = 0, 0
        return super().do_draw(data)

    def draw_symbol(self, data: Any, symbol: Symbol, draw_state: list[str]) -> None:
        if symbol.is_term:
            super().draw_symbol(data, symbol, draw_state)
            return
        local = self.local
        local.expanded += 1
        if local.expanded <= self.budget and local.depth < self.max_depth:
            local.depth += 1
            try:
                super().draw_symbol(data, symbol, draw_state)
            finally:
                local.depth -= 1
            return
        for sym in data.draw(self.closing[symbol.name]):
            self.draw_symbol(data, sym, draw_state)
            self.gen_ignore(data, draw_state)


def from_grammar(start: str, budget: int) -> st.SearchStrategy[str]:
    """Strings the grammar derives from ``start`` (with the explicit strategies of its
    terminals), with about ``budget`` rules expanded at most (``BoundedLarkStrategy``)."""
    terminals, rules, ignored = grammar().grammar.compile([start], ())
    used = {t.name for t in terminals} | set(ignored)
    used |= {sym.name for rule in rules for sym in rule.expansion if sym.is_term}
    explicit = {k: v for k, v in EXPLICIT.items() if k in used}
    try:
        return BoundedLarkStrategy(grammar(), start, explicit, budget)
    except (AttributeError, TypeError):  # another Hypothesis version: unbounded, but still the grammar
        return from_lark(grammar(), start=start, explicit=explicit)


# Small derivations type-check far more often than large ones (one ill-typed
# operand anywhere stops a source at compile time), so most are small.
EXPRESSIONS = st.one_of(
    from_grammar("expr", budget=10), from_grammar("expr", budget=10), from_grammar("expr", budget=25),
    from_grammar("expr", budget=60),
)  # fmt: skip
# Whole sources, as the grammar derives them, and expressions in contexts that
# accept any type (a feature, an `is null` test), so that more of them pass the
# type checker and get evaluated.
SOURCES = st.one_of(
    from_grammar("start", budget=60),
    EXPRESSIONS,
    EXPRESSIONS.map("feature f = {}".format),
    EXPRESSIONS.map("segment s = ({}) is not null".format),
    st.builds("feature f = {}\nsegment s = {}".format, EXPRESSIONS, EXPRESSIONS),
    st.lists(from_grammar("declaration", budget=25), min_size=1, max_size=4).map("\n".join),
)


def param_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats()
        | st.text(max_size=5)
        | st.dates()
        | st.datetimes()
        | st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5))]))
        | st.timedeltas()
        | st.builds(segql.Duration, st.integers(-(2**40), 2**40), st.integers(-(2**64), 2**64))
        | st.decimals(allow_nan=True)
        | st.binary(max_size=4)
    )
    return scalars | st.lists(scalars, max_size=3)


# Values for every parameter the grammar may use (of one type each, so that some
# sources type-check), or random ones (any type, unknown names, missing values).
SANE_PARAMS = st.fixed_dictionaries(
    {
        "p": st.integers(-5, 5) | st.floats(-5, 5),
        "min_spend": st.floats(0, 1000),
        "countries": st.lists(st.sampled_from(["PL", "DE"]), max_size=2),
        "since": st.sampled_from([dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.date(2025, 5, 1)]),
        "x": st.sampled_from(["PL", "a", ""]),
    }
)
PARAMS = st.one_of(
    SANE_PARAMS,
    SANE_PARAMS,
    st.none(),
    st.dictionaries(st.sampled_from([*PARAM_NAMES, "unknown", "P"]), param_values(), max_size=4),
)


@settings(FUZZ, max_examples=GRAMMAR_EXAMPLES)
@given(source=SOURCES, tables=fuzz_tables(), params=PARAMS)
def test_grammar_generated_sources(source: str, tables: tuple[pa.Table, pa.Table], params: Any) -> None:
    profile, orders = tables
    exercise(source, profile, orders, params=params)
    attempt(
        f"segql.evaluate({source!r})",
        lambda: segql.evaluate(source, profile, key="customer_id", related={"orders": orders}, as_of=AS_OF),
    )


@st.composite
def typed_scenarios(draw: st.DrawFn) -> tuple[str, pa.Table, pa.Table, dict[str, object], dt.datetime]:
    """Well-typed expressions (``sqlgen``'s generator, every kind), so that most
    sources get past the type checker and through evaluate, explain and why."""
    as_of = draw(st.sampled_from(sqlgen.AS_OF_POOL))
    data = draw(sqlgen.generated_tables(as_of))
    gen = sqlgen.ExprGen(draw, data.columns, as_of)
    kinds = [draw(st.sampled_from(list(sqlgen.Kind))) for _ in range(draw(st.integers(1, 3)))]
    exprs = [gen.expr(kind, draw(st.integers(1, 4))) for kind in kinds]
    lines = [
        f"segment s{i} = {e.seg}" if e.kind is sqlgen.Kind.BOOL else f"feature f{i} = {e.seg}"
        for i, e in enumerate(exprs)
    ]
    if draw(st.booleans()):
        lines.append("segment buyers = count(orders where qty > 1) >= 1 and (s0 or f0 is not null)".replace(
            "s0 or f0 is not null", "s0" if exprs[0].kind is sqlgen.Kind.BOOL else "f0 is not null"))  # fmt: skip
    profile = data.table.append_column("customer_id", pa.array(range(data.table.num_rows), pa.int64()))
    _, orders = fuzz_tables_example()
    orders = orders.set_column(0, "customer_id", pa.array([0, 0, 1, None, 7], pa.int64()))
    return "\n".join(lines), profile, orders, dict(gen.params), as_of


@settings(FUZZ, max_examples=TYPED_EXAMPLES)
@given(scenario=typed_scenarios())
def test_typed_sources(scenario: tuple[str, pa.Table, pa.Table, dict[str, object], dt.datetime]) -> None:
    source, profile, orders, params, as_of = scenario
    program = exercise(source, profile, orders, params=params, as_of=as_of)
    assert program is not None, f"a well-typed source does not compile: {source!r}"


LIMITS = st.builds(
    segql.Limits,
    max_source_bytes=st.integers(1, 2_000),
    max_depth=st.integers(1, HARD_MAX_DEPTH),
    max_nodes=st.integers(1, 500),
    max_list_items=st.integers(1, 5),
    max_aggregates=st.integers(1, 5),
    max_cost=st.none() | st.floats(0, 1e6),
)


@settings(FUZZ, max_examples=GRAMMAR_WITH_LIMITS_EXAMPLES)
@given(source=SOURCES, tables=fuzz_tables(), limits=LIMITS)
def test_grammar_generated_sources_under_small_limits(
    source: str, tables: tuple[pa.Table, pa.Table], limits: segql.Limits
) -> None:
    profile, orders = tables
    exercise(source, profile, orders, limits=limits)


# ----------------------------------------------------------- byte-level junk
@functools.cache
def demo_data() -> tuple[pa.Table, pa.Table]:
    customers = segql.demo.customers(40)
    return customers, segql.demo.orders(customers)


@settings(FUZZ, max_examples=BINARY_EXAMPLES)
@given(raw=st.binary(max_size=300), errors=st.sampled_from(["replace", "surrogateescape", "ignore"]))
def test_random_bytes(raw: bytes, errors: str) -> None:
    exercise(raw.decode("utf-8", errors=errors), *demo_data())


@settings(FUZZ, max_examples=TEXT_EXAMPLES)
@given(source=st.text(max_size=200) | st.binary(max_size=20) | st.none() | st.integers())
def test_random_text(source: Any) -> None:
    exercise(source, *demo_data())


TOKENS = (
    *KEYWORDS.values(),
    *SIMPLE_NAMES,
    *"()[],.:;=<>!+-*/%$#`\"'\\",
    "==", "!=", "<>", "<=", ">=", "--", "\n", " ", "1", "0", "-1", "2.5", "1e3", "1_000", "30d", "-30d", "2024-12-24",
    "2024-12-24T10:30:00Z", '"PL"', "'it''s'", "`Customer ID`", "$p", "$min_spend", "9223372036854775808",
)  # fmt: skip


@settings(FUZZ, max_examples=TOKEN_SOUP_EXAMPLES)
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30), glue=st.sampled_from([" ", "", "\n"]))
def test_token_soup(tokens: list[str], glue: str) -> None:
    exercise(glue.join(tokens), *fuzz_tables_example())


@functools.cache
def fuzz_tables_example() -> tuple[pa.Table, pa.Table]:
    profile = pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "age": pa.array([30, None, 2**31 - 1], pa.int32()),
            "score": [1.5, None, -0.0],
            "country": ["PL", None, "DE"],
            "city": pa.array(["Warszawa", "Berlin", None]).dictionary_encode(),
            "vip": [True, None, False],
            "signup": pa.array([dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)]),
            "last_seen": pa.array([AS_OF, None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", "UTC")),
            "updated at": pa.array([None, dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1)], pa.timestamp("ms")),
            "tags": [["vip"], None, []],
            "balance": pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("-3.00")], pa.decimal128(12, 2)),
            "visits": pa.array([2**63 - 1, -(2**63), None], pa.int64()),
        }
    )
    orders = pa.table(
        {
            "customer_id": pa.array([1, 1, 2, None, 7], pa.int64()),
            "amount": [10.0, None, 2.5, 1.0, 3.0],
            "qty": pa.array([1, 2**62, None, 3, 4], pa.int64()),
            "category": pa.array(["books", "toys", None, "x", "y"]).dictionary_encode(),
            "ts": pa.array(
                [AS_OF, None, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), AS_OF, AS_OF], pa.timestamp("us", "UTC")
            ),
            "coupon": [None, "A", "B", None, None],
            "paid": [True, False, None, True, True],
        }
    )
    return profile, orders


MUTATION_CHARS = (
    "()[]{}\"'`$#-=<>!,.:;*/%\\ \n\t0123456789aZ_é"
    "\u202e\u200f\u0301\x00\u2028\x85\ufeff\u200d\U0001f600\ud800\udfff\x1c"
)


@st.composite
def mutated_demo(draw: st.DrawFn) -> str:
    text = list(segql.demo.source())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "swap"]))
        pos = draw(st.integers(0, max(0, len(text) - 1)))
        if op == "insert":
            text[pos:pos] = list(draw(st.text(MUTATION_CHARS, min_size=1, max_size=4)))
        elif op == "delete" and text:
            del text[pos : pos + draw(st.integers(1, 20))]
        elif op == "replace" and text:
            text[pos] = draw(st.sampled_from(MUTATION_CHARS))
        elif op == "duplicate":
            text[pos:pos] = text[pos : pos + draw(st.integers(1, 40))]
        elif op == "swap" and len(text) > 1:
            other = draw(st.integers(0, len(text) - 1))
            text[pos], text[other] = text[other], text[pos]
    return "".join(text)


@settings(FUZZ, max_examples=MUTATION_EXAMPLES)
@given(source=mutated_demo(), params=PARAMS)
def test_mutated_demo_source(source: str, params: Any) -> None:
    customers, orders = demo_data()
    exercise(source, customers, orders, params=params, as_of=segql.demo.AS_OF)


NUMBERS = st.one_of(
    st.integers(0, 10**40).map(str),
    st.integers(0, 10**40).map(lambda v: f"{v:_}"),
    st.sampled_from(
        ["9223372036854775807", "9223372036854775808", "18446744073709551616", "1" * 400, "1e308", "1e309"]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(abs(f))),
    st.builds("{}e{}".format, st.integers(0, 99), st.integers(-5000, 5000)),
    st.builds("{}{}".format, st.integers(0, 10**25), st.sampled_from("dwmyh")),
)
NUMBER_TEMPLATES = (
    "age > {n}",
    "-{n} < age",
    "feature f = {n} + 1",
    "feature f = visits * {n}",
    "feature f = -{n} - 1",
    "feature f = round(score, {n} % 1000)",
    "feature f = round(visits, -({n} % 1000))",
    "last_seen > -{n}",
    "last_seen >= now - {n}",
    "signup < today + {n}",
    "age in [{n}, 1]",
    "feature f = {n} / 0",
    "feature f = {n} % -1",
    "feature f = abs(-{n})",
    "age between -{n} and {n}",
    "count(orders where qty > {n}) > 0",
    "sum(orders.qty) * {n} > 0",
    "anniversary_within(signup, {n})",
    "feature f = days_since(last_seen) * {n}",
    "param p: int = {n}\nsegment s = age < $p",
    "feature f = case when vip then {n} else -{n} end",
)


@settings(FUZZ, max_examples=NUMBER_EXAMPLES)
@given(template=st.sampled_from(NUMBER_TEMPLATES), number=NUMBERS)
def test_huge_numbers(template: str, number: str) -> None:
    exercise(template.format(n=number), *fuzz_tables_example())


NESTING_SIZES = st.sampled_from([1, 2, 24, 99, 100, 101, HARD_MAX_DEPTH - 1, HARD_MAX_DEPTH, HARD_MAX_DEPTH + 1, 600])
NESTINGS: dict[str, Callable[[int], str]] = {
    "parentheses": lambda n: "(" * n + "age > 1" + ")" * n,
    "not": lambda n: "not " * n + "vip",
    "unary minus": lambda n: "- " * n + "age > 0",
    "or chain": lambda n: " or ".join(["age > 1"] * n),
    "and chain": lambda n: " and ".join(["vip"] * n),
    "sum chain": lambda n: " + ".join(["age"] * n) + " > 0",
    "abs": lambda n: "abs(" * n + "age" + ")" * n + " > 0",
    "coalesce": lambda n: "coalesce(" * n + "age" + ", 1)" * n + " > 0",
    "list": lambda n: "age in " + "[" * n + "1" + "]" * n,
    "case": lambda n: "case when vip then " * n + "1" + " end" * n + " > 0",
    "if": lambda n: "if(vip, " * n + "1" + ", 2)" * n + " > 0",
    "aggregate": lambda n: "count(orders where " + "(" * n + "qty > 1" + ")" * n + ") > 0",
    "aggregate in where": lambda n: "exists(orders where qty > 1 and " * n + "true" + ")" * n,
    "unbalanced open": lambda n: "(" * n + "age > 1",
    "unbalanced close": lambda n: "age > 1" + ")" * n,
    "segments": lambda n: "\n".join(f"segment s{i} = s{i + 1}" for i in range(n)) + f"\nsegment s{n} = vip",
    "segment cycle": lambda n: "\n".join(f"segment s{i} = s{(i + 1) % n}" for i in range(n)),
    "features": lambda n: "\n".join(f"feature f{i} = f{i + 1} + 1" for i in range(n)) + f"\nfeature f{n} = age",
    "long list": lambda n: "age in [" + ", ".join(map(str, range(n * 10))) + "]",
}


@settings(FUZZ, max_examples=NESTING_EXAMPLES)
@given(shape=st.sampled_from(sorted(NESTINGS)), size=NESTING_SIZES)
def test_deep_nesting(shape: str, size: int) -> None:
    exercise(NESTINGS[shape](size), *fuzz_tables_example())


# Every shape just past the default and the hard depth limits; the shapes that
# are cheap to build also 20,000 deep (tests/test_reliability.py has the rest).
EVERY_SHAPE = [
    *((shape, size) for shape in sorted(NESTINGS) for size in (100, 101, HARD_MAX_DEPTH + 1)),
    *((shape, 20_000) for shape in ("parentheses", "not", "unary minus", "list", "unbalanced open")),
]


@pytest.mark.parametrize(("shape", "size"), EVERY_SHAPE)
def test_deep_nesting_every_shape(shape: str, size: int) -> None:
    exercise(NESTINGS[shape](size), *fuzz_tables_example())


# Found by test_huge_numbers: the work of round(x, digits) grows with |digits|
# (Arrow computes 10**digits step by step, in one uninterruptible call), and
# digits beyond the range of a double give wrong answers.
@pytest.mark.parametrize("digits", [307, 308, 309, 400, 10_000, -308, -309, -400, -10_000])
def test_round_to_extreme_digits(digits: int) -> None:
    """Half away from zero to ``digits`` places: many places leave a float as it
    is, many negative places round it to zero (LANGUAGE.md §5)."""
    table = pa.table({"score": [1.5, -123456.25, None]})
    out = segql.compile(f"feature f = round(score, {digits})").evaluate(table)
    assert out.column("f").to_pylist() == ([1.5, -123456.25, None] if digits > 0 else [0.0, -0.0, None])


def test_round_with_huge_digits_is_bounded_work() -> None:
    """docs/security.md, guarantee 3: bounded work.  ``round(score, 10**12)`` must
    answer (a value or a SegqlError) in seconds, not run for most of an hour
    (it is measured in a child process, which is killed if it does not)."""
    code = (
        "import pyarrow as pa, segql\n"
        "try:\n"
        "    segql.compile('feature f = round(score, 1000000000000)').evaluate(pa.table({'score': [1.5, None]}))\n"
        "except segql.SegqlError as exc:\n"
        "    assert not isinstance(exc, segql.InternalError), exc\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("round(score, 1000000000000) was still running after 30 s")
    assert done.returncode == 0, done.stderr


UNICODE = st.text(
    st.characters(codec=None, categories=None)  # every code point, lone surrogates included
    | st.sampled_from(["\u202e", "\u202d", "\u200f", "\u061c", "\u0301", "\u0308", "\x00", "\ud800", "\udc00",
                       "\ufeff", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\U0010ffff", "\u0130", "ß"]),
    min_size=1,
    max_size=6,
)  # fmt: skip
UNICODE_TEMPLATES = (
    "{u}",
    "country = '{u}'",
    'country = "{u}"',
    "`{u}` > 1",
    "segment {u} = vip",
    "feature f{u} = age",
    "country starts with '{u}'",
    "country matches '{u}'",
    "lower(country) = upper('{u}')",
    "length('{u}') > 1",
    "trim('{u}') = country",
    "tags contains '{u}'",
    "$p{u} > 1",
    "country in ['{u}', 'PL']",
    "age > 1 # {u}\nand vip",
    "segment s '{u}' = vip",
    "count(orders where category = '{u}') > 0",
    "first(orders.category by ts) = '{u}'",
    "case country when '{u}' then 1 else 2 end > 1",
    "{u}age > 1",
    "age{u} > 1",
)


@settings(FUZZ, max_examples=UNICODE_EXAMPLES)
@given(template=st.sampled_from(UNICODE_TEMPLATES), text=UNICODE)
def test_unicode(template: str, text: str) -> None:
    exercise(template.replace("{u}", text), *fuzz_tables_example())


# ---------------------------------------------- junk parameters, as_of, data
PARAM_PROGRAMS = (
    "param p: int = 1\nsegment s = age > $p",
    "param p: float\nsegment s = score > $p",
    "param p: string = 'PL'\nsegment s = country = $p",
    "param p: bool\nsegment s = vip = $p",
    "param p: date\nsegment s = signup > $p",
    "param p: timestamp = 2024-01-01T00:00:00Z\nsegment s = last_seen > $p",
    "param p: duration = 30d\nsegment s = last_seen > now - $p",
    "param p: decimal\nsegment s = balance > $p",
    "param countries: list<string> = ['PL']\nsegment s = country in $countries",
    "param p: list<int>\nsegment s = age in $p",
    "param p: list<date>\nsegment s = signup in $p",
    "segment s = age > $p",
    "segment s = country in $p",
    "segment s = country matches $p",
    "segment s = country starts with $p",
    "segment s = tags contains any $p",
    "segment s = last_seen > $p",
    "segment s = anniversary_within(signup, $p)",
    "feature f = round(score, $p)",
    "feature f = $p",
    "feature f = $p + $x",
    "segment s = count(orders where qty > $p) >= $x",
    "feature f = case when vip then $p else $x end",
)
PARAM_KEYS = st.sampled_from(["p", "P", "x", "countries", "unknown", "", "$p", "p ", "ąę"]) | st.text(max_size=4)
JUNK_KEYS = PARAM_KEYS | st.sampled_from([None, 1, 1.5, b"p", ("p",)])


@settings(FUZZ, max_examples=PARAMS_EXAMPLES)
@given(
    source=st.sampled_from(PARAM_PROGRAMS),
    params=st.dictionaries(JUNK_KEYS, param_values() | st.builds(object) | st.dictionaries(st.text(), st.integers()))
    | st.sampled_from([None, [], "p=1", 5, [("p", 1)], {1, 2}]),
)
def test_junk_parameters(source: str, params: Any) -> None:
    exercise(source, *fuzz_tables_example(), params=params)


AS_OF_VALUES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["2026-11-01", "2026-11-01T12:00:00Z", "2026-11-01T12:00:00+14:00", "0001-01-01", "9999-12-31",
                     "9999-12-31T23:59:59.999999-12:00", "0001-01-01T00:00:00+12:00", "now", "", "2026-02-30"]),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=14)),
                                            dt.timezone(dt.timedelta(hours=-12, minutes=-30))])),
    st.sampled_from([dt.datetime.min, dt.datetime.max, dt.datetime.min.replace(tzinfo=dt.UTC),
                     dt.datetime.max.replace(tzinfo=dt.UTC), dt.date.min, dt.date.max, dt.time(1, 2),
                     dt.timedelta(days=1), b"2026-11-01", ["2026-11-01"]]),
)  # fmt: skip
AS_OF_PROGRAMS = (
    "segment s = last_seen >= -30d",
    "segment s = last_seen < now - 1y",
    "segment s = signup > today + 6m",
    "feature f = days_since(last_seen)",
    "feature f = days_until(signup)",
    "segment s = anniversary_within(signup, 7d)",
    "feature f = now",
    "feature f = today - 1d",
    "feature f = now + 2y",
    "segment s = count(orders where ts >= -90d) > 0",
    "feature f = last(orders.ts by ts) - now",
    "feature f = year(now) + month(today) + day_of_week(now) + hour(now)",
    "feature f = date(now - 1h)",
)


@settings(FUZZ, max_examples=AS_OF_EXAMPLES)
@given(source=st.sampled_from(AS_OF_PROGRAMS), as_of=AS_OF_VALUES)
def test_junk_as_of(source: str, as_of: Any) -> None:
    exercise(source, *fuzz_tables_example(), as_of=as_of)


UNSUPPORTED = (
    pa.struct([("a", pa.int64())]),
    pa.binary(),
    pa.large_binary(),
    pa.binary(3),
    pa.map_(pa.string(), pa.int64()),
    pa.list_(pa.struct([("a", pa.int64())])),
    pa.list_(pa.list_(pa.string())),
    pa.large_list(pa.string()),
    pa.list_(pa.int64(), 2),
    pa.dictionary(pa.int8(), pa.int64()),
    pa.time32("s"),
    pa.time64("us"),
    pa.duration("s"),
    pa.month_day_nano_interval(),
    pa.null(),
    pa.float16(),
    pa.decimal256(40, 3),
    pa.date64(),
    pa.string_view(),
    pa.uint64(),
    pa.timestamp("s", tz="+05:00"),
    pa.timestamp("ns", tz="America/New_York"),
    pa.dictionary(pa.int16(), pa.large_string()),
    pa.large_string(),
    pa.bool_(),
)


@st.composite
def junk_columns(draw: st.DrawFn, n: int) -> pa.Array:
    arrow_type = draw(st.sampled_from(UNSUPPORTED))
    if pa.types.is_null(arrow_type):
        return pa.nulls(n)
    # Build from all-null arrays plus, when possible, a cast of small values.
    nulls = pa.nulls(n, arrow_type)
    candidates = [nulls]
    for values in ([1] * n, ["1"] * n, [b"abc"] * n, [{"a": 1}] * n, [[1, 2]] * n, [["a"]] * n, [[("k", 1)]] * n):
        with contextlib.suppress(pa.ArrowException, TypeError, ValueError, OverflowError):
            candidates.append(pa.array(values, arrow_type))
    if pa.types.is_dictionary(arrow_type):
        with contextlib.suppress(pa.ArrowException, TypeError, ValueError):
            candidates.append(pa.array([1] * n, arrow_type.value_type).dictionary_encode())
    return draw(st.sampled_from(candidates))


JUNK_TABLE_PROGRAMS = (
    "segment s = age > 1",
    "segment s = junk is null",
    "segment s = junk > 1",
    "segment s = junk = 'a'",
    "feature f = junk",
    "feature f = coalesce(junk, 1)",
    "segment s = junk contains 'a'",
    "segment s = length(junk) > 1",
    "segment s = count(orders where junk is not null) > 0",
    "feature f = sum(orders.junk)",
    "feature f = first(orders.qty by junk)",
    "feature f = max(orders.junk)",
    "segment s = `customer_id` > 0",
    "segment s = ecommerce.rfm_segment() = 'champions'",
    "feature f = ecommerce.historic_clv()",
)


@settings(FUZZ, max_examples=TABLE_EXAMPLES)
@given(
    source=st.sampled_from(JUNK_TABLE_PROGRAMS),
    data=st.data(),
    where=st.sampled_from(["profile", "orders", "both", "key"]),
    duplicate=st.sampled_from([None, "profile", "orders", "case"]),
    key=st.sampled_from(["customer_id", "junk", "missing", "Customer_ID"]),
)
def test_junk_tables(source: str, data: st.DataObject, where: str, duplicate: str | None, key: str) -> None:
    profile, orders = fuzz_tables_example()
    if where in ("profile", "both"):
        profile = profile.append_column("junk", data.draw(junk_columns(profile.num_rows)))
    if where in ("orders", "both"):
        orders = orders.append_column("junk", data.draw(junk_columns(orders.num_rows)))
    if where == "key":  # the key column itself of an unsupported type
        profile = profile.set_column(0, "customer_id", data.draw(junk_columns(profile.num_rows)))
    if duplicate == "profile":
        profile = profile.append_column("age", profile.column("age"))
    elif duplicate == "orders":
        orders = orders.append_column("qty", orders.column("qty"))
    elif duplicate == "case":
        profile = profile.append_column("AGE", profile.column("age"))
    exercise(source, profile, orders, key=key)


def test_null_typed_related_columns() -> None:
    """A column of Arrow's null type (all values null, as pandas and Parquet write
    an all-None column) behaves as nulls: count_distinct does not count them
    (docs/language.md, aggregates), `first … by` it finds no row."""
    profile = pa.table({"customer_id": [1, 2]})
    orders = pa.table({"customer_id": [1, 1, 2], "qty": [5, 6, 7], "junk": pa.nulls(3)})
    program = segql.compile(
        "feature distinct = count_distinct(orders.junk)\n"
        "feature counted = count(orders.junk)\n"
        "feature first_by = first(orders.qty by junk)"
    )
    out = program.evaluate(profile, key="customer_id", related={"orders": orders})
    assert out.column("distinct").to_pylist() == [0, 0]
    assert out.column("counted").to_pylist() == [0, 0]
    assert out.column("first_by").to_pylist() == [None, None]


NOT_TABLES = st.sampled_from(
    [None, 1, "customers", b"x", [], {}, {"customer_id": [1, 2]}, [{"customer_id": 1}], object(), pa.array([1, 2]),
     pa.chunked_array([[1]]), pa.scalar(1), pa.schema([("age", pa.int64())]), pa.table({}),
     pa.record_batch({"age": [1]}), pa.table({"age": [1]}).to_reader()]
)  # fmt: skip


@settings(FUZZ, max_examples=NOT_A_TABLE_EXAMPLES)
@given(
    data=NOT_TABLES,
    orders=NOT_TABLES | st.just(fuzz_tables_example()[1]),
    related_name=st.sampled_from(["orders", "", 1]),
)
def test_not_a_table(data: Any, orders: Any, related_name: Any) -> None:
    program = segql.compile("segment s = age > 1 and count(orders) >= 0")
    attempt("evaluate(junk)", lambda: program.evaluate(data, key="customer_id", related={related_name: orders}))
    attempt("evaluate(junk)", lambda: program.evaluate(data))
    attempt("check(junk)", lambda: program.check(data))
    attempt("explain(junk)", lambda: program.explain(data, related={related_name: orders}))
    attempt("segql.evaluate(junk)", lambda: segql.evaluate("age > 1", data))
    attempt("why(junk)", lambda: program.why(data, key="customer_id", id=1, related={related_name: orders}))
    profile, _ = fuzz_tables_example()
    attempt("related junk", lambda: program.evaluate(profile, key="customer_id", related={related_name: orders}))
    attempt("related not a mapping", lambda: program.evaluate(profile, key="customer_id", related=data))
