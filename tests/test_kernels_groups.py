"""Related aggregates in one C pass (csrc/groups.c; docs/decisions.md 270-279, 296-299).

Every case runs with the kernel and inside ``kernels.disabled()`` (the NumPy
twin), on 1 and 2 threads, and is compared bit for bit with hand-written
DuckDB SQL (counts, membership) and ``math.fsum`` per customer (float sums),
never with segql itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import itertools
import math
import struct
from collections import defaultdict
from fractions import Fraction
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segql
from segql.engines.arrow import fused, groups, kernels, keys, related, scratch
from segql.errors import DataError, SegqlError

AS_OF = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
pytestmark = pytest.mark.skipif(kernels.library() is None, reason="no C kernels built")


def bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack("<d", x)


class Spy(list[int]):
    """The rows each kernel pass (or emit: two threads) read, and
    whether each table's kernel result was used (False: the NumPy twin ran)."""

    used: list[bool]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    calls = Spy()
    calls.used = []
    run, emit, reduce_table = groups._run, groups._emit, groups.reduce_table

    def counted(job: Any, layout: Any) -> int:
        calls.append(layout.rows)
        return run(job, layout)

    def emitted(job: Any, layout: Any, first: int, last: int) -> Any:
        calls.append(last - first)
        return emit(job, layout, first, last)

    def used(*args: Any, **kwargs: Any) -> Any:
        result = reduce_table(*args, **kwargs)
        calls.used.append(result is not None)
        return result

    monkeypatch.setattr(groups, "_run", counted)
    monkeypatch.setattr(groups, "_emit", emitted)
    monkeypatch.setattr(groups, "reduce_table", used)
    return calls


INT64 = pa.int64()


def make_tables(key_type: pa.DataType = INT64, m: int = 30_001) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(270)
    n = 2_000
    ids = rng.permutation(np.arange(n) * 3 + 7)  # gaps: keys in range without a customer
    customers = pa.table({"id": pa.array(ids).cast(key_type)})
    k = rng.choice(ids, m)
    k[rng.integers(0, m, 300)] = 8  # in range, no customer
    k[rng.integers(0, m, 50)] = 6_500  # beyond the range
    key_mask = rng.random(m) < 0.01  # null keys
    amount = np.round(rng.lognormal(3, 1, m), 2)
    wide = rng.integers(0, m, 400)
    amount[wide] = rng.standard_normal(400) * 10.0 ** rng.integers(-6, 10, 400)  # cancellation in some groups
    special = rng.integers(0, m, 7)
    amount[special] = [np.nan, np.inf, -np.inf, -0.0, 0.0, np.inf, -np.inf]
    amount_mask = rng.random(m) < 0.03
    day = rng.integers(0, 120, m)
    ts = (np.datetime64("2026-06-01T00:00:00", "s") - day.astype("timedelta64[D]")).astype("datetime64[s]")
    ts_mask = rng.random(m) < 0.02
    qty = rng.integers(-(2**40), 2**40, m)
    orders = pa.table(
        {
            "id": pa.array(k, mask=key_mask).cast(key_type),
            "amount": pa.array(amount, mask=amount_mask),
            "day": pa.array(day, pa.int32()),
            "at": pa.array(ts, pa.timestamp("s", tz="UTC"), mask=ts_mask),
            "flag": pa.array(rng.random(m) < 0.4),
            "qty": pa.array(qty),
            "on": pa.array(day.astype("int32"), pa.int32()).cast(pa.date32()),
        }
    )
    # Chunks of uneven lengths, one a slice (offsets into its buffers and bitmaps).
    pieces = [orders.slice(0, 7_003), orders.slice(7_003, 13).combine_chunks(), orders.slice(7_016)]
    sliced = pa.concat_tables([pa.concat_tables([orders.slice(0, 3), p]).slice(3) for p in pieces])
    return customers, sliced


