"""``threads=``: every core, the same bits (docs/architecture.md, "Parallelism").

Evaluations on 1, 2 and 4 threads give identical tables (Arrow ``equals``)
and identical float bit patterns, in memory (row slices, related tables
reduced on threads) and streamed from Parquet (batches on threads), with
float sums and averages over related values of wildly different magnitudes,
NaN, infinities and nulls, and with a population-level function.  What the
results are is checked against DuckDB SQL written by hand on one case.
Invalid ``threads`` values are ParameterErrors; a stream on several threads
still stops on cancel, raises the single-threaded error, and leaves no
thread behind once closed.
"""

from __future__ import annotations

import gc
import threading
import time
import types
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import segql
from segql.cli import main as cli_main
from segql.engines.arrow import aggregate

AS_OF = "2026-06-01"
CUSTOMERS = 200_000  # the in-memory table is sliced from PARALLEL_MIN_ROWS (200k) rows
STREAMED = 60_000  # the streamed file: the first customers, in batches of 10,000
ORDERS = 300_000

# Thread names seen by a pack function (segql-slice: a row slice; segql-batch: a streamed batch).
seen_threads: set[str] = set()


def _register(registry: object) -> None:
    def probe(ctx: object, x: pa.Array) -> pa.Array:
        # The thread evaluating (a pack function may run on a helper thread of
        # its own: the workers alive count too).
        names = [threading.current_thread().name, *(t.name for t in threading.enumerate())]
        seen_threads.update(n.rstrip("_0123456789") for n in names if n.startswith(("segql-slice", "segql-batch")))
        return x

    def rank(ctx: object, x: pa.Array) -> pa.Array:
        values = x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x
        return pc.cast(pc.rank(values, sort_keys="ascending", tiebreaker="first"), pa.float64())

    registry.add("t.probe", probe, params=[("x", "float")], returns="float")  # type: ignore[attr-defined]
    registry.add("t.rank", rank, params=[("x", "float")], returns="float", population=True)  # type: ignore[attr-defined]


HOST = segql.PluginHost(
    discover=False, packs={"t": types.SimpleNamespace(segql_register_functions=segql.hookimpl(_register))}
)

