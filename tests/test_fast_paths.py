"""Program.count and Program.members (issue 21): the same answers as DuckDB
SQL written by hand, over tables and over Parquet files with nulls and NaN,
with predicates the scan can test exactly (pushed down, counted by the scan)
and others, related aggregates, parameters and as_of; without the output
table and without reading unused columns; and plans cached per schema and
parameter types without leaking from one evaluation into another."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import segql
from segql import cli, parse
from segql.engines.arrow import count as count_module
from segql.engines.arrow import engine as engine_module
from segql.engines.arrow import kernels
from segql.engines.arrow.related import RelatedSource
from segql.engines.arrow.stream import Source

AS_OF = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
NOW = "TIMESTAMPTZ '2026-06-01 00:00:00+00'"
N = 3_000


def make_customers() -> pa.Table:
    rng = np.random.default_rng(21)

    def with_nulls(values: np.ndarray, share: float = 0.1) -> list[Any]:
        out: list[Any] = values.tolist()
        for i in np.flatnonzero(rng.random(len(out)) < share):
            out[i] = None
        return out

    spend = rng.gamma(2.0, 80.0, N).round(2)
    spend[rng.random(N) < 0.03] = np.nan
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    seen = [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 365 * 24, N)]
    table = pa.table(
        {
            "customer_id": pa.array(rng.permutation(N) * 3 + 7, pa.int64()),
            "age": pa.array(with_nulls(rng.integers(18, 90, N)), pa.int32()),
            "country": pa.array(with_nulls(rng.choice(["PL", "DE", "FR", "US"], N))).dictionary_encode(),
            "spend": pa.array(with_nulls(spend, 0.05), pa.float64()),
            "email": pa.array(with_nulls(rng.choice(["a@gmail.com", "b@x.org", "c@gmail.com", "d@y.de"], N))),
            "vip": pa.array(with_nulls(rng.random(N) < 0.2), pa.bool_()),
            "last_seen": pa.array(with_nulls(np.array(seen, dtype=object)), pa.timestamp("us", tz="UTC")),
        }
    )
    # Sorted by age (row groups an age filter can skip), then numbered in file order.
    table = table.sort_by("age")
    return table.append_column("pos", pa.array(np.arange(N), pa.int64()))


def make_orders(customers: pa.Table) -> pa.Table:
    rng = np.random.default_rng(22)
    ids = customers.column("customer_id").to_numpy()
    n = 4 * N
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "customer_id": pa.array(rng.choice(ids, n), pa.int64()),
            "amount": pa.array(rng.gamma(2.0, 30.0, n).round(2), pa.float64()),
            "ts": pa.array(
                [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 365 * 24, n)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("fast")
    customers = make_customers()
    orders = make_orders(customers)
    path, orders_path = folder / "customers.parquet", folder / "orders.parquet"
    pq.write_table(customers, path, row_group_size=250)
    pq.write_table(orders, orders_path, row_group_size=2_000)
    con = duckdb.connect()
    con.register("customers", customers)
    con.register("orders", orders)
    return {"customers": customers, "orders": orders, "path": path, "orders_path": orders_path, "duck": con}


# (segql condition, the WHERE of hand-written DuckDB SQL, params).  NaN is no
# member of a comparison in segql (DuckDB orders it above every number), so
# the SQL says so where spend is compared.
CASES = [
    ('age between 25 and 40 and country in ["PL", "DE"]', "age BETWEEN 25 AND 40 AND country IN ('PL', 'DE')", {}),
    ('not (country in ["PL", "DE"])', "NOT (country IN ('PL', 'DE'))", {}),
    ("spend > 150 or vip", "(spend > 150 AND NOT isnan(spend)) OR vip", {}),
    ("not (spend in [12.5, 80.0]) and age < 30", "NOT (spend IN (12.5, 80.0)) AND age < 30", {}),
    ("not (age >= 40) and vip is not null", "NOT (age >= 40) AND vip IS NOT NULL", {}),
    ("email is null or not vip", "email IS NULL OR NOT vip", {}),
    (
        'email ends with "@gmail.com" and age > $min_age',
        "ends_with(email, '@gmail.com') AND age > 50",
        {"min_age": 50},
    ),
    ("last_seen >= -30d and not vip", f"last_seen >= {NOW} - INTERVAL 30 DAY AND NOT vip", {}),
    ('upper(country) = "PL" or spend < 10', "upper(country) = 'PL' OR spend < 10", {}),
]

RELATED = [
    (
        "count(orders where ts >= -90d) >= 2 and age > 30",
        f"age > 30 AND (SELECT count(*) FROM orders o WHERE o.customer_id = c.customer_id"
        f" AND o.ts >= {NOW} - INTERVAL 90 DAY) >= 2",
    ),
    (
        'sum(orders.amount) > 200 or country = "FR"',
        "coalesce((SELECT sum(amount) FROM orders o WHERE o.customer_id = c.customer_id), 0) > 200 OR country = 'FR'",
    ),
]


def duck_ids(con: duckdb.DuckDBPyConnection, where: str) -> list[int]:
    rows = con.sql(f"SELECT customer_id FROM customers c WHERE {where} ORDER BY pos").fetchall()
    return [r[0] for r in rows]


def program_for(condition: str) -> segql.Program:
    # A feature and another segment the count must not need.
    return segql.compile(
        f'segment target = {condition}\nfeature loud = upper(email)\nsegment other = spend > 1000000 and loud = "X"'
    )


@pytest.mark.parametrize(("condition", "where", "params"), CASES, ids=[c[0] for c in CASES])
def test_count_and_members_match_duckdb(data: dict, condition: str, where: str, params: dict) -> None:
    expected = duck_ids(data["duck"], where)
    program = program_for(condition)
    for source in (data["customers"], data["path"], ds.dataset(data["path"])):
        options = {"as_of": AS_OF, "params": params}
        assert program.count(source, "target", **options) == len(expected)
        members = program.members(source, "target", key="customer_id", **options)
        assert members.type == pa.int64()
        assert members.to_pylist() == expected
    every = program.count(data["path"], as_of=AS_OF, params=params)
    assert every == {"target": len(expected), "other": 0}


@pytest.mark.parametrize(("condition", "where"), RELATED, ids=[c[0] for c in RELATED])
def test_count_and_members_with_related_aggregates(data: dict, condition: str, where: str) -> None:
    expected = duck_ids(data["duck"], where)
    program = program_for(condition)
    for source, orders in ((data["customers"], data["orders"]), (data["path"], data["orders_path"])):
        options = {"as_of": AS_OF, "key": "customer_id", "related": {"orders": orders}}
        assert program.count(source, "target", **options) == len(expected)
        assert program.members(source, "target", **options).to_pylist() == expected


def test_an_exact_predicate_is_counted_by_the_scan(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact: the scan counts (no batch is read by segql); not exact: only the
    needed columns are read, with the pushed-down part as the scan's filter."""
    scans: list[tuple[list[str], Any]] = []
    original = Source.batches

    def spy(self: Source, columns: list[str], filter: Any = None, batch_rows: int = 65_536) -> Any:
        scans.append((list(columns), filter))
        return original(self, columns, filter, batch_rows)

    monkeypatch.setattr(Source, "batches", spy)
    exact = program_for('age between 25 and 40 and country in ["PL", "DE"]')
    assert exact.count(data["path"], "target", as_of=AS_OF) == len(
        duck_ids(data["duck"], "age BETWEEN 25 AND 40 AND country IN ('PL', 'DE')")
    )
    assert scans == []
    exact.members(data["path"], "target", key="customer_id", as_of=AS_OF)
    assert [columns for columns, _ in scans] == [["customer_id"]]
    scans.clear()
    partial = program_for('email ends with "@gmail.com" and age > 50')
    partial.count(data["path"], "target", as_of=AS_OF)
    assert [columns for columns, _ in scans] == [["age", "email"]]
    assert "age" in str(scans[0][1])
    scans.clear()
    partial.members(data["path"], "target", key="customer_id", as_of=AS_OF)
    assert [columns for columns, _ in scans] == [["age", "customer_id", "email"]]