SOURCE = """
feature recent = count(orders where at >= -30d)
feature spent = sum(orders.amount where at >= -90d)
feature spent_all = sum(orders.amount)
feature flagged = count(orders where flag and day < 100)
feature counted = count(orders.amount where day >= 10)
feature any_late = exists(orders where day > 110)
feature mean = avg(orders.amount where flag)
feature qty_sum = sum(orders.qty where day <= 60)
feature qty_mean = avg(orders.qty)
feature odd = count(orders where day % 2 = 1)
feature dated = count(orders where on >= 1970-02-01)
segment busy = count(orders where at >= -30d) >= 2 and sum(orders.amount where at >= -90d) > 200
"""


def reference(customers: pa.Table, orders: pa.Table) -> dict[str, list[Any]]:
    """Counts by DuckDB; float sums and means by math.fsum per customer; integer sums by Python ints."""
    flat = orders.combine_chunks()  # noqa: F841 (read by DuckDB)
    sql = """
        SELECT c.id,
               count(o.id) FILTER (WHERE o.at >= TIMESTAMPTZ '2026-05-02 00:00:00+00') AS recent,
               count(o.id) FILTER (WHERE o.flag AND o.day < 100) AS flagged,
               count(o.amount) FILTER (WHERE o.day >= 10) AS counted,
               count(o.id) FILTER (WHERE o.day > 110) > 0 AS any_late,
               count(o.id) FILTER (WHERE o.day % 2 = 1) AS odd,
               count(o.id) FILTER (WHERE o.on >= DATE '1970-02-01') AS dated,
               coalesce(sum(o.qty::HUGEINT) FILTER (WHERE o.day <= 60), 0) AS qty_sum,
               sum(o.qty::HUGEINT) AS qty_total, count(o.qty) AS qty_n
        FROM customers c LEFT JOIN flat o ON o.id = c.id
        GROUP BY c.id"""
    rows = {r[0]: r[1:] for r in duckdb.sql(sql).fetchall()}
    ids = customers.column("id").to_pylist()
    out: dict[str, list[Any]] = defaultdict(list)
    names = ("recent", "flagged", "counted", "any_late", "odd", "dated", "qty_sum")
    for k in ids:
        for name, value in zip(names, rows[k], strict=False):
            out[name].append(int(value) if name == "qty_sum" else value)
        total, n = rows[k][-2:]
        out["qty_mean"].append(None if n == 0 else float(int(total)) / n if abs(int(total)) < 2**53 else None)
    spent: dict[Any, list[float]] = defaultdict(list)
    spent_all: dict[Any, list[float]] = defaultdict(list)
    flagged: dict[Any, list[float]] = defaultdict(list)
    cut = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    columns = [orders.column(c).to_pylist() for c in ("id", "amount", "at", "flag")]
    for k, a, at, flag in zip(*columns, strict=True):
        if k is None or a is None:
            continue
        spent_all[k].append(a)
        if at is not None and at >= cut:
            spent[k].append(a)
        if flag:
            flagged[k].append(a)

    def fsum(values: list[float]) -> float:
        if any(math.isnan(v) for v in values) or (math.inf in values and -math.inf in values):
            return math.nan
        if math.inf in values or -math.inf in values:
            return math.inf if math.inf in values else -math.inf
        return math.fsum(values) + 0.0

    out["spent"] = [fsum(spent[k]) for k in ids]
    out["spent_all"] = [fsum(spent_all[k]) for k in ids]
    out["mean"] = [fsum(flagged[k]) / len(flagged[k]) if flagged[k] else None for k in ids]
    out["busy"] = [n >= 2 and s > 200 for n, s in zip(out["recent"], out["spent"], strict=True)]
    return out


def same_floats(got: list[Any], expected: list[Any]) -> bool:
    def key(v: Any) -> Any:
        return "nan" if v is not None and math.isnan(v) else bits(v)

    return [key(v) for v in got] == [key(v) for v in expected]


def check(result: pa.Table, expected: dict[str, list[Any]]) -> None:
    for name in ("recent", "flagged", "counted", "any_late", "odd", "dated", "qty_sum", "busy"):
        assert result.column(name).to_pylist() == expected[name], name
    for name in ("spent", "spent_all", "mean"):
        assert same_floats(result.column(name).to_pylist(), expected[name]), name
    means = result.column("qty_mean").to_pylist()
    assert [m for m, e in zip(means, expected["qty_mean"], strict=True) if e is not None] == [
        e for e in expected["qty_mean"] if e is not None
    ]


