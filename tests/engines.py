"""One runner per engine, for the agreement suite (test_engine_agreement.py).

A runner runs a compiled program on one engine and reads the answer back:

* ``arrow``: ``Program.evaluate``;
* ``duckdb``: ``Program.to_sql("duckdb")`` run in DuckDB (a session in a given time zone);
* ``spark``: ``segql.spark.evaluate`` on the shared local session (the
  ``spark_session`` fixture of conftest.py: one JVM per test process);
* ``postgres``: ``Program.to_sql("postgres")`` on the throwaway server of
  ``pg_server.py`` (the ``pg_server`` fixture of conftest.py).

``compare`` runs a program on the Arrow engine and on a runner and asserts that
the rows agree (or that the runner refused the program for a documented
reason); ``SIZES`` says how many random programs each engine runs, by default
and under CI / SEGQL_LONG=1.  The hand-computed cases of the suite use
``Runner.run`` and compare with values worked out by hand.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import test_aggregates_cdnow as cdnow_cases
from hypothesis import HealthCheck, settings

import segql

FULL = bool(os.environ.get("CI") or os.environ.get("SEGQL_LONG"))
"""CI or SEGQL_LONG=1: every engine runs as many random programs as the DuckDB suite."""

BATCH_SIZE = 20
"""Random expressions (or aggregate features) per query of the batch tests."""

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

ENGINES = ("arrow", "duckdb", "spark", "postgres")

# What to_sql may refuse (docs/sql.md, "Not translated"); anything else fails.
DOCUMENTED_REFUSALS = (
    "holds nanosecond timestamps",
    "has no SQL translation yet",
)
PG_REFUSALS = (*DOCUMENTED_REFUSALS, "has no postgres translation")
"""What to_sql may refuse for PostgreSQL (docs/sql.md, "Not translated")."""


@dataclass(frozen=True)
class Sizes:
    """How much of the shared suite an engine runs (0 or empty: that test does not run on it)."""

    expressions: int = 0
    """Random single expressions (hypothesis examples), each a feature and a segment."""
    expression_batches: int = 0
    """Batches of BATCH_SIZE random expressions, one query each."""
    aggregates: int = 0
    """Random aggregate programs over a related ``orders`` table."""
    aggregate_batches: int = 0
    """Batches of BATCH_SIZE random aggregate features, one query each."""
    cdnow_windows: tuple[str, ...] = ()
    """The windows of test_aggregates_cdnow.WINDOWS in which every aggregate form runs."""
    rfm_params: tuple[dict[str, object], ...] = ()
    """Parameter values the CDNOW RFM file runs with."""
    demo_customers: int = 0
    """Customers of the demo data set the demo segment file runs on."""


_RFM_PARAMS: tuple[dict[str, object], ...] = ({}, {"champion_orders": 3, "big_ticket": 80.0})
_ALL_WINDOWS = tuple(cdnow_cases.WINDOWS)

SIZES: dict[str, Sizes] = {
    # The Arrow engine is the reference of the random programs (itself checked against
    # independent DuckDB SQL in test_differential_duckdb.py and test_aggregates_differential.py):
    # it runs the hand-computed cases only.
    "arrow": Sizes(),
    # Under CI (or SEGQL_LONG=1) 195 batches of 20: 3,900 random expressions, as many as the DuckDB
    # differential suite's predicates and values; 55 batches of 20: 1,100 aggregate features, as many
    # as its aggregate programs.  About half by default (the default run stays under ten minutes).
    "duckdb": Sizes(
        expressions=700 if FULL else 350,
        expression_batches=195 if FULL else 100,
        aggregates=300 if FULL else 150,
        aggregate_batches=55 if FULL else 28,
        cdnow_windows=_ALL_WINDOWS,
        rfm_params=_RFM_PARAMS,
        demo_customers=2_000,
    ),
    # Under CI (or SEGQL_LONG=1) as many batches as the DuckDB suite; a tenth by default, so
    # that the default run stays under ten minutes on 2 cores (a Spark query costs a few tenths of
    # a second).
    "spark": Sizes(
        expressions=400 if FULL else 40,
        expression_batches=195 if FULL else 15,
        aggregates=200 if FULL else 20,
        aggregate_batches=55 if FULL else 6,
        cdnow_windows=("all", "-90d", "between -365d and -90d", "december 1997", "mixed") if FULL else ("all", "mixed"),
        rfm_params=({},),
        demo_customers=3_000,
    ),
    # The default run is short; under CI or SEGQL_LONG as many batches as the DuckDB suite.
    "postgres": Sizes(
        expression_batches=195 if FULL else 12,
        aggregate_batches=55 if FULL else 6,
        cdnow_windows=_ALL_WINDOWS,
        rfm_params=_RFM_PARAMS,
        demo_customers=2_000,
    ),
}

COUNTS: collections.Counter[str] = collections.Counter()
"""What the random batches compared and what the engines refused (printed by the suite, with -s)."""


# ------------------------------------------------------------- comparisons
def plain(column: pa.ChunkedArray) -> list[object]:
    """Comparable Python values: instants as UTC microseconds, durations as
    (months, microseconds), NaN as a string."""
    if pa.types.is_timestamp(column.type):
        naive = pc.cast(column, pa.timestamp(column.type.unit))
        return pc.cast(pc.cast(naive, pa.timestamp("us")), pa.int64()).to_pylist()
    if pa.types.is_duration(column.type):
        return [
            None if v is None else (0, v) for v in pc.cast(pc.cast(column, pa.duration("us")), pa.int64()).to_pylist()
        ]
    if pa.types.is_interval(column.type):
        return [
            None if v is None else (v.months, v.days * 86_400_000_000 + v.nanoseconds // 1000)
            for v in column.to_pylist()
        ]
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]


def same(a: object, b: object) -> bool:
    """Equal; floats to 1e-9 relative."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def identical(a: object, b: object) -> bool:
    """Equal; floats bit for bit (0.0 and -0.0 apart)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, float) != isinstance(b, float) and not (isinstance(a, bool) or isinstance(b, bool)):
        return False  # a float feature answered as an integer, or the reverse
    return a == b and type(a) is type(b) if isinstance(a, bool) or isinstance(b, bool) else a == b


def assert_same_tables(arrow: pa.Table, sql: pa.Table, key: str) -> None:
    """The rows of ``sql`` are those of ``arrow`` (by ``key``; floats to 1e-9 relative)."""
    arrow, sql = arrow.sort_by(key), sql.sort_by(key)
    assert sql.column_names == arrow.column_names
    for name in arrow.column_names:
        a, b = plain(arrow.column(name)), plain(sql.column(name))
        bad = [(row, x, y) for row, (x, y) in enumerate(zip(a, b, strict=True)) if not same(x, y)]
        assert not bad, f"column {name}: (row, arrow, sql) {bad[:5]}"


def assert_same_rows(expected: pa.Table, names: list[str], columns: list[list[object]], key: str) -> None:
    """The plain ``columns`` are those of ``expected`` (by ``key``; floats bit for bit)."""
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


def spark_safe(table: pa.Table) -> pa.Table:
    """The table in types PySpark's createDataFrame takes (no dictionary strings,
    no unsigned integers, microsecond timestamps); both engines get this one."""
    columns = []
    for column in table.columns:
        t = column.type
        if pa.types.is_dictionary(t):
            column = column.cast(t.value_type)
        elif pa.types.is_unsigned_integer(t):
            column = column.cast(pa.int64())  # raises if a value does not fit: hypothesis tries another
        elif pa.types.is_timestamp(t) and t.unit == "ns":
            column = column.cast(pa.timestamp("us", t.tz), safe=False)  # Spark keeps microseconds
        columns.append(column)
    # One chunk: PySpark 4.3's createDataFrame lost the rows after empty batches.
    return pa.table(columns, names=table.column_names).combine_chunks()


def run_sql(sql: str, tables: dict[str, pa.Table], zone: str = "UTC") -> pa.Table:
    """``sql`` run in a fresh DuckDB session in time zone ``zone``, with ``tables`` registered."""
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    for name, table in tables.items():
        con.register(name, table)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


# ----------------------------------------------------------------- runners
class Refused(Exception):
    """An engine refused the program while starting to run it (the SegqlError is ``error``)."""

    def __init__(self, error: segql.SegqlError) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class Runner:
    """An engine as the suite sees it.  ``translate`` makes the engine's query
    (a SegqlError: to_sql refuses the program); ``execute`` runs it (``Refused``:
    the engine refused it while planning, as Spark does); ``assert_agrees``
    compares the answer with the Arrow engine's; ``run`` gives the answer as
    an Arrow table of the values the engine gives (hand-computed cases)."""

    name: str
    dialect: str | None = None
    """The SQL dialect of the engine's query (None: the Arrow engine)."""
    refusals: tuple[str, ...] = DOCUMENTED_REFUSALS

    @property
    def sizes(self) -> Sizes:
        return SIZES[self.name]

    def prepare(self, table: pa.Table) -> pa.Table:
        """The table as this engine can take it (both engines of a comparison get it)."""
        return table

    def translate(self, program: segql.Program, profile: pa.Table, key: str | None, related, **options) -> Any:
        raise NotImplementedError

    def execute(self, query: Any, profile: pa.Table, related, *, zone: str, shared: str | None) -> Any:
        """The engine's raw answer to ``query``.  ``shared``: a name for tables
        passed again and again (an engine may keep them loaded)."""
        raise NotImplementedError

    def execute_table(self, query: Any, profile: pa.Table, related, *, zone: str) -> pa.Table:
        """The answer to ``query`` as an Arrow table of the values the engine gives."""
        answer = self.execute(query, profile, related, zone=zone, shared=None)
        assert isinstance(answer, pa.Table)
        return answer

    def assert_agrees(self, expected: pa.Table, answer: Any, key: str) -> None:
        assert_same_tables(expected, answer, key)

    def run(
        self,
        program: segql.Program,
        profile: pa.Table,
        *,
        key: str | None,
        related: dict[str, pa.Table] | None = None,
        zone: str = "UTC",
        **options: object,
    ) -> pa.Table:
        """The engine's answer as an Arrow table."""
        profile = self.prepare(profile)
        related = self.related({name: self.prepare(t) for name, t in (related or {}).items()})
        options = self.options(related, options)
        query = self.translate(program, profile, key, related, **options)
        try:
            return self.execute_table(query, profile, related, zone=zone)
        except Refused as exc:
            raise exc.error from None

    def related(self, related: dict[str, pa.Table]) -> dict[str, pa.Table]:
        return dict(related)

    def options(self, related: dict[str, pa.Table], options: dict[str, object]) -> dict[str, object]:
        return dict(options)

    def check_refusal(self, exc: segql.SegqlError) -> None:
        assert not isinstance(exc, segql.InternalError), exc
        assert any(reason in exc.message for reason in self.refusals), exc.message


