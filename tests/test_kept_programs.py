"""Programs compiled for the C kernel and kept across evaluations of one
table (``fused._PROGRAMS``; docs/decisions.md 306), against DuckDB SQL
written by hand: the same table asked again is not compiled again, and
whatever a kept program must not be reused for (another table, a table
freed and its memory reused, another instant, parameter, zone, thread
count, the kernel turned off, a value computed by one evaluation) gives
the answer DuckDB gives.  A kept program holds no reference to the table.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import zoneinfo
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import segql
from segql.engines.arrow import engine, fused, kernels
from segql.engines.arrow.pertable import PerTable

pytestmark = pytest.mark.skipif(kernels.library() is None, reason="no C kernels")

AS_OF = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
ROWS = 20_000

SOURCE = """
param lo: int
segment recent = last_login >= -30d and x > 0.5
segment mid = n between $lo and 40 and country in ["PL", "DE"]
segment old = signup < -365d and not subscribed and city starts with "Ber"
"""


def _sql(as_of: dt.datetime, lo: int, zone: str) -> dict[str, str]:
    """Each segment's condition in DuckDB SQL (dates: local days of ``zone``)."""
    moment = f"TIMESTAMPTZ '{(as_of - dt.timedelta(days=30)).isoformat()}'"
    local_day = as_of.astimezone(zoneinfo.ZoneInfo(zone)).date()
    year_ago = local_day - dt.timedelta(days=365)
    return {
        "recent": f"last_login >= {moment} AND x > 0.5",
        "mid": f"n BETWEEN {lo} AND 40 AND CAST(country AS VARCHAR) IN ('PL', 'DE')",
        "old": f"signup < DATE '{year_ago.isoformat()}' AND NOT subscribed AND starts_with(city, 'Ber')",
    }