def test_the_fast_paths_build_no_output_table(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the output table was built")

    monkeypatch.setattr(engine_module, "output_table", refuse)
    program = program_for("spend > 150 or vip")
    for source in (data["customers"], data["path"]):
        program.count(source, as_of=AS_OF)
        program.members(source, "target", key="customer_id", as_of=AS_OF)
        counts = program.counts(source, as_of=AS_OF, priority=["other", "target"])
        assert counts.sizes["target"] == program.count(source, "target", as_of=AS_OF)
    with pytest.raises(segql.SegqlError, match="output table"):
        program.evaluate(data["customers"], as_of=AS_OF)


def test_only_the_needed_declarations_are_evaluated() -> None:
    program = segql.compile(
        "segment a = x > 1\n"
        "feature ratio = 10 / y\n"  # y = 0 rows: division by zero is null, no error; but never evaluated here
        "segment b = a and ratio > 2\n"
        'segment c = z = "q"'
    )
    plan = program.plan(pa.schema([("x", pa.int64()), ("y", pa.int64()), ("z", pa.string())]))
    small = count_module.needed_plan(plan, ["a"])
    assert small.segments == ("a",) and small.features == () and small.columns == frozenset({"x"})
    both = count_module.needed_plan(plan, ["b"])
    assert set(both.columns) == {"x", "y"} and "c" not in both.exprs


def test_errors_name_the_segment_and_suggest(data: dict) -> None:
    program = program_for("age > 30")
    with pytest.raises(segql.SegqlError, match="no segment 'targte'") as info:
        program.count(data["customers"], "targte")
    assert "target" in str(info.value)
    with pytest.raises(segql.SegqlError, match="feature, not a segment"):
        program.members(data["customers"], "loud", key="customer_id")
    with pytest.raises(segql.SegqlError, match="key column 'id'"):
        program.members(data["customers"], "target", key="id")
    with pytest.raises(segql.SegqlError):
        program.count(data["customers"], 3)  # type: ignore[arg-type]
    with pytest.raises(segql.SegqlError, match=r"min_age"):
        segql.compile("segment s = age > $min_age").count(data["customers"], "s")
    # A reader is read once, batch by batch.
    reader = data["customers"].to_reader(max_chunksize=500)
    assert program.count(reader, "target") == len(duck_ids(data["duck"], "age > 30"))


def test_cached_plans_follow_the_schema_and_the_parameter_types() -> None:
    program = segql.compile("segment s = x > $t")
    ints = pa.table({"x": [1, 5, None, 9]})
    texts = pa.table({"x": ["a", "k", "z", None]})
    floats = pa.table({"x": [0.5, 7.5, float("nan"), 2.0]})
    assert program.count(ints, "s", params={"t": 4}) == 2
    with pytest.raises(segql.SegqlError):
        program.count(texts, "s", params={"t": 4})
    assert program.count(texts, "s", params={"t": "b"}) == 2
    with pytest.raises(segql.SegqlError):
        program.count(ints, "s", params={"t": "b"})
    assert program.count(floats, "s", params={"t": 1}) == 2
    assert program.evaluate(ints, params={"t": 4}).column("s").to_pylist() == [False, True, False, True]
    assert program.evaluate(floats, params={"t": 1.0}).column("s").to_pylist() == [False, True, False, True]
    with pytest.raises(segql.SegqlError):
        program.evaluate(texts, params={"t": 4})


def test_counts_of_the_cli_use_the_fast_path(
    data: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``segql count`` over Parquet: sizes and overlaps as DuckDB counts
    them, without the output table."""
    source = tmp_path / "s.segql"
    source.write_text('segment poles = country = "PL"\nsegment rich = spend > 150\nfeature f = upper(email)\n')

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the output table was built")

    monkeypatch.setattr(engine_module, "output_table", refuse)
    assert cli.main(["count", str(source), "--data", str(data["path"]), "--format", "json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    con = data["duck"]
    rich = "spend > 150 AND NOT isnan(spend)"
    assert report["segments"] == {"poles": len(duck_ids(con, "country = 'PL'")), "rich": len(duck_ids(con, rich))}
    assert report["overlap"]["poles"]["rich"] == len(duck_ids(con, f"country = 'PL' AND {rich}"))


def test_a_where_filter_is_pushed_into_the_related_scan(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """``count(orders where ts >= -90d)`` reads only recent orders (a filter
    on the related scan); an aggregate without ``where`` reads them all."""
    reads: list[Any] = []
    original = RelatedSource.batches  # aggregates read a file batch by batch

    def spy(
        self: RelatedSource,
        columns: list[str],
        batch_rows: int,
        workers: int = 1,
        filter: Any = None,
        prune_only: bool = False,
    ) -> Any:
        rows = 0
        for table in original(self, columns, batch_rows, workers, filter, prune_only):
            rows += table.num_rows
            yield table
        reads.append((filter, prune_only, rows))

    original_morsels = RelatedSource.morsels  # the C pass on two threads: row groups (decision 325)

    def spy_morsels(self: RelatedSource, columns: list[str], filter: Any = None) -> Any:
        found = original_morsels(self, columns, filter)
        if found is None:
            return None
        rows = [0]
        reads.append((filter, True, rows))

        def counted(morsel: Any) -> Any:
            for table in morsel():
                rows[0] += table.num_rows
                yield table

        return [functools.partial(counted, morsel) for morsel in found]

    monkeypatch.setattr(RelatedSource, "batches", spy)
    monkeypatch.setattr(RelatedSource, "morsels", spy_morsels)
    condition, where = RELATED[0]
    program = program_for(condition)
    options = {"as_of": AS_OF, "key": "customer_id", "related": {"orders": data["orders_path"]}}
    recent = data["duck"].sql(f"SELECT count(*) FROM orders WHERE ts >= {NOW} - INTERVAL 90 DAY").fetchall()[0][0]
    # The NumPy twin is handed the rows the filter keeps; the C pass, which
    # tests every row's `where`s itself, those of the row groups the filter
    # does not rule out (decision 314).
    with kernels.disabled():
        assert program.count(data["path"], "target", **options) == len(duck_ids(data["duck"], where))
    assert [(str(f) != "None", prune, rows) for f, prune, rows in reads] == [(True, False, recent)]
    reads.clear()
    assert program.count(data["path"], "target", **options) == len(duck_ids(data["duck"], where))
    if kernels.library() is not None:
        [(pushed, prune, rows)] = reads
        rows = rows[0] if isinstance(rows, list) else rows
        assert pushed is not None and prune and recent < rows <= data["orders"].num_rows
    reads.clear()
    program_for("count(orders) > 5 or count(orders where amount > 100) > 1").count(data["path"], "target", **options)
    assert [rows[0] if isinstance(rows, list) else rows for _, _, rows in reads] == [data["orders"].num_rows]


def test_wall_clock_constants_follow_the_time_zone(data: dict) -> None:
    """A timestamp without a zone is a wall clock of the evaluation's zone,
    also in the filter pushed into the scan (and counted by it)."""
    program = program_for("last_seen >= 2026-05-01T00:00:00 and age > 40")
    expected = duck_ids(data["duck"], "last_seen >= TIMESTAMPTZ '2026-04-30 10:00:00+00' AND age > 40")
    for source in (data["customers"], data["path"]):
        assert program.count(source, "target", as_of=AS_OF, time_zone="Pacific/Kiritimati") == len(expected)
        got = program.members(source, "target", key="customer_id", as_of=AS_OF, time_zone="Pacific/Kiritimati")
        assert got.to_pylist() == expected
    utc = duck_ids(data["duck"], "last_seen >= TIMESTAMPTZ '2026-05-01 00:00:00+00' AND age > 40")
    assert program.count(data["path"], "target", as_of=AS_OF) == len(utc) != len(expected)


def test_the_parser_cache_lives_in_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = parse.parser_cache("grammar text")
    assert isinstance(path, str) and Path(path).parent == tmp_path / "segql"
    assert (tmp_path / "segql").stat().st_mode & 0o777 == 0o700
    assert parse.parser_cache("other grammar") != path  # one file per grammar
    (tmp_path / "segql").chmod(0o777)
    assert parse.parser_cache("grammar text") is False  # others may write there
    monkeypatch.setenv("SEGQL_PARSER_CACHE", "0")
    assert parse.parser_cache("grammar text") is False


def test_counts_with_related_aggregates_over_a_folder(data: dict, tmp_path: Path) -> None:
    """Several files and small batches: each batch's aggregates are the next
    rows of the key pass's."""
    folder = tmp_path / "customers"
    folder.mkdir()
    customers = data["customers"]
    pq.write_table(customers.slice(0, 1_100), folder / "a.parquet", row_group_size=300)
    pq.write_table(customers.slice(1_100), folder / "b.parquet", row_group_size=300)
    (condition, where), (other, other_where) = RELATED
    program = segql.compile(f"segment one = {condition}\nsegment two = {other}")
    options = {"as_of": AS_OF, "key": "customer_id", "related": {"orders": data["orders_path"]}}
    counts = program.counts(folder, batch_rows=700, **options)
    con = data["duck"]
    assert counts.sizes == {"one": len(duck_ids(con, where)), "two": len(duck_ids(con, other_where))}
    assert counts.overlap["one"]["two"] == len(duck_ids(con, f"({where}) AND ({other_where})"))