SOURCE = """
feature total = sum(orders.amount)
feature recent_avg = avg(orders.amount where day >= 50)
feature biggest = max(orders.amount)
feature smallest = min(orders.amount where day < 90)
feature orders_n = count(orders)
feature kinds = count_distinct(orders.kind)
feature latest = last(orders.amount by day)
feature ratio = t.probe(score) / (age + 1)
segment spenders = sum(orders.amount where day >= 20) > 1000
segment adults = age >= 30 and score > 0.5
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    rng = np.random.default_rng(21)
    customers = pa.table(
        {
            "id": pa.array(rng.permutation(CUSTOMERS) * 3 + 7),  # not 0..n-1, not in order
            "age": pa.array(rng.integers(18, 90, CUSTOMERS)),
            "score": pa.array(rng.random(CUSTOMERS)),
        }
    )
    ids = customers.column("id").to_numpy()
    # Magnitudes from 1e-12 to 1e15, both signs (cancellation), a few NaN, ±inf and nulls.
    amount = rng.standard_normal(ORDERS) * 10.0 ** rng.integers(-12, 16, ORDERS)
    amount[rng.integers(0, ORDERS, 40)] = np.nan
    amount[rng.integers(0, ORDERS, 10)] = np.inf
    amount[rng.integers(0, ORDERS, 10)] = -np.inf
    null = np.zeros(ORDERS, dtype=bool)
    null[rng.integers(0, ORDERS, 3_000)] = True
    orders = pa.table(
        {
            "id": pa.array(rng.choice(ids, ORDERS)),
            "amount": pa.array(amount, mask=null),
            "day": pa.array(rng.integers(0, 100, ORDERS)),
            "kind": pa.array(rng.choice(["a", "b", "c", "d"], ORDERS)),
        }
    )
    folder = tmp_path_factory.mktemp("threads")
    pq.write_table(customers.slice(0, STREAMED), folder / "customers.parquet", row_group_size=8_000)
    (folder / "parts").mkdir()
    for part, start in enumerate(range(0, STREAMED, 25_000)):
        pq.write_table(
            customers.slice(start, min(25_000, STREAMED - start)),
            folder / "parts" / f"part-{part}.parquet",
            row_group_size=8_000,
        )
    pq.write_table(orders, folder / "orders.parquet", row_group_size=50_000)
    return {"customers": customers, "orders": orders, "folder": folder}


def options(data: dict[str, object], **extra: object) -> dict[str, object]:
    return {"key": "id", "related": {"orders": data["orders"]}, "as_of": AS_OF, **extra}


def assert_same_bits(a: pa.Table, b: pa.Table) -> None:
    """Equal tables (Arrow ``equals``; NaN is not equal to itself there, so
    floats are compared bit for bit: NaN, -0.0, and which rows are null)."""
    assert a.schema == b.schema
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        left, right = a.column(name), b.column(name)
        if pa.types.is_floating(left.type):
            lbits = pc.fill_null(left, 0.0).to_numpy().view(np.uint64)
            rbits = pc.fill_null(right, 0.0).to_numpy().view(np.uint64)
            assert np.array_equal(lbits, rbits), name
            assert np.array_equal(pc.is_null(left).to_numpy(), pc.is_null(right).to_numpy()), name
        else:
            assert left.equals(right), name
    without_nan = [
        t.drop_columns([n for n in t.column_names if pa.types.is_floating(t.schema.field(n).type)]) for t in (a, b)
    ]
    assert without_nan[0].equals(without_nan[1])


@pytest.fixture(scope="module")
def program() -> segql.Program:
    return segql.compile(SOURCE, plugins=HOST)


@pytest.fixture(scope="module")
def one_thread(program: segql.Program, data: dict[str, object]) -> pa.Table:
    seen_threads.clear()
    result = program.evaluate(data["customers"], threads=1, **options(data))
    assert not seen_threads  # no slice, no batch thread
    return result


def test_in_memory_results_are_bit_identical_on_any_number_of_threads(
    program: segql.Program, data: dict[str, object], one_thread: pa.Table
) -> None:
    # The sums really cover what they must: infinities, NaN, and ordinary sums.
    total = one_thread.column("total").to_numpy(zero_copy_only=False)
    assert np.isnan(total).any() and np.isposinf(total).any() and np.isfinite(total).sum() > CUSTOMERS // 2
    assert one_thread.column("ratio").num_chunks == 1
    for threads in (2, 4):
        seen_threads.clear()
        got = program.evaluate(data["customers"], threads=threads, **options(data))
        assert_same_bits(one_thread, got)
        assert got.column("ratio").num_chunks == threads  # one row slice per thread
        assert seen_threads == {"segql-slice"}


def test_the_float_sums_are_the_exact_sums_rounded_once(data: dict[str, object], one_thread: pa.Table) -> None:
    """The reference: Python's math.fsum per customer (sample), not segql."""
    import math

    orders = data["orders"]
    ids = one_thread.column("id").to_numpy()
    totals = one_thread.column("total").to_numpy(zero_copy_only=False)
    order_ids = orders.column("id").to_numpy()
    amounts = orders.column("amount").to_numpy(zero_copy_only=False)  # nulls read as NaN: masked below
    valid = pc.is_valid(orders.column("amount")).to_numpy(zero_copy_only=False)
    for row in np.random.default_rng(5).integers(0, CUSTOMERS, 300):
        values = amounts[(order_ids == ids[row]) & valid]
        finite = values[np.isfinite(values)]
        if np.isnan(values).any() or (np.isposinf(values).any() and np.isneginf(values).any()):
            assert math.isnan(totals[row])
        elif np.isinf(values).any():
            assert totals[row] == values[np.isinf(values)][0]
        else:
            assert totals[row] == math.fsum(finite.tolist())


