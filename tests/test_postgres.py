"""The PostgreSQL SQL of ``Program.to_sql`` on a real PostgreSQL server: PostgreSQL-specific cases.

The comparisons every engine runs (the random expression and aggregate
batches, every CDNOW window, the RFM file, the demo file, the hand-computed
cases) are in test_engine_agreement.py, on the runners of tests/engines.py
(PostgreSQL's: a throwaway server, tests/pg_server.py, the ``pg_server``
fixture of conftest.py; the tables copied in with the types a PostgreSQL user
would choose, pg_server.load; answers compared bit for bit, the sign of a zero
included).  Here: the loader, disagreements found and minimised, refusals,
session time zones and the exact float sums.  Without a server the tests skip
saying why, or fail under CI.
"""

from __future__ import annotations

import datetime as dt
import math
import os

import pg_server as pg
import pyarrow as pa
import pytest
from engines import AS_OF, FULL, SETTINGS, PostgresRunner, compare, identical, plain
from hypothesis import example, given, settings

import segql


def compare_on_pg(
    server: pg.Server,
    source: str,
    profile: pa.Table,
    key: str,
    related: dict[str, pa.Table],
    *,
    timezone: str = "UTC",
    **options: object,
) -> str:
    """'agree', 'refused' or 'error': ``source`` on PostgreSQL (in a session in
    ``timezone``) against the Arrow engine, bit for bit (engines.compare)."""
    return compare(PostgresRunner(server), source, profile, key, related, zone=timezone, **options)


# ------------------------------------------------------------------ loading
def test_the_loader_keeps_nan_infinities_and_every_type(pg_server) -> None:
    """What the comparisons rest on: values survive the copy into PostgreSQL."""
    import decimal

    table = pa.table(
        {
            "f": pa.array([float("nan"), float("inf"), float("-inf"), -0.0, 0.1, None]),
            "r": pa.array([1.5, None, -2.25, 0.0, 3.0, 4.0], pa.float32()),
            "i8": pa.array([-128, 127, None, 0, 1, 2], pa.int8()),
            "u16": pa.array([0, 65_535, None, 1, 2, 3], pa.uint16()),
            "i": pa.array([-(2**63), 2**63 - 1, None, 0, 1, 2]),
            "s": pa.array(["ąę", "", None, "a\tb", "'\"", "x"]).dictionary_encode(),
            "b": pa.array([True, False, None, True, False, True]),
            "d": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), None, dt.date(2024, 2, 29)] + [None] * 2),
            "t": pa.array(
                [dt.datetime(2024, 3, 31, 1, 2, 3, 456789, tzinfo=dt.UTC), None, *[None] * 4],
                pa.timestamp("us", "Europe/Warsaw"),
            ),
            "n": pa.array([dt.datetime(1969, 12, 31, 23, 59, 59, 999000), None, *[None] * 4], pa.timestamp("ms")),
            "dec": pa.array([decimal.Decimal("-12.50"), None, *[decimal.Decimal("0.01")] * 4], pa.decimal128(9, 2)),
            "l": pa.array([[1, None], [], None, [3], [4], [5]], pa.list_(pa.int64())),
        }
    )
    with pg.session(pg_server, {"t1": table}) as con:
        names, columns = pg.query(con, "SELECT * FROM t1")
    assert names == table.column_names
    for name, got in zip(names, columns, strict=True):
        want = plain(table.column(name))
        if name == "l":
            want = table.column(name).to_pylist()
        assert all(identical(a, b) for a, b in zip(want, got, strict=True)), (name, want, got)


# --------------------------------------------- disagreements found, minimised
@pytest.mark.parametrize(
    ("source", "profile", "params", "expected"),
    [
        # A -0.0 parameter was written CAST(-0.0 AS DOUBLE): the decimal -0.0 is 0, so 0.0 (also in DuckDB).
        ("feature f = $p", {"id": [1]}, {"p": -0.0}, [-0.0]),
        # EXTRACT(HOUR FROM date) is an error in PostgreSQL; a date's hour is 0.
        ("feature f = hour(d - 13m)", {"id": [1, 2], "d": [dt.date(2024, 1, 29), None]}, {}, [0, None]),
    ],
)
def test_minimised_expression_disagreements(pg_server, source, profile, params, expected) -> None:
    table = pa.table(profile)
    out = segql.compile(source).evaluate(table, key="id", params=params, as_of=AS_OF)
    assert [repr(v) for v in out.column("f").to_pylist()] == [repr(v) for v in expected]
    assert compare_on_pg(pg_server, source, table, "id", {}, params=params, as_of=AS_OF) == "agree"