def _table(seed: int, rows: int = ROWS) -> pa.Table:
    """Profiles with nulls in every column but the key, in Arrow's memory
    (taken, not NumPy's buffers wrapped), in three chunks."""
    rng = np.random.default_rng(seed)

    def nulls() -> np.ndarray:
        return rng.random(rows) < 0.05

    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp() * 1_000_000)
    span = int((AS_OF - dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1_000_000)
    countries = pa.array(rng.choice(["PL", "DE", "FR", "US"], rows)).dictionary_encode()
    table = pa.table(
        {
            "id": pa.array(np.arange(rows) * 3 + seed),
            "x": pa.array(rng.random(rows), mask=nulls()),
            "n": pa.array(rng.integers(0, 60, rows), mask=nulls()),
            "country": countries,
            "last_login": pa.array(start + rng.integers(0, span, rows), pa.timestamp("us", tz="UTC"), mask=nulls()),
            "signup": pa.array(rng.integers(19_000, 20_400, rows).astype(np.int32), pa.date32(), mask=nulls()),
            "subscribed": pa.array(rng.random(rows) < 0.5, mask=nulls()),
            "city": pa.array(rng.choice(["Berlin", "Bergen", "Bern", "Paris", "Kraków"], rows), mask=nulls()),
        }
    )
    order = pa.array(np.arange(rows))
    cut = [0, rows // 3, rows // 3 + 7, rows]
    return pa.concat_tables([table.take(order.slice(a, b - a)) for a, b in itertools.pairwise(cut)])


def _duck(table: pa.Table, sql: str) -> list[Any]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", table)
    return [row[0] for row in con.execute(sql).fetchall()]


def _check(
    program: segql.Program, table: pa.Table, as_of: dt.datetime = AS_OF, lo: int = 10, zone: str = "UTC", **kw: Any
) -> None:
    """Counts, member ids and flags of every segment equal DuckDB's."""
    options: dict[str, Any] = {"as_of": as_of, "params": {"lo": lo}, "time_zone": zone, **kw}
    sql = _sql(as_of, lo, zone)
    counts = program.count(table, **options)
    flags = program.evaluate(table, **options)
    for name, where in sql.items():
        ids = _duck(table, f"SELECT id FROM t WHERE {where} ORDER BY id")
        assert counts[name] == len(ids), name
        assert program.members(table, name, key="id", **options).to_pylist() == ids, name
        assert flags.column(name).to_pylist() == _duck(table, f"SELECT COALESCE({where}, false) FROM t ORDER BY id")


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No program kept before the test; each compilation for the C kernel noted."""
    monkeypatch.setattr(fused, "_PROGRAMS", PerTable())
    calls: list[int] = []
    original: Callable[..., Any] = fused.Program.of.__func__  # type: ignore[attr-defined]

    def noted(cls: type[fused.Program], *args: Any, **kw: Any) -> fused.Program | None:
        calls.append(1)
        program: fused.Program | None = original(cls, *args, **kw)
        return program

    monkeypatch.setattr(fused.Program, "of", classmethod(noted))
    return calls


def test_a_table_asked_again_is_not_compiled_again(compiled: list[int]) -> None:
    program = segql.compile(SOURCE)
    table = _table(1)
    _check(program, table)
    first = len(compiled)
    assert first and fused._PROGRAMS
    for _ in range(2):
        _check(program, table)
    assert len(compiled) == first


def test_other_tables_instants_parameters_and_zones(compiled: list[int]) -> None:
    program = segql.compile(SOURCE)
    a, b = _table(1), _table(2)
    later = AS_OF + dt.timedelta(days=20, hours=21)
    for table in (a, b, a, b):
        _check(program, table)
        _check(program, table, as_of=later)
        _check(program, table, lo=25)
        _check(program, table, as_of=dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC), zone="Europe/Warsaw")


def test_freed_tables_memory_used_again(compiled: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables freed and others made in their place (often at the same
    addresses): the kept programs are not used for them, nor for another
    table whose object id is the same (every id is 0 here)."""
    program = segql.compile(SOURCE)
    for seed in range(3):
        table = _table(seed)
        _check(program, table)
        del table
        gc.collect()
    monkeypatch.setattr(fused, "id", lambda _: 0, raising=False)
    alive = [_table(seed) for seed in range(3, 6)]  # (a table's programs go with it: kept alive here)
    for table in alive:
        _check(program, table)


def test_threads_parameters_the_kernel_turned_off_and_the_bound(
    compiled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fused, "KERNEL_ROWS_PER_THREAD", 1_000)
    monkeypatch.setattr(fused, "PROGRAMS_KEPT", 2)
    program = segql.compile(SOURCE)
    table = _table(3)
    for threads, lo in ((1, 1), (2, 5), (3, 10), (1, 20), (2, 5)):
        _check(program, table, lo=lo, threads=threads)
        assert len(fused._PROGRAMS) <= 2
    with kernels.disabled():
        _check(program, table)
    _check(program, table)


def test_values_one_evaluation_computed_are_not_kept(compiled: list[int]) -> None:
    """``young`` read by two segments is computed once and enters their
    trees as a bitmap of this evaluation: those trees are not kept."""
    program = segql.compile(
        "feature young = n < 30 and x > 0.2\nsegment a = young and x < 0.9\nsegment b = young or n > 50"
    )
    table = _table(4)
    for _ in range(2):
        counts = program.count(table)
        assert counts["a"] == _duck(table, "SELECT count(*) FROM t WHERE n < 30 AND x > 0.2 AND x < 0.9")[0]
        assert counts["b"] == _duck(table, "SELECT count(*) FROM t WHERE (n < 30 AND x > 0.2) OR n > 50")[0]
    kept = {key[0] for key in fused._PROGRAMS}
    assert not any("young" in str(node) for node in kept)


def test_a_kept_program_holds_no_data(compiled: list[int]) -> None:
    """Once the table is gone its memory is free, though its programs are kept."""
    program = segql.compile(SOURCE)
    gc.collect()
    before = pa.total_allocated_bytes()
    table = _table(5, rows=300_000)
    size = pa.total_allocated_bytes() - before
    assert size > 10_000_000
    _check(program, table)
    assert fused._PROGRAMS
    del table
    gc.collect()
    assert pa.total_allocated_bytes() - before < size // 20
    assert not fused._PROGRAMS  # forgotten with their table


@pytest.mark.parametrize("threads", [2, 3])
def test_member_ids_placed_by_the_last_counts(
    compiled: list[int], monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """A kept program places each thread's member ids after the counts the
    threads before it had at the last call (docs/decisions.md 313); whatever
    those counts say -- right, too few, too many, nonsense -- the ids are
    DuckDB's, in data order, and the counts are then the true ones."""
    monkeypatch.setattr(fused, "KERNEL_ROWS_PER_THREAD", 1_000)
    launches: list[int] = []
    launch = fused.Program._launch

    def noted(self: fused.Program, *args: Any) -> list[int]:
        launches.append(1)
        return launch(self, *args)

    monkeypatch.setattr(fused.Program, "_launch", noted)
    program = segql.compile(SOURCE)
    table = _table(6)
    options: dict[str, Any] = {"as_of": AS_OF, "params": {"lo": 10}, "threads": threads}
    for name, where in _sql(AS_OF, 10, "UTC").items():
        ids = _duck(table, f"SELECT id FROM t WHERE {where} ORDER BY id")
        assert program.members(table, name, key="id", **options).to_pylist() == ids
        kept = [fused._PROGRAMS.get(key, table) for key in list(fused._PROGRAMS) if key[1] == ("truth", "id")]
        [shares] = [p.shares for p in kept if p is not None and p.shares]
        ((rows, used), truth) = next(iter(shares.items()))
        assert rows == ROWS and used == threads and sum(truth) == len(ids) and all(truth)
        guesses = [  # (and the kernel runs it takes)
            (truth, 1),
            ([c + 3 for c in truth], 1),  # more than found: the runs move left
            ([max(0, c - 5) for c in truth], 2),  # fewer: a thread's place is too small, run again
            ([0] * threads, 2),
            ([ROWS] * threads, 1),
            ([-4, *truth[1:]], 2),  # (taken as 0)
        ]
        for guess, runs in guesses:
            shares[rows, used] = guess
            launches.clear()
            assert program.members(table, name, key="id", **options).to_pylist() == ids, (name, guess)
            assert shares[rows, used] == truth
            assert len(launches) == runs
        shares.pop((rows, used))


# ------------------------------------------------------------ key indexes
EVENTS = "segment buyers = count(orders where amount > 50) >= 2 and sum(orders.amount where amount < 90) > 100"


def _orders(keys: np.ndarray, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = 4 * len(keys)
    return pa.table(
        {
            "customer": pa.array(rng.choice(np.append(keys, [-7, 10**9]), n)),
            "amount": pa.array(np.round(rng.random(n) * 100, 2), mask=rng.random(n) < 0.05),
        }
    )


def _buyers(profiles: pa.Table, orders: pa.Table) -> list[Any]:
    con = duckdb.connect()
    con.register("p", profiles)
    con.register("o", orders)
    sql = """
        SELECT p.customer FROM p JOIN (
            SELECT customer FROM o GROUP BY customer
            HAVING count(*) FILTER (WHERE amount > 50) >= 2 AND fsum(amount) FILTER (WHERE amount < 90) > 100
        ) m ON m.customer = p.customer ORDER BY p.customer"""
    return [row[0] for row in con.execute(sql).fetchall()]


@pytest.fixture
def indexes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No key index kept before the test; each one built noted."""
    monkeypatch.setattr(engine, "_INDEXES", PerTable())
    built: list[int] = []
    original = engine.KeyIndex

    def noted(*args: Any) -> Any:
        built.append(1)
        return original(*args)

    monkeypatch.setattr(engine, "KeyIndex", noted)
    return built


def _profiles(keys: np.ndarray, key_type: pa.DataType | None = None) -> pa.Table:
    return pa.table({"customer": pa.array(keys, key_type or pa.int64()), "n": pa.array(np.arange(len(keys)))})


def test_a_key_index_kept_while_its_table_lives(indexes: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    program = segql.compile(EVENTS)
    a, b = np.arange(5_000) + 100, np.arange(6_000) * 2 + 7
    profiles_a, profiles_b = _profiles(a), _profiles(b)
    orders_a, orders_b = _orders(a, 1), _orders(b, 2)

    def members(profiles: pa.Table, orders: pa.Table) -> list[Any]:
        return program.members(profiles, "buyers", key="customer", related={"orders": orders}).to_pylist()

    for _ in range(2):
        assert members(profiles_a, orders_a) == _buyers(profiles_a, orders_a)
    assert len(indexes) == 1  # built once for the two evaluations
    assert members(profiles_b, orders_b) == _buyers(profiles_b, orders_b)
    assert members(profiles_a, orders_b) == _buyers(profiles_a, orders_b)
    assert len(indexes) == 2
    monkeypatch.setattr(engine, "id", lambda _: 0, raising=False)  # every table's id the same
    alive = [(_profiles(keys), _orders(keys, seed)) for keys, seed in ((a, 3), (b, 4), (a + 1, 5))]
    for profiles, orders in alive:
        assert members(profiles, orders) == _buyers(profiles, orders)
    del profiles, profiles_a, profiles_b, alive
    gc.collect()
    assert not engine._INDEXES  # gone with their tables


def test_key_indexes_not_kept(indexes: list[int]) -> None:
    """A key converted (int32 to int64) is indexed anew each time; repeated keys are reported each time."""
    program = segql.compile(EVENTS)
    keys = np.arange(3_000)
    profiles, orders = _profiles(keys, pa.int32()), _orders(keys, 5)
    for _ in range(2):
        got = program.members(profiles, "buyers", key="customer", related={"orders": orders}).to_pylist()
        assert got == _buyers(profiles, orders)
    assert len(indexes) == 2 and not engine._INDEXES
    twice = _profiles(np.append(keys, 17))
    for _ in range(2):
        with pytest.raises(segql.SegqlError, match="repeats 1 value"):
            program.count(twice, key="customer", related={"orders": orders})
