"""The PostgreSQL SQL of ``Program.to_sql`` on a real PostgreSQL server.

A throwaway server (tests/pg_server.py, the ``pg_server`` fixture of
conftest.py) runs the query ``to_sql(dialect="postgres")`` writes for the
random expression and aggregate batches of the DuckDB and Spark agreement
suites (test_sql_backend.py, test_spark.py), every CDNOW window, the RFM file
and the demo file; the tables are copied in with the types a PostgreSQL user
would choose (pg_server.load).  Every row must give what ``Program.evaluate``
gives (the Arrow engine, itself checked against independent DuckDB SQL):
membership booleans, and feature values exactly -- floats bit for bit, the
sign of a zero included -- or ``to_sql`` must refuse the program with a
documented SqlError (docs/sql.md).

The default run is short; with CI set or SEGQL_LONG=1 the batches are as many
as the DuckDB suite's (3,900 expressions, 1,100 aggregate features).  Without
a server the tests skip saying why, or fail under CI.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import os
from collections.abc import Iterator

import pg_server as pg
import pyarrow as pa
import pytest
import test_aggregates_cdnow as cdnow_cases
from hypothesis import example, given, settings
from sqlgen import Kind, scenario_batches
from test_aggregates_differential import scenarios as aggregate_scenarios
from test_sql_backend import (
    AS_OF,
    BATCH_SIZE,
    DOCUMENTED_REFUSALS,
    ROW,
    SETTINGS,
    SQL_AGGREGATE_BATCHES,
    SQL_EXPRESSION_BATCHES,
    cdnow_forms_source,
    plain,
    with_row_order,
)

import segql
from segql import demo

LONG = bool(os.environ.get("CI") or os.environ.get("SEGQL_LONG"))
PG_EXPRESSION_BATCHES = SQL_EXPRESSION_BATCHES if LONG else 12
PG_AGGREGATE_BATCHES = SQL_AGGREGATE_BATCHES if LONG else 6
"""Batches of 20: under CI or SEGQL_LONG as many as test_sql_backend.py runs on DuckDB."""

PG_REFUSALS = (*DOCUMENTED_REFUSALS, "has no postgres translation")
"""What to_sql may refuse for PostgreSQL (docs/sql.md, "Not translated")."""

COUNTS: collections.Counter[str] = collections.Counter()
"""What the run compared and what to_sql refused (printed at the end of the module, with -s)."""


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if COUNTS:
        print("\nPostgreSQL agreement:", dict(sorted(COUNTS.items())))


# ------------------------------------------------------------------ compare
def identical(a: object, b: object) -> bool:
    """Equal; floats bit for bit (0.0 and -0.0 apart)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, float) != isinstance(b, float) and not (isinstance(a, bool) or isinstance(b, bool)):
        return False  # a float feature answered as an integer, or the reverse
    return a == b and type(a) is type(b) if isinstance(a, bool) or isinstance(b, bool) else a == b


def assert_same_rows(expected: pa.Table, names: list[str], columns: list[list[object]], key: str) -> None:
    assert names == expected.column_names
    wanted = [plain(expected.column(name)) for name in names]
    k = names.index(key)

    def by_key(cols: list[list[object]]) -> list[list[object]]:
        keys = cols[k]
        order = sorted(range(len(keys)), key=lambda i: (keys[i] is None, keys[i] if keys[i] is not None else 0))
        return [[col[i] for i in order] for col in cols]

    wanted, got = by_key(wanted), by_key(columns)
    for name, a, b in zip(names, wanted, got, strict=True):
        assert len(a) == len(b), f"column {name}: {len(a)} rows in Arrow, {len(b)} in PostgreSQL"
        bad = [(row, x, y) for row, (x, y) in enumerate(zip(a, b, strict=True)) if not identical(x, y)]
        assert not bad, f"column {name}: (row, arrow, postgres) {bad[:5]}"


def compare_on_pg(
    server: pg.Server,
    source: str,
    profile: pa.Table,
    key: str,
    related: dict[str, pa.Table],
    *,
    loaded: bool = False,
    timezone: str = "UTC",
    **options: object,
) -> str:
    """'agree', 'refused' or 'error' (segql itself raised: nothing to compare).
    ``loaded``: the tables are in the server already (the search path finds them)."""
    program = segql.compile(source)
    related = with_row_order(related)
    try:
        expected = program.evaluate(profile, key=key, related=related or None, **options)
    except segql.EvaluationError:
        return "error"
    try:
        sql = program.to_sql(
            "postgres",
            schema=profile.schema,
            related={n: t.schema for n, t in related.items()} or None,
            key=key,
            row_order=dict.fromkeys(related, ROW),
            **options,
        )
    except segql.SegqlError as exc:
        assert not isinstance(exc, segql.InternalError), exc
        assert any(reason in exc.message for reason in PG_REFUSALS), exc.message
        return "refused"
    if loaded:
        with server.connect() as con:
            con.execute("SET search_path = cdnow")
            names, columns = pg.query(con, sql)
    else:
        with pg.session(server, {"profiles": profile, **related}, timezone) as con:
            names, columns = pg.query(con, sql)
    assert_same_rows(expected, names, columns, key)
    return "agree"