def test_avg_of_integers_is_the_nearest_double_of_the_exact_mean(pg_server) -> None:
    """PostgreSQL's AVG(bigint) is a numeric rounded to 16 decimals: 25 / 11 came
    back as 2.2727272727272725, one double below 25 / 11 (found on CDNOW)."""
    profile = pa.table({"customer_id": [1, 2, 3]})
    orders = pa.table({"customer_id": [1] * 11 + [2], "cds": [3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, None]})
    source = "feature a = avg(orders.cds)"
    out = segql.compile(source).evaluate(profile, key="customer_id", related={"orders": orders})
    assert out.column("a").to_pylist() == [25 / 11, None, None]
    assert compare_on_pg(pg_server, source, profile, "customer_id", {"orders": orders}) == "agree"


def test_a_float_remainder_is_refused_for_postgres() -> None:
    """PostgreSQL has no % of double precision (an error), and its numeric % would
    round the operands: refused by name, as round() of a float."""
    schema = pa.schema([("x", pa.float64()), ("i", pa.int64())])
    for source in ("feature f = x % 2", "feature f = i % 0.5"):
        with pytest.raises(segql.SegqlError, match=r"% of a float has no postgres translation"):
            segql.compile(source).to_sql("postgres", schema=schema)
        assert "%" in segql.compile(source).to_sql("duckdb", schema=schema)
    assert "%" in segql.compile("feature f = i % 2").to_sql("postgres", schema=schema)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_the_answer_does_not_depend_on_the_session_time_zone(pg_server, zone: str) -> None:
    """2024-01-01 03:00 UTC is 2023-12-31 19:00 in Los Angeles: still a member of
    `t >= 2024-01-01` (UTC days); and the program with every time function agrees."""
    from test_sql_time_zones import AS_OF as ZONES_AS_OF
    from test_sql_time_zones import EVERY_TIME_FUNCTION
    from test_sql_time_zones import profile as zones_profile

    profile = pa.table(
        {"id": [1], "t": pa.array([dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))}
    )
    source = "segment s = t >= 2024-01-01"
    assert segql.compile(source).evaluate(profile, key="id").column("s").to_pylist() == [True]
    assert compare_on_pg(pg_server, source, profile, "id", {}, timezone=zone, as_of=AS_OF) == "agree"
    outcome = compare_on_pg(pg_server, EVERY_TIME_FUNCTION, zones_profile(), "id", {}, timezone=zone, as_of=ZONES_AS_OF)
    assert outcome == "agree"


# ------------------------------------------------------------- float sums
FSUM_EXAMPLES = 400 if os.environ.get("SEGQL_LONG") else 120 if FULL else 30
"""Random groups of doubles per run of the exact-sum test (hypothesis, derandomized;
120 under CI, about 75 s; SEGQL_LONG=1 draws 400 random ones)."""


def exact_sum(values: list[float]) -> float:
    """The exact sum rounded once (math.fsum, exact fractions when fsum's partials
    overflow): NaN with a NaN or both infinities, else an infinity if there is
    one; beyond the double range ±inf; an exact zero is +0.0
    (docs/decisions.md, "Float sums")."""
    if any(math.isnan(v) for v in values) or {math.inf, -math.inf} <= set(values):
        return math.nan
    if math.inf in values or -math.inf in values:
        return math.inf if math.inf in values else -math.inf
    try:
        total = math.fsum(values)
    except OverflowError:  # fsum's partials overflowed; the exact sum decides
        from fractions import Fraction

        exact = sum((Fraction(v) for v in values), Fraction(0))
        try:
            total = float(exact)
        except OverflowError:
            total = math.inf if exact > 0 else -math.inf
    return total if total != 0 else 0.0