def identical(a: pa.Table, b: pa.Table) -> None:
    """The same columns, floats bit for bit (NaN and -0.0 too), nulls in the same rows."""
    assert a.column_names == b.column_names
    for name in a.column_names:
        left, right = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if pa.types.is_floating(left.type):
            left, right = (
                pa.Array.from_buffers(pa.uint64(), len(x), x.buffers(), offset=x.offset) for x in (left, right)
            )
        assert left.equals(right), name


@pytest.mark.parametrize("key_type", [pa.int64(), pa.int32(), pa.int16(), pa.uint32()])
def test_the_pass_agrees_with_duckdb_and_fsum_bit_for_bit(
    key_type: pa.DataType, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys of several widths (some without a customer, some null), null
    values, NaN, ±inf, -0.0 and magnitudes from 1e-6 to 1e10 in sums, nested and
    compound wheres, a where the kernel takes as a bitmap (``day % 2 = 1``),
    chunked and sliced columns: the C pass, the NumPy twin, 1 and 2 threads
    (each emitting half the rows, then adding half the customers), all the
    same bits, and those of the references."""
    customers, orders = make_tables(key_type)
    expected = reference(customers, orders)
    monkeypatch.setattr(groups, "PARALLEL_ROWS", 900)  # (2,000 customers: rounded in two ranges too)
    program = segql.compile(SOURCE)
    options: dict[str, Any] = dict(key="id", related={"orders": orders}, as_of=AS_OF)
    with_kernel = [program.evaluate(customers, threads=t, **options) for t in (1, 2)]
    half = orders.num_rows // 2  # (the two halves emitted at once, noted in either order)
    assert spy[0] == orders.num_rows and sorted(spy[1:]) == sorted([half, orders.num_rows - half])
    assert spy.used == [True, True]
    with kernels.disabled():
        twin = [program.evaluate(customers, threads=t, **options) for t in (1, 2)]
    assert len(spy) == 3
    check(with_kernel[0], expected)
    for other in (*with_kernel[1:], *twin):
        identical(with_kernel[0], other)
    count = program.count(customers, "busy", threads=2, **options)
    assert count == sum(expected["busy"])


COMPARED = """
segment busy = count(orders where at >= -30d) >= 2 and sum(orders.amount where at >= -90d) > 200
segment mid = avg(orders.amount where flag) between 20 and 60 or count(orders where flag and day < 100) < 3
segment calm = not (sum(orders.amount) > 1000) and sum(orders.qty where day <= 60) != 0
feature either = count(orders where at >= -30d) > 1 or avg(orders.amount where flag) < 30
"""


def _above(x: float | None, bound: float) -> bool | None:
    return None if x is None else x > bound  # (NaN > bound: false)


def _kleene_or(a: bool | None, b: bool | None) -> bool | None:
    return True if a is True or b is True else None if a is None or b is None else False


def test_comparisons_of_aggregates_run_in_the_fused_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts, sums and means compared with constants (``between``, ``not``,
    ``or``, a mean that is null without rows, NaN and infinite sums) are
    leaves of the fused trees' C kernel (decisions 309): counts, member ids,
    flags and a three-valued feature as the references say, on 1 and 2
    threads and on the NumPy path."""
    customers, orders = make_tables()
    ref = reference(customers, orders)
    ids = customers.column("id").to_pylist()
    mean_between = [None if m is None else 20 <= m <= 60 for m in ref["mean"]]  # (NaN: false)
    expected = {
        "busy": ref["busy"],
        "mid": [_kleene_or(b, f < 3) is True for b, f in zip(mean_between, ref["flagged"], strict=True)],
        "calm": [not (s > 1000) and q != 0 for s, q in zip(ref["spent_all"], ref["qty_sum"], strict=True)],
    }
    either = [
        _kleene_or(r > 1, None if m is None else not _above(m, 30) and not math.isnan(m) and m != 30)
        for r, m in zip(ref["recent"], ref["mean"], strict=True)
    ]
    monkeypatch.setattr(fused, "KERNEL_ROWS_PER_THREAD", 500)  # (2,000 customers: rows split over the threads)
    program = segql.compile(COMPARED)
    options: dict[str, Any] = dict(key="id", related={"orders": orders}, as_of=AS_OF)
    launched: list[int] = []
    original = fused.Program._launch

    def noted(self: fused.Program, rows: int, threads: int, *outputs: Any) -> Any:
        launched.append(rows)
        return original(self, rows, threads, *outputs)

    monkeypatch.setattr(fused.Program, "_launch", noted)
    for threads in (1, 2):
        for disabled in (False, True):
            with kernels.disabled() if disabled else contextlib.nullcontext():
                flags = program.evaluate(customers, threads=threads, **options)
                counts = program.count(customers, threads=threads, **options)
                for name, want in expected.items():
                    assert flags.column(name).to_pylist() == want, (name, threads, disabled)
                    assert counts[name] == sum(want), name
                    members = program.members(customers, name, threads=threads, **options).to_pylist()
                    assert members == [k for k, w in zip(ids, want, strict=True) if w], name
                assert flags.column("either").to_pylist() == either
            if not disabled:
                assert launched, "the fused kernel did not run"
                launched.clear()
    assert not launched  # (none on the NumPy path)


def test_sparse_keys_take_the_hashed_path(spy: Spy) -> None:
    """Keys far apart (no dense index): the kernel is not used; same answers."""
    customers = pa.table({"id": pa.array([1, 10**15, -(10**15)])})
    orders = pa.table({"id": pa.array([1, 1, 10**15, 5]), "amount": pa.array([0.1, 0.2, 0.3, 9.0])})
    program = segql.compile("feature s = sum(orders.amount)\nfeature n = count(orders)")
    got = program.evaluate(customers, key="id", related={"orders": orders})
    assert spy == []
    assert got.column("n").to_pylist() == [2, 1, 0]
    assert [bits(v) for v in got.column("s").to_pylist()] == [bits(math.fsum([0.1, 0.2])), bits(0.3), bits(0.0)]


def test_more_filters_or_aggregates_than_bits_take_the_numpy_path(spy: Spy) -> None:
    """33 wheres (a row has 32 filter bits), or 17 avgs (34 kernel aggregates:
    a record has 32 bits): the NumPy path, the same answers."""
    customers = pa.table({"id": pa.array([1, 2])})
    orders = pa.table({"id": pa.array([1, 1, 2]), "day": pa.array([1, 5, 9])})
    wheres = segql.compile("\n".join(f"feature f{k} = count(orders where day > {k})" for k in range(33)))
    got = wheres.evaluate(customers, key="id", related={"orders": orders})
    assert [got.column(f"f{k}").to_pylist() for k in (0, 4, 8)] == [[2, 1], [1, 1], [0, 1]]
    means = segql.compile("\n".join(f"feature a{k} = avg(orders.day where day >= -{k})" for k in range(17)))
    got = means.evaluate(customers, key="id", related={"orders": orders})
    assert [got.column(f"a{k}").to_pylist() for k in (0, 16)] == [[3.0, 9.0], [3.0, 9.0]]
    assert spy == []


def test_an_empty_or_unmatched_related_table_gives_the_empty_values(spy: Spy) -> None:
    customers = pa.table({"id": pa.array([3, 1, 2])})
    program = segql.compile(
        "feature s = sum(orders.amount where day > 1)\nfeature n = count(orders)\nfeature a = avg(orders.amount)"
    )
    schema = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("day", pa.int64())])
    for orders in (schema.empty_table(), pa.table({"id": [9, 9], "amount": [1.0, 2.0], "day": [5, 6]}, schema)):
        for threads in (1, 2):
            got = program.evaluate(customers, key="id", related={"orders": orders}, threads=threads)
            assert got.column("s").to_pylist() == [0.0] * 3
            assert got.column("n").to_pylist() == [0] * 3
            assert got.column("a").to_pylist() == [None] * 3
    assert spy  # (the kernel ran, on the non-empty table)