class ArrowRunner(Runner):
    def __init__(self) -> None:
        super().__init__("arrow")

    def translate(self, program, profile, key, related, **options):
        return lambda: program.evaluate(profile, key=key, related=related or None, **options)

    def execute(self, query, profile, related, *, zone, shared):
        return query()


class SqlRunner(Runner):
    """``to_sql(dialect)`` run by ``execute``."""

    def translate(self, program, profile, key, related, **options):
        schemas = {name: t.schema for name, t in related.items()} or None
        return program.to_sql(self.dialect, schema=profile.schema, related=schemas, key=key, **options)


class DuckDBRunner(SqlRunner):
    def __init__(self) -> None:
        super().__init__("duckdb", dialect="duckdb")

    def execute(self, query, profile, related, *, zone, shared):
        return run_sql(query, {"profiles": profile, **related}, zone)


class PostgresRunner(SqlRunner):
    """Answers read as ``pg_server.query`` reads them (plain values: intervals as
    months and microseconds), compared bit for bit; ``run`` (hand-computed
    cases) reads psycopg's Python values, instants in UTC."""

    def __init__(self, server: Any) -> None:
        super().__init__("postgres", dialect="postgres", refusals=PG_REFUSALS)
        self.server = server
        self.loaded: set[str] = set()

    @contextlib.contextmanager
    def _connection(self, profile, related, zone: str, shared: str | None) -> Iterator[Any]:
        import pg_server as pg

        if shared is None:
            with pg.session(self.server, {"profiles": profile, **related}, zone) as con:
                yield con
            return
        if shared not in self.loaded:  # loaded once into the schema `shared`
            with self.server.connect() as con:
                con.execute(f"DROP SCHEMA IF EXISTS {pg.quote(shared)} CASCADE")
                con.execute(f"CREATE SCHEMA {pg.quote(shared)}")
                for name, table in {"profiles": profile, **related}.items():
                    pg.load(con, name, table, schema=shared)
            self.loaded.add(shared)
        with self.server.connect(zone) as con:
            con.execute(f"SET search_path = {pg.quote(shared)}")
            yield con

    def execute(self, query, profile, related, *, zone, shared):
        import pg_server as pg

        with self._connection(profile, related, zone, shared) as con:
            return pg.query(con, query)

    def execute_table(self, query, profile, related, *, zone):
        with self._connection(profile, related, zone, None) as con, con.cursor() as cur:
            cur.execute(query)
            assert cur.description is not None
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        columns = {name: [row[k] for row in rows] for k, name in enumerate(names)}
        for name, values in columns.items():  # instants as UTC, as the Arrow engine gives them
            columns[name] = [v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v for v in values]
        return pa.table(columns)

    def assert_agrees(self, expected, answer, key):
        names, columns = answer
        assert_same_rows(expected, names, columns, key)