def test_a_population_function_gives_the_same_bits_on_any_number_of_threads(data: dict[str, object]) -> None:
    program = segql.compile(
        "feature r = t.rank(score)\n"
        "feature s = sum(orders.amount where day > 10)\n"
        "segment top = t.rank(score) > 150000",
        plugins=HOST,
    )
    results = [program.evaluate(data["customers"], threads=t, **options(data)) for t in (1, None)]
    assert_same_bits(results[0], results[1])
    assert pc.sum(results[0].column("top")).as_py() == CUSTOMERS - 150_000
    # Streamed: the function sees every row of the file (two passes), on any number of threads.
    path = data["folder"] / "customers.parquet"
    first = program.evaluate(data["customers"].slice(0, STREAMED), threads=1, **options(data))
    streamed = program.stream(path, threads=3, batch_rows=10_000, **options(data)).read_all()
    assert_same_bits(streamed.combine_chunks(), first.combine_chunks())
    assert pc.sum(first.column("r")).as_py() == STREAMED * (STREAMED + 1) / 2


def test_streamed_parquet_is_bit_identical_on_any_number_of_threads(
    program: segql.Program, data: dict[str, object], one_thread: pa.Table
) -> None:
    path = data["folder"] / "customers.parquet"
    related = {"orders": data["folder"] / "orders.parquet"}  # read from Parquet too
    streamed = {}
    for threads in (1, 4):
        seen_threads.clear()
        reader = program.stream(path, threads=threads, batch_rows=10_000, **options(data, related=related))
        streamed[threads] = reader.read_all()
        assert seen_threads == (set() if threads == 1 else {"segql-batch"})
    assert streamed[1].column("total").num_chunks >= 6  # several batches (10k rows or a row group)
    first = one_thread.slice(0, STREAMED).combine_chunks()  # no population function: row by row
    assert_same_bits(streamed[1].combine_chunks(), first.cast(streamed[1].schema))
    assert_same_bits(streamed[1], streamed[4])
    # A folder of files, read in order (threads=None: one per core).
    folder = program.evaluate(data["folder"] / "parts", threads=None, **options(data))
    assert_same_bits(folder.combine_chunks(), streamed[1].combine_chunks())
    # Counts and members-only files over the stream.
    counts = program.counts(path, threads=2, batch_rows=10_000, **options(data))
    assert counts.sizes == {name: pc.sum(first.column(name)).as_py() for name in ("spenders", "adults")}
    adult_ids = first.filter(first.column("adults")).column("id").combine_chunks()
    for threads in (1, 4):  # count and members: only the segments' flags, batches on threads
        assert program.count(path, "spenders", threads=threads, **options(data)) == counts.sizes["spenders"]
        assert program.members(path, "adults", threads=threads, **options(data)).equals(adult_ids)
    # A filter pushed into the scan (the batches are not the key pass's rows: looked up by key).
    adults = program.stream(path, members_of="adults", threads=2, batch_rows=10_000, **options(data)).read_all()
    assert_same_bits(adults.combine_chunks(), first.filter(first.column("adults")).cast(adults.schema))
    out = data["folder"] / "members.parquet"
    program.evaluate_to_parquet(path, out, members_of="spenders", threads=2, batch_rows=10_000, **options(data))
    expected = first.filter(first.column("spenders"))
    assert_same_bits(pq.read_table(out).combine_chunks(), expected.cast(pq.read_table(out).schema))