def usable_on_pg(program: segql.Program, profile: pa.Table, related=None, **options) -> str:
    """'usable', 'error' (segql raises: an overflow would stop the whole batch)
    or 'refused' (a documented refusal; any other fails)."""
    try:
        program.evaluate(profile, related=related, **options)
    except segql.EvaluationError:
        return "error"
    schemas = {name: table.schema for name, table in related.items()} if related else None
    try:
        program.to_sql(
            "postgres", schema=profile.schema, related=schemas, row_order=dict.fromkeys(related or {}, ROW), **options
        )
    except segql.SegqlError as exc:
        assert not isinstance(exc, segql.InternalError), exc
        assert any(reason in exc.message for reason in PG_REFUSALS), exc.message
        return "refused"
    return "usable"


# ------------------------------------------------------------ random batches
@settings(SETTINGS, max_examples=PG_EXPRESSION_BATCHES)
@given(batch=scenario_batches(kinds=tuple(Kind), size=BATCH_SIZE))
def test_expression_batches_agree_on_postgres(pg_server, batch) -> None:
    """The random expressions of test_sql_backend.py, 20 to a query: each a
    feature (its value) and a segment (`is not null`)."""
    table = batch.table.append_column("_row", pa.array(range(batch.table.num_rows), pa.int64()))
    lines, used = [], {}
    for i, expr in enumerate(batch.exprs):
        single = f"feature f{i} = {expr.seg}\nsegment s{i} = ({expr.seg}) is not null"
        program = segql.compile(single)
        wanted = {name.lower() for name in program.params}
        params = {name: value for name, value in batch.params.items() if name.lower() in wanted}
        outcome = usable_on_pg(program, table, as_of=batch.as_of, params=params)
        COUNTS[f"expressions {outcome}"] += 1
        if outcome == "usable":
            lines.append(single)
            used.update(params)
    if lines:
        outcome = compare_on_pg(pg_server, "\n".join(lines), table, "_row", {}, as_of=batch.as_of, params=used)
        assert outcome == "agree"
        COUNTS["expressions compared"] += len(lines)


@settings(SETTINGS, max_examples=PG_AGGREGATE_BATCHES)
@given(scenario=aggregate_scenarios(combined=True, size=BATCH_SIZE))
def test_aggregate_batches_agree_on_postgres(pg_server, scenario) -> None:
    """The random aggregate features of test_sql_backend.py, 20 to a query."""
    related = with_row_order({"orders": scenario.orders})
    lines = []
    for line in scenario.source.splitlines():
        outcome = usable_on_pg(segql.compile(line), scenario.profile, related, key="customer_id", as_of=AS_OF)
        COUNTS[f"aggregates {outcome}"] += 1
        if outcome == "usable":
            lines.append(line)
    if lines:
        outcome = compare_on_pg(
            pg_server, "\n".join(lines), scenario.profile, "customer_id", {"orders": scenario.orders}, as_of=AS_OF
        )
        assert outcome == "agree"
        COUNTS["aggregates compared"] += len(lines)


def test_the_demo_segment_file_agrees_on_postgres(pg_server) -> None:
    customers = demo.customers(2_000)
    orders = demo.orders(customers)
    outcome = compare_on_pg(pg_server, demo.source(), customers, "customer_id", {"orders": orders}, as_of=demo.AS_OF)
    assert outcome == "agree"


# ---------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow_on_pg(pg_server) -> tuple[pa.Table, pa.Table]:
    """The CDNOW profiles (and three prospects without orders) and its 69,659
    orders, loaded once into the schema ``cdnow``."""
    profile = cdnow_cases.load_customers()
    prospects = pa.table(
        {
            "customer_id": pa.array(cdnow_cases.PROSPECTS, pa.int64()),
            "first_order_date": pa.nulls(len(cdnow_cases.PROSPECTS), pa.date32()),
            "cohort": pa.array(["prospect"] * len(cdnow_cases.PROSPECTS)),
        }
    )
    profile = pa.concat_tables([profile, prospects])
    orders = cdnow_cases.load_orders()
    with pg_server.connect() as con:
        con.execute("DROP SCHEMA IF EXISTS cdnow CASCADE")
        con.execute("CREATE SCHEMA cdnow")
        pg.load(con, "profiles", profile, schema="cdnow")
        pg.load(con, "orders", with_row_order({"orders": orders})["orders"], schema="cdnow")
    return profile, orders


@pytest.mark.parametrize("window", cdnow_cases.WINDOWS)
def test_cdnow_aggregate_forms_agree_on_postgres(pg_server, cdnow_on_pg, window: str) -> None:
    """Every aggregate form of the CDNOW suite over 69,659 real orders, in every window."""
    profile, orders = cdnow_on_pg
    source = cdnow_forms_source(window)
    outcome = compare_on_pg(
        pg_server, source, profile, "customer_id", {"orders": orders}, loaded=True, as_of=cdnow_cases.AS_OF
    )
    assert outcome == "agree"


@pytest.mark.parametrize("params", [{}, {"champion_orders": 3, "big_ticket": 80.0}])
def test_cdnow_rfm_file_agrees_on_postgres(pg_server, cdnow_on_pg, params) -> None:
    profile, orders = cdnow_on_pg
    outcome = compare_on_pg(
        pg_server,
        cdnow_cases.RFM_FILE,
        profile,
        "customer_id",
        {"orders": orders},
        loaded=True,
        as_of=cdnow_cases.AS_OF,
        params=params,
    )
    assert outcome == "agree"


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
FSUM_EXAMPLES = 400 if os.environ.get("SEGQL_LONG") else 120 if LONG else 30
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