class SparkRunner(Runner):
    """``segql.spark.evaluate`` on DataFrames made from the tables (in the
    session time zone ``zone``, restored to UTC afterwards)."""

    def __init__(self, session: Any) -> None:
        super().__init__("spark", dialect="spark")
        self.session = session
        self.frames: dict[str, dict[str, Any]] = {}

    def prepare(self, table: pa.Table) -> pa.Table:
        return spark_safe(table)

    def translate(self, program, profile, key, related, **options):
        return lambda frames: self._evaluate(program, frames, key, options)

    def _evaluate(self, program, frames, key, options):
        import segql.spark

        profile = frames.pop("profiles")
        return segql.spark.evaluate(program, profile, key=key, related=frames or None, **options)

    def execute(self, query, profile, related, *, zone, shared):
        with self.time_zone(zone):
            tables = {"profiles": profile, **related}
            if shared is None:
                frames = {name: self.session.createDataFrame(t) for name, t in tables.items()}
            else:
                if shared not in self.frames:
                    self.frames[shared] = {name: self.session.createDataFrame(t) for name, t in tables.items()}
                frames = dict(self.frames[shared])
            try:
                df = query(frames)
            except segql.SegqlError as exc:  # the Spark engine refuses while planning
                raise Refused(exc) from exc
            return df.toArrow()

    @contextlib.contextmanager
    def time_zone(self, zone: str) -> Iterator[None]:
        if zone == "UTC":
            yield
            return
        self.session.conf.set("spark.sql.session.timeZone", zone)
        try:
            yield
        finally:
            self.session.conf.set("spark.sql.session.timeZone", "UTC")