def test_duckdb_sql_gives_the_same_sums_counts_and_members(data: dict[str, object]) -> None:
    """Amounts that are multiples of 1/64 below 2**30: DuckDB sums them exactly as DECIMAL."""
    rng = np.random.default_rng(7)
    orders = (
        data["orders"]
        .select(["id", "day"])
        .append_column("amount", pa.array(rng.integers(-(2**36), 2**36, ORDERS) / 64.0))
    )
    program = segql.compile(
        "feature total = sum(orders.amount where day >= 30)\n"
        "feature n = count(orders where day >= 30)\n"
        "segment big = sum(orders.amount where day >= 30) > 1000000"
    )
    got = program.evaluate(data["customers"], key="id", related={"orders": orders}, as_of=AS_OF, threads=4)
    customers = data["customers"]
    expected = duckdb.sql(
        """
        SELECT c.id,
               coalesce(a.total, 0)::DOUBLE AS total,
               coalesce(a.n, 0) AS n,
               coalesce(a.total, 0) > 1000000 AS big
        FROM customers c LEFT JOIN (
            SELECT id, sum(amount::DECIMAL(38, 6)) AS total, count(*) AS n
            FROM orders WHERE day >= 30 GROUP BY id
        ) a ON a.id = c.id
        ORDER BY c.id
        """
    ).to_arrow_table()
    got = got.sort_by("id")
    assert got.column("id").equals(expected.column("id"))
    assert np.array_equal(
        got.column("total").to_numpy().view(np.uint64), expected.column("total").to_numpy().view(np.uint64)
    )
    assert got.column("n").to_pylist() == expected.column("n").to_pylist()
    assert got.column("big").to_pylist() == expected.column("big").to_pylist()
    del customers


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True, [2]])
def test_invalid_threads_are_parameter_errors(program: segql.Program, data: dict[str, object], bad: object) -> None:
    small = data["customers"].slice(0, 10)
    calls = [
        lambda: program.evaluate(small, threads=bad, **options(data)),
        lambda: program.stream(small, threads=bad, **options(data)),
        lambda: program.counts(small, threads=bad, **options(data)),
        lambda: program.count(small, "spenders", threads=bad, **options(data)),
        lambda: program.members(small, "adults", threads=bad, **options(data)),
        lambda: program.allocate(small, ["spenders"], threads=bad, **options(data)),
        lambda: program.attrition(small, "spenders", threads=bad, **options(data)),
        lambda: program.history(small, start="2026-05-01", threads=bad, **options(data)),
        lambda: program.changes(small, since="2026-05-01", threads=bad, **options(data)),
    ]
    for call in calls:
        with pytest.raises(segql.ParameterError, match="threads must be") as info:
            call()
        assert "threads" in (info.value.hint or "")


def test_threads_accepts_numpy_integers(program: segql.Program, data: dict[str, object]) -> None:
    small = data["customers"].slice(0, 10)
    assert program.evaluate(small, threads=np.int64(2), **options(data)).num_rows == 10


def test_a_cancel_stops_a_stream_on_several_threads(program: segql.Program, data: dict[str, object]) -> None:
    cancel = threading.Event()
    small = data["customers"].slice(0, STREAMED)
    reader = program.stream(small, threads=3, batch_rows=3_000, cancel=cancel, **options(data))  # 20 batches
    reader.read_next_batch()
    cancel.set()
    with pytest.raises(segql.CancelledError):
        reader.read_next_batch()  # not even the batches already evaluated are handed out
    with pytest.raises(segql.CancelledError):
        program.counts(small, threads=2, timeout=0, batch_rows=10_000, **options(data))


def test_an_error_in_one_batch_is_the_single_threaded_error() -> None:
    # Row 150,000 overflows: batch 4 of 6 fails, as on one thread.
    values = np.ones(200_000, dtype=np.int64)
    values[150_000] = 2**62
    table = pa.table({"x": values})
    program = segql.compile("feature y = x * 4")
    errors = []
    for threads in (1, 4):
        with pytest.raises(segql.EvaluationError) as info:
            program.stream(table, threads=threads, batch_rows=10_000).read_all()
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "overflow" in errors[0]


def test_a_closed_stream_leaves_no_thread_behind(program: segql.Program, data: dict[str, object]) -> None:
    def batch_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("segql-batch")]

    small = data["customers"].slice(0, STREAMED)
    reader = program.stream(small, threads=4, batch_rows=5_000, **options(data))  # 12 batches
    reader.read_next_batch()
    # Nothing runs ahead of the reader: the batches in flight end, and their threads.
    for _ in range(100):
        if not batch_threads():
            break
        time.sleep(0.05)
    assert batch_threads() == []
    reader.read_next_batch()  # starts more
    reader.close()
    del reader
    gc.collect()
    assert batch_threads() == []  # closing waited for the workers, which stopped


def test_history_and_changes_are_the_same_on_any_number_of_threads(data: dict[str, object]) -> None:
    program = segql.compile("segment s = sum(orders.amount where day >= 50) > 100 and age > 40")
    small = data["customers"].slice(0, 50_000)
    kw = options(data)
    histories = [program.history(small, start="2026-05-01", every="10d", threads=t, **kw) for t in (1, 2)]
    assert histories[0].equals(histories[1])
    changes = [program.changes(small, since="2026-01-01", threads=t, **kw) for t in (1, 2)]
    assert changes[0].equals(changes[1])