def test_extreme_sums_round_once(spy: Spy) -> None:
    """Sums that leave the double range in between, or end beyond it, or in
    the subnormals: math.fsum's bits (the rounding of the 128-bit sum)."""
    groups_values = [
        [1.7e308, 1.7e308, -1.7e308],  # beyond the range in between: 1.7e308
        [1.7e308, 1.7e308],  # beyond: inf
        [-1.7e308, -1.7e308],
        [5e-324, 5e-324, 5e-324],
        [2**-1070, -(2**-1074)],
        [0.1] * 10,
        [1e16, 1.0, -1e16],
        [-0.0, -0.0],
        [2.0**53, 1.0, 1.0],
        [2.0**53, 1.0],  # a tie: to even
        [1.0 + 2**-52, 2**-53],
    ]
    program = segql.compile("feature s = sum(orders.amount)")
    customers = pa.table({"id": pa.array([0, 1])})
    for values in groups_values:
        # One customer's values (a column's values choose the window, so one group a table).
        orders = pa.table({"id": pa.array([0] * len(values)), "amount": pa.array(values)})
        spy.clear()
        spy.used.clear()
        got = program.evaluate(customers, key="id", related={"orders": orders}).column("s").to_pylist()
        assert spy == [len(values)] and spy.used == [True]
        with kernels.disabled():
            twin = program.evaluate(customers, key="id", related={"orders": orders}).column("s").to_pylist()
        try:
            expected = math.fsum(values) + 0.0
        except OverflowError:  # (beyond the range in between) the exact sum, rounded once
            exact = sum(map(Fraction, values), Fraction(0))
            expected = float(exact) if abs(exact) < 2**1024 - 2**970 else math.inf if exact > 0 else -math.inf
        assert [bits(v) for v in got] == [bits(v) for v in twin] == [bits(expected), bits(0.0)], values