def runner(name: str, request: pytest.FixtureRequest) -> Runner:
    """The runner of engine ``name`` (Spark and PostgreSQL through their
    session-scoped fixtures, which skip -- or fail under CI, for PostgreSQL --
    when the engine is missing)."""
    if name == "arrow":
        return ArrowRunner()
    if name == "duckdb":
        return DuckDBRunner()
    if name == "spark":
        session = request.getfixturevalue("spark_session")
        return _cached(("spark", id(session)), lambda: SparkRunner(session))
    if name == "postgres":
        server = request.getfixturevalue("pg_server")
        return _cached(("postgres", id(server)), lambda: PostgresRunner(server))
    raise ValueError(f"no engine {name!r}")


_RUNNERS: dict[tuple[str, int], Runner] = {}


def _cached(key: tuple[str, int], make: Callable[[], Runner]) -> Runner:
    """One runner per session or server (they keep shared tables loaded)."""
    if key not in _RUNNERS:
        _RUNNERS[key] = make()
    return _RUNNERS[key]


# ------------------------------------------------------------------ compare
def compare(
    runner: Runner,
    source: str,
    profile: pa.Table,
    key: str,
    related: dict[str, pa.Table],
    *,
    plugins: object = None,
    zone: str = "UTC",
    shared: str | None = None,
    **options: object,
) -> str:
    """'agree', 'refused' or 'error' (segql itself raised: nothing to compare).

    The Arrow engine's answer is the reference; the runner must give the same
    rows or refuse the program for a documented reason."""
    program = segql.compile(source, plugins=plugins)
    profile = runner.prepare(profile)
    related = runner.related({name: runner.prepare(t) for name, t in related.items()})
    try:
        expected = program.evaluate(profile, key=key, related=related or None, **options)
    except segql.EvaluationError:
        return "error"
    options = runner.options(related, options)
    try:
        query = runner.translate(program, profile, key, related, **options)
    except segql.SegqlError as exc:
        runner.check_refusal(exc)
        return "refused"
    try:
        answer = runner.execute(query, profile, related, zone=zone, shared=shared)
    except Refused as exc:
        runner.check_refusal(exc.error)
        return "refused"
    runner.assert_agrees(expected, answer, key)
    return "agree"