def _float_groups():  # a hypothesis strategy
    from hypothesis import strategies as st

    money = st.integers(-(10**9), 10**9).map(lambda cents: cents / 100)
    anywhere = st.floats(allow_nan=False, allow_infinity=False)
    subnormal = st.integers(-(2**52), 2**52).map(lambda m: m * 5e-324)
    huge = st.floats(1e306, 1.7976931348623157e308).flatmap(lambda v: st.sampled_from([v, -v]))
    special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, None])
    value = st.one_of(money, money, anywhere, subnormal, huge, special)
    keep = st.booleans()
    group = st.one_of(
        st.lists(st.tuples(money, keep), max_size=12),  # money amounts only: the common case
        st.lists(st.tuples(value, keep), max_size=12),
    )
    return st.lists(group, min_size=1, max_size=8)


@settings(SETTINGS, max_examples=FSUM_EXAMPLES, derandomize=not os.environ.get("SEGQL_LONG"))
@given(groups=_float_groups())
@example(groups=[[(0.0, False), (5e-324, True)]])  # avg 2.5e-324 rounds to 0: PostgreSQL raised "underflow"
def test_float_sums_are_the_exact_sum_rounded_once_on_postgres(pg_server, groups) -> None:
    """sum/avg of doubles in PostgreSQL's SQL are math.fsum of the group bit for
    bit (the exact sum rounded once), filtered or not: money amounts, doubles of
    every exponent, subnormals, ±0, sums beyond the double range, NaN, ±inf, nulls."""
    ids = list(range(1, len(groups) + 2))  # the last customer has no orders
    customer, amount, keep = [], [], []
    for i, group in zip(ids, groups, strict=False):
        for v, k in group:
            customer.append(i)
            amount.append(v)
            keep.append(k)
    profile = pa.table({"customer_id": ids})
    orders = pa.table(
        {"customer_id": pa.array(customer, pa.int64()), "amount": pa.array(amount, pa.float64()), "keep": keep}
    )
    source = (
        "feature s = sum(orders.amount)\nfeature a = avg(orders.amount)\n"
        "feature sk = sum(orders.amount where orders.keep)\nfeature ak = avg(orders.amount where orders.keep)"
    )
    sql = segql.compile(source).to_sql(
        "postgres", schema=profile.schema, related={"orders": orders.schema}, key="customer_id"
    )
    with pg.session(pg_server, {"profiles": profile, "orders": orders}) as con:
        names, columns = pg.query(con, sql)
    got = {name: dict(zip(columns[names.index("customer_id")], col, strict=True)) for name, col in zip(names, columns)}
    for i in ids:
        group = groups[i - 1] if i <= len(groups) else []
        for suffix, rows in (("", group), ("k", [(v, k) for v, k in group if k])):
            values = [v for v, _ in rows if v is not None]
            total = exact_sum(values)
            mean = total / len(values) if values else None
            # pg.query reads a NaN as "NaN"
            total, mean = (("NaN" if x is not None and math.isnan(x) else x) for x in (total, mean))
            assert identical(got["s" + suffix][i], total), (i, suffix, values, got["s" + suffix][i], total)
            assert identical(got["a" + suffix][i], mean), (i, suffix, values, got["a" + suffix][i], mean)


# ---------------------------------------------------------------- matches (RE2)
REGEX_STRINGS = [
    "abc", "été", "ab٣", "٣", "a\nb", "a\rb", "tab\there", "x y", "Ł", "under_score", "",
    "a\u00a0b", "a\u2028b", "\u000bv", "x\b", "word.", "a-b", "Ａ", "A.b", "\U0001d7d8", "a\u0085b", None,
]  # fmt: skip
REGEX_PATTERNS = [
    r"^\w+$", r"\w", r"^\d+$", r"\d", r"\D", r"\W", r"^\W", r"\s", r"\S", r"^\S+$", r"\bb", r"a\b", r"\Bb",
    r"b\B", r"\b", r"^.+$", r"a.b", r"[^a]", r"^[^b]+$", r"[\w]+$", r"^[\d\s]+$", r"^[[:alpha:]]+$",
    r"[[:space:]]", r"[[:punct:]]", r"\x41", r"[\x{e9}]", r"^[a-c\-]+$", r"\.", r"x{0}", r"\Qa.b\E",
    r"(?P<n>b)$", r"^(a|é)", r"\x{2028}", r"[^\n]", r"^$", r"\Ac", r"c\z", r"\v", "é", r"[à-ÿ]", r"^.{3}$",
    r"^[\s\w-]{1,3}$", r"[]a]", r"[{}]", r"a{1,}b?", r"\x{1d7d8}", r"(?:a|b)+\b", r"\t", r"[\t]", r"\n$",
]  # fmt: skip