def test_cli_threads(tmp_path: Path, data: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "p.segql"
    source.write_text("segment adults = age >= 30 and score > 0.5\nsegment young = age < 25\n")
    path = str(data["folder"] / "customers.parquet")
    outputs = []
    for threads in ("1", "2"):
        assert cli_main(["count", str(source), "--data", path, "--threads", threads, "--format", "json", "-q"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    with pytest.raises(SystemExit) as info:
        cli_main(["count", str(source), "--data", path, "--threads", "0"])
    assert info.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_related_tables_read_in_batches_give_the_same_bits(
    data: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Related rows are read, filtered and looked up batch by batch (on
    threads); the reductions then see the rows of every batch in the table's
    order: the same values as one batch of the whole table."""
    rng = np.random.default_rng(3)
    orders = data["orders"]
    extra = pa.table(
        {
            "at": pa.array(rng.integers(0, 10**15, ORDERS), pa.timestamp("us", tz="UTC")),
            "label": pa.array(rng.choice(["x", "y", None, "z"], ORDERS)).dictionary_encode(),
        }
    )
    orders = pa.Table.from_arrays([*orders.columns, *extra.columns], names=orders.column_names + extra.column_names)
    path = data["folder"] / "orders_wide.parquet"
    pq.write_table(orders, path, row_group_size=9_000)  # dictionaries differ from row group to row group
    program = segql.compile(
        "feature total = sum(orders.amount where day >= 20)\n"
        "feature mean = avg(orders.amount)\n"
        "feature first_label = first(orders.label by at)\n"
        'feature last_amount = last(orders.amount by at where label = "x")\n'
        "feature labels = count_distinct(orders.label)\n"
        "feature earliest = min(orders.at where day < 50)\n"
        'segment some = exists(orders where label = "y" and amount > 0)'
    )
    small = data["customers"].slice(0, STREAMED)
    kw = {"key": "id", "as_of": AS_OF}
    whole = program.evaluate(small, related={"orders": orders}, threads=1, **kw)
    monkeypatch.setattr(aggregate, "RELATED_BATCH_ROWS", 10_000)
    for related in (orders, path):  # a table, and a Parquet file (read on Arrow's threads)
        for threads in (1, 3):
            got = program.evaluate(small, related={"orders": related}, threads=threads, **kw)
            assert_same_bits(whole, got)


def test_where_filters_pushed_into_batched_related_reads_give_the_same_bits(
    data: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every aggregate of the table has a ``where``: a Parquet file's scan
    keeps only rows one of them may keep, batch by batch (on threads); the
    values are those of the whole table in memory (nothing pushed)."""
    program = segql.compile(
        "feature recent = sum(orders.amount where day >= 60)\n"
        'feature kinds = count_distinct(orders.kind where day < 10 or kind = "a")\n'
        "feature last_recent = last(orders.amount by day where day >= 60)\n"
        "segment busy = count(orders where day >= 90) >= 3"
    )
    path = data["folder"] / "orders.parquet"
    small = data["customers"].slice(0, STREAMED)
    kw = {"key": "id", "as_of": AS_OF}
    whole = program.evaluate(small, related={"orders": data["orders"]}, threads=1, **kw)
    filters: list[object] = []
    original = aggregate.RelatedSource.batches

    def spy(
        self: object, columns: list[str], batch_rows: int, workers: int = 1, filter: object = None, **more: object
    ) -> object:
        filters.append(filter)
        return original(self, columns, batch_rows, workers, filter, **more)  # type: ignore[arg-type]

    monkeypatch.setattr(aggregate.RelatedSource, "batches", spy)
    monkeypatch.setattr(aggregate, "RELATED_BATCH_ROWS", 10_000)
    for threads in (1, 3):
        got = program.evaluate(small, related={"orders": path}, threads=threads, **kw)
        assert_same_bits(whole, got)
        streamed = program.stream(data["folder"] / "customers.parquet", related={"orders": path}, threads=threads, **kw)
        assert_same_bits(whole.combine_chunks(), streamed.read_all().combine_chunks().cast(whole.schema))
        assert (
            program.count(small, "busy", related={"orders": path}, threads=threads, **kw)
            == pc.sum(whole.column("busy")).as_py()
        )
    assert filters and all(f is not None for f in filters)