def usable(runner: Runner, program: segql.Program, profile: pa.Table, related=None, **options) -> str:
    """'usable', 'error' (segql raises: an overflow in one program would stop
    the whole batch) or 'refused' (to_sql refuses it for the engine's dialect,
    for a documented reason; any other fails)."""
    try:
        program.evaluate(profile, related=related, **options)
    except segql.EvaluationError:
        return "error"
    schemas = {name: table.schema for name, table in related.items()} if related else None
    try:
        program.to_sql(
            runner.dialect,
            schema=profile.schema,
            related=schemas,
            **options,
        )
    except segql.SegqlError as exc:
        runner.check_refusal(exc)
        return "refused"
    return "usable"


def batch_program(runner: Runner, batch: Any, table: pa.Table) -> tuple[str, dict[str, object]]:
    """One program of the batch's ``usable`` expressions (a feature and a
    segment each), and the parameters it uses."""
    lines, used = [], {}
    for i, expr in enumerate(batch.exprs):
        single = f"feature f{i} = {expr.seg}\nsegment s{i} = ({expr.seg}) is not null"
        program = segql.compile(single)
        wanted = {name.lower() for name in program.params}  # parameter names ignore case
        params = {name: value for name, value in batch.params.items() if name.lower() in wanted}
        outcome = usable(runner, program, table, as_of=batch.as_of, params=params)
        COUNTS[f"{runner.name} expressions {outcome}"] += 1
        if outcome == "usable":
            lines.append(single)
            used.update(params)
    return "\n".join(lines), used


def aggregate_batch_source(runner: Runner, profile: pa.Table, orders: pa.Table, source: str) -> str:
    """The ``usable`` lines of an aggregate program (a sum can overflow), as one program."""
    related = {"orders": orders}
    lines = []
    for line in source.splitlines():
        outcome = usable(runner, segql.compile(line), profile, related, key="customer_id", as_of=AS_OF)
        COUNTS[f"{runner.name} aggregates {outcome}"] += 1
        if outcome == "usable":
            lines.append(line)
    return "\n".join(lines)