def test_matches_means_re2_on_postgres(pg_server) -> None:
    """PostgreSQL's `~` reads an ARE: locale classes (\\w matches é, \\d ٣),
    \\b a backspace, `.` a newline.  The pattern is translated; each answer
    equals DuckDB's regexp_matches (RE2, written by hand) and the Arrow engine's."""
    import duckdb

    table = pa.table({"id": list(range(len(REGEX_STRINGS))), "s": pa.array(REGEX_STRINGS, pa.string())})
    source = "\n".join(f"segment m{i} = s matches $p{i}" for i in range(len(REGEX_PATTERNS)))
    params = {f"p{i}": p for i, p in enumerate(REGEX_PATTERNS)}
    program = segql.compile(source)
    arrow = program.evaluate(table, key="id", params=params)
    with pg.session(pg_server, {"profiles": table}) as con:
        names, columns = pg.query(con, program.to_sql("postgres", schema=table.schema, key="id", params=params))
    got = dict(zip(names, columns, strict=True))
    assert got["id"] == table.column("id").to_pylist()
    con = duckdb.connect()
    con.register("t", table)
    checked = 0
    for i, p in enumerate(REGEX_PATTERNS):
        rows = con.execute("SELECT COALESCE(regexp_matches(s, ?), FALSE) FROM t ORDER BY id", [p]).fetchall()
        want = [r[0] for r in rows]
        assert got[f"m{i}"] == want, (p, [(s, g, w) for s, g, w in zip(REGEX_STRINGS, got[f"m{i}"], want) if g != w])
        assert arrow.column(f"m{i}").to_pylist() == want, p
        checked += len(want)
    assert checked == len(REGEX_STRINGS) * len(REGEX_PATTERNS)

    # Hand-computed: RE2's classes are ASCII, `.` is not a newline, \b a word boundary.
    def matching(pattern: str) -> list[str]:
        return [s for s, m in zip(REGEX_STRINGS, got[f"m{REGEX_PATTERNS.index(pattern)}"], strict=True) if m]

    assert matching(r"^\w+$") == ["abc", "under_score"]
    assert matching(r"\d") == []
    assert matching("a.b") == ["a\rb", "a\u00a0b", "a\u2028b", "a-b", "a\u0085b"]  # not "a\nb"
    assert matching(r"\bb") == ["a\nb", "a\rb", "a\u00a0b", "a\u2028b", "a-b", "A.b", "a\u0085b"]
    assert matching(r"\s") == ["a\nb", "a\rb", "tab\there", "x y"]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(?i)pl", "flags"),
        ("(?s).", "flags"),
        (r"\pL", r"the escape '\\p'"),
        (r"[\D]", "inside brackets"),
        (r"[[:^alpha:]]", "class"),
        ("a{300}", "at most 255"),
        (r"\C", r"the escape '\\C'"),
    ],
)
def test_a_pattern_without_a_postgres_meaning_is_refused(pattern: str, why: str) -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    program = segql.compile("segment m = s matches $p")
    with pytest.raises(segql.SegqlError, match="has no postgres translation: .*" + why) as caught:
        program.to_sql("postgres", schema=schema, key="id", params={"p": pattern})
    assert (caught.value.line, caught.value.column) == (1, 23)  # at $p
    assert "REGEXP_MATCHES" in program.to_sql("duckdb", schema=schema, key="id", params={"p": pattern})