def _nearest(total: int, lo: int) -> float:
    """The double nearest to ``total * 2**lo`` (ties to even), ±inf beyond the range."""
    exact = Fraction(total) * Fraction(2) ** lo
    if abs(exact) >= 2**1024 - 2**970:  # rounds beyond the largest double
        return math.inf if exact > 0 else -math.inf
    return float(exact)  # (Python rounds a fraction to nearest, ties to even)


def test_the_rounding_of_128_bit_sums() -> None:
    """``segql_groups_round`` against exact rational rounding: sums of every
    width up to 127 bits, ties (the bit below the 53 kept ones set, the rest
    zero) and just off ties, negative sums, zero, at windows whose result is
    normal, subnormal, below the smallest subnormal and beyond the largest double."""
    rounding = kernels.function(
        "segql_groups_round", None, [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
    )
    rng = np.random.default_rng(11)
    sums = [0, 1, -1, 2**53 + 1, 2**54 + 2, 2**54 + 6, -(2**126) + 1, 2**126 + 2**73, 2**126 + 2**73 + 1]
    for width in range(1, 128):
        for _ in range(6):
            top = 1 << (width - 1)
            value = top | int(rng.integers(0, 2**62)) << max(0, width - 63) if width > 1 else 1
            value &= (1 << width) - 1
            sums.append(value if rng.random() < 0.5 else -value)
        if width > 54:  # a tie and its neighbours
            tie = (1 << (width - 1)) | (1 << (width - 54)) | (int(rng.integers(0, 2**52)) << (width - 53))
            sums += [tie, tie + 1, tie - 1, -tie]
    n = len(sums)
    low = np.array([v & (2**64 - 1) for v in sums], np.uint64)
    high = np.array([v >> 64 for v in sums], np.int64)
    pairs = np.empty(2 * n, np.int64)
    pairs[0::2], pairs[1::2] = low.view(np.int64), high
    out = np.empty(n, np.float64)
    for lo in (-1100, -1074, -1040, -1022, -1000, -300, -45, 0, 52, 500, 896, 900, 1000):
        rounding(kernels.address(pairs), kernels.address(pairs) + 8, None, n, lo, kernels.address(out))
        assert [bits(v) for v in out] == [bits(_nearest(v, lo)) for v in sums], lo


def test_values_outside_the_sampled_window_fall_back_to_numpy(spy: Spy) -> None:
    """The window of a float sum comes from a sample of its first values; a
    later value far outside it makes the kernel give up (the NumPy twin runs):
    the same exact sums."""
    rng = np.random.default_rng(271)
    m = 20_000
    amount = np.round(rng.lognormal(3, 1, m), 2)
    amount[-5:] = [1e-300, 1e300, 3e-200, -1e300, 7.5]
    customers = pa.table({"id": pa.array(np.arange(50))})
    k = rng.integers(0, 50, m)
    orders = pa.table({"id": pa.array(k), "amount": pa.array(amount)})
    program = segql.compile("feature s = sum(orders.amount)")
    got = program.evaluate(customers, key="id", related={"orders": orders})
    assert spy and spy.used == [False]  # the kernel ran, found misfits, and the twin answered
    sums: dict[int, list[float]] = defaultdict(list)
    for key, a in zip(k.tolist(), amount.tolist(), strict=True):
        sums[key].append(a)
    assert [bits(v) for v in got.column("s").to_pylist()] == [bits(math.fsum(sums[i]) + 0.0) for i in range(50)]


def test_integer_sums_that_overflow_are_an_error() -> None:
    customers = pa.table({"id": pa.array([1, 2])})
    orders = pa.table({"id": pa.array([1, 1, 2]), "qty": pa.array([2**62, 2**62, 5])})
    program = segql.compile("feature s = sum(orders.qty)\nfeature a = avg(orders.qty)")
    for disabled in (False, True):
        with (
            kernels.disabled() if disabled else contextlib.nullcontext(),
            pytest.raises(SegqlError, match="integer overflow in sum"),
        ):
            program.evaluate(customers, key="id", related={"orders": orders})
    ok = segql.compile("feature a = avg(orders.qty)").evaluate(customers, key="id", related={"orders": orders})
    assert ok.column("a").to_pylist() == [2.0**62, 5.0]


def test_the_key_index_is_scattered_in_c() -> None:
    """The C scatter gives the twin's direct-address table; repeated keys
    are the same error; null profile keys have no slot."""
    values = pa.chunked_array([[7, 3, None, 9], [4, 12]])
    index = keys.KeyIndex("id", values)
    with kernels.disabled():
        twin = keys.KeyIndex("id", values)
    assert index._slots is not None and twin._slots is not None
    assert np.array_equal(index._slots, twin._slots) and index._base == twin._base == 3
    assert index.positions(pa.array([9, 5, 12, None, 3])).tolist() == [3, -1, 5, -1, 1]
    for disabled in (False, True):
        context = kernels.disabled() if disabled else contextlib.nullcontext()
        with context, pytest.raises(DataError, match=r"repeats 1 value\(s\) of key column 'id' \(e.g. 4\)"):
            keys.KeyIndex("id", pa.chunked_array([[1, 4, 2], [4]]))


def test_the_key_index_is_built_the_same_on_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks scattered on two threads (decision 321) fill the slots one
    thread fills; a key repeated in chunks of different threads is the same
    error."""
    monkeypatch.setattr(keys, "PARALLEL_BUILD_KEYS", 100)
    rng = np.random.default_rng(5)
    shuffled = rng.permutation(5_000) * 3 + 17
    chunks = np.split(shuffled, [700, 701, 2_400, 2_400, 4_000])
    values = pa.chunked_array([pa.array(c, pa.int64()) for c in chunks])
    one = keys.KeyIndex("id", values)
    two = keys.KeyIndex("id", values, workers=2)
    assert one._slots is not None and two._slots is not None
    assert np.array_equal(one._slots, two._slots) and one._base == two._base == 17
    probe = pa.array(np.concatenate([shuffled[::7], [0, 16, 15_020]]))
    assert np.array_equal(two.positions(probe), one.positions(probe))
    # the first chunk's 11th key again in a last chunk: the other thread's
    again = pa.chunked_array([*values.chunks, pa.array(shuffled[10:11])])
    with pytest.raises(DataError, match=rf"repeats 1 value\(s\) of key column 'id' \(e.g. {shuffled[10]}\)"):
        keys.KeyIndex("id", again, workers=2)


# ------------------------------------------------ scratch memory (decisions 297)
@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The scratch pool for arrays of any size (the tests' tables are small), empty at the start."""
    monkeypatch.setattr(scratch, "SMALLEST", 0)
    scratch.release()
    yield scratch
    scratch.release()


def test_scratch_memory_is_reused_but_results_stay_the_callers(pool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second evaluation takes its accumulators and key index from the pool
    (new arrays only for the results the caller still holds) and recomputes
    everything: a result of the first that the caller still holds is not
    overwritten, and the second's are its own data's."""
    customers, orders = make_tables()
    program = segql.compile(SOURCE)
    options: dict[str, Any] = dict(key="id", as_of=AS_OF, threads=2)
    expected = reference(customers, orders)
    fresh: list[int] = []
    new = scratch._new

    def counted(nbytes: int) -> np.ndarray:
        fresh.append(nbytes)
        return new(nbytes)

    monkeypatch.setattr(scratch, "_new", counted)
    first = program.evaluate(customers, related={"orders": orders}, **options)
    assert scratch.held() > 0  # the accumulators and the key index were given back
    allocated, fresh[:] = len(fresh), []
    fewer = orders.slice(0, orders.num_rows * 2 // 3)
    second = program.evaluate(customers, related={"orders": fewer}, **options)
    assert len(fresh) < allocated
    check(first, expected)
    check(second, reference(customers, fewer))


def test_results_come_back_to_the_pool_when_released(pool: Any) -> None:
    customers, orders = make_tables()
    program = segql.compile("feature recent = count(orders where at >= -30d)")
    result = program.evaluate(customers, key="id", related={"orders": orders}, as_of=AS_OF, threads=1)
    held = scratch.held()
    counts = result.column("recent")
    del result
    assert scratch.held() == held  # the caller still holds the counts
    del counts
    assert scratch.held() > held  # given back once Arrow let them go


def test_the_pool_is_bounded_and_released(pool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    customers, orders = make_tables()
    program = segql.compile(SOURCE)
    options: dict[str, Any] = dict(key="id", related={"orders": orders}, as_of=AS_OF)
    program.evaluate(customers, **options)
    assert 0 < scratch.held() <= scratch.LIMIT
    scratch.release()
    assert scratch.held() == 0
    monkeypatch.setattr(scratch, "LIMIT", 0)  # the pool off: nothing kept
    result = program.evaluate(customers, **options)
    del result
    assert scratch.held() == 0


def test_related_source_tells_whether_its_rows_are_in_memory(tmp_path: Any) -> None:
    table = pa.table({"id": [1, 2]})
    assert related.open_related("orders", table).in_memory is table
    pq.write_table(table, tmp_path / "orders.parquet")
    assert related.open_related("orders", str(tmp_path / "orders.parquet")).in_memory is None


def test_columns_cut_differently_are_read_in_common_pieces(spy: Spy) -> None:
    """Columns whose chunks end at different rows: the layout's pieces are
    the rows between any two cuts; the same answers as math.fsum and DuckDB."""
    customers, orders = make_tables(m=3_001)
    expected = reference(customers, orders)
    cut = pa.table(
        {
            name: pa.chunked_array([column.combine_chunks().slice(0, at), column.combine_chunks().slice(at)])
            for name, column, at in zip(
                orders.column_names, orders.columns, itertools.cycle([100, 1_777, 2_999]), strict=False
            )
        }
    )
    result = segql.compile(SOURCE).evaluate(customers, key="id", related={"orders": cut}, as_of=AS_OF, threads=1)
    assert spy.used == [True]
    check(result, expected)
