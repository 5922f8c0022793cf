"""The ``segql`` command line, run as a real process on real files.

Every test runs the installed console script (``segql`` next to
``sys.executable``) in a subprocess, with stdout and stderr piped (so never a
terminal), on files written into a temporary directory:

- ``customers.*``: CDNOW's 23,570 customers (``customer_id``,
  ``first_order_date``, ``cohort``) plus two prospects without orders, and a
  synthetic ``country`` (``PL DE US FR GB`` by ``customer_id % 5``: CDNOW has
  no geography, and the CLI's list parameters need a text column);
- ``orders.*``: CDNOW's 69,659 orders (``customer_id``, ``ts``,
  ``order_date``, ``cds``, ``amount``),

each as Parquet, CSV, Arrow IPC and JSON lines.  Results are compared with
the Python API (``segql.compile(...).evaluate(...)`` on the in-memory Arrow
tables) and the segment counts with DuckDB SQL over the Parquet files.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from cdnow import CUSTOMER_COUNT, ORDER_COUNT, load_customers, load_orders
from engines import FULL

import segql

AS_OF = "1998-07-01T00:00:00Z"
AS_OF_DT = dt.datetime(1998, 7, 1, tzinfo=dt.UTC)
PROSPECTS = [900_001, 900_002]
COUNTRIES = ["PL", "DE", "US", "FR", "GB"]
ROWS = CUSTOMER_COUNT + len(PROSPECTS)
FORMATS = ["parquet", "csv", "arrow", "jsonl"]
BOX = re.compile("[\u2500-\u257f]")  # box-drawing characters

SCRIPT = Path(sys.executable).with_name("segql")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"}

SEGMENTS = """\
# CDNOW segments for the CLI tests
param min_spend: float = 500
param window: duration = 90d

feature orders_total = count(orders)
feature spend = sum(orders.amount)
feature last_order = max(orders.ts)

segment big_spenders "Spent more than the threshold" = spend > $min_spend
segment recent "Ordered within the window" = last_order >= now - $window
segment early_eu = cohort = "1997-01" and country in ["PL", "DE"]
segment lapsed_regulars = orders_total >= 3 and last_order < now - 180d
"""
SEGMENT_NAMES = ["big_spenders", "recent", "early_eu", "lapsed_regulars"]
FEATURE_NAMES = ["orders_total", "spend", "last_order"]

# The same four segments in SQL, over the Parquet files (DuckDB, TimeZone UTC).
DUCK_SEGMENTS = """
WITH agg AS (
    SELECT customer_id, count(*) AS n, sum(amount) AS spend, max(ts) AS last_order
    FROM read_parquet('{orders}') GROUP BY customer_id
)
SELECT
    coalesce(agg.spend, 0) > 500 IS TRUE AS big_spenders,
    agg.last_order >= TIMESTAMPTZ '1998-07-01 00:00:00+00' - INTERVAL 90 DAY IS TRUE AS recent,
    (c.cohort = '1997-01' AND c.country IN ('PL', 'DE')) IS TRUE AS early_eu,
    (coalesce(agg.n, 0) >= 3 AND agg.last_order < TIMESTAMPTZ '1998-07-01 00:00:00+00' - INTERVAL 180 DAY)
        IS TRUE AS lapsed_regulars
FROM read_parquet('{customers}') AS c LEFT JOIN agg USING (customer_id)
"""


# ------------------------------------------------------------------ helpers
Result = subprocess.CompletedProcess[str]


def cli(*args: str, cwd: Path | None = None, module: bool = False) -> Result:
    """Run ``segql ARGS`` (or ``python -m segql.cli ARGS``) with piped output."""
    command = [sys.executable, "-m", "segql.cli", *args] if module else [str(SCRIPT), *args]
    return subprocess.run(
        command, capture_output=True, text=True, encoding="utf-8", cwd=cwd, env=ENV, timeout=120, check=False
    )


def cli_many(*commands: list[str]) -> list[Result]:
    """Several independent invocations at once (each is a process start: ~1 s)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli(*args), commands))


def assert_error(result: Result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def assert_caret(stderr: str, line: int, column: int, source_line: str, width: int = 1) -> None:
    """The message names ``line, column``; the next line quotes the source
    line, the one after puts a caret (``^`` × width) under that column."""
    lines = stderr.splitlines()
    at = next(i for i, text in enumerate(lines) if f"line {line}, column {column}:" in text)
    quoted, caret = lines[at + 1], lines[at + 2]
    assert quoted.strip() == source_line.strip(), quoted
    indent = len(quoted) - len(quoted.lstrip())
    assert caret.strip() == "^" * width, caret
    assert caret.index("^") - indent == column - 1, (quoted, caret)


def data_args(directory: Path, profile: str = "parquet", orders: str = "parquet") -> list[str]:
    return [
        "--data",
        str(directory / f"customers.{profile}"),
        "--related",
        f"orders={directory / f'orders.{orders}'}",
        "--key",
        "customer_id",
    ]


def untree(line: str) -> str:
    """A line of an explanation tree without its indentation and branch marks."""
    return re.sub(r"^[\s│├└─|`+-]+", "", line)


def table_rows(text: str) -> list[list[str]]:
    """A plain table (columns separated by runs of spaces) as lists of cells."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def api_counts(out: pa.Table, names: list[str]) -> dict[str, int]:
    return {n: sum(out.column(n).to_pylist()) for n in names}


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def orders() -> pa.Table:
    return load_orders()


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    table = load_customers()
    prospects = pa.table(
        {
            "customer_id": pa.array(PROSPECTS, pa.int64()),
            "first_order_date": pa.nulls(len(PROSPECTS), pa.date32()),
            "cohort": ["prospect"] * len(PROSPECTS),
        }
    )
    table = pa.concat_tables([table, prospects])
    country = [COUNTRIES[i % 5] for i in table.column("customer_id").to_pylist()]
    return table.append_column("country", pa.array(country))


def write_jsonl(table: pa.Table, path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in table.to_pylist():
            f.write(json.dumps({k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, customers: pa.Table, orders: pa.Table) -> Path:
    """customers.* and orders.* in every format, and the segment file."""
    directory = tmp_path_factory.mktemp("cli_data")
    for name, table in (("customers", customers), ("orders", orders)):
        pq.write_table(table, directory / f"{name}.parquet")
        pacsv.write_csv(table, directory / f"{name}.csv")
        feather.write_feather(table, directory / f"{name}.arrow")
        write_jsonl(table, directory / f"{name}.jsonl")
    (directory / "segments.segql").write_text(SEGMENTS, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def expected(customers: pa.Table, orders: pa.Table) -> pa.Table:
    """The Python API's result for SEGMENTS at AS_OF."""
    return segql.compile(SEGMENTS).evaluate(customers, key="customer_id", related={"orders": orders}, as_of=AS_OF_DT)


@pytest.fixture(scope="module")
def duck(data: Path) -> dict[str, list[bool]]:
    """SEGMENTS computed independently in DuckDB over the Parquet files, in profile order."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    sql = DUCK_SEGMENTS.format(orders=data / "orders.parquet", customers=data / "customers.parquet")
    table = con.sql(sql + " ORDER BY c.customer_id").to_arrow_table()
    con.close()
    return {name: table.column(name).to_pylist() for name in SEGMENT_NAMES}


# ------------------------------------------------------ entry points, help
def test_console_script_module_and_help():
    assert SCRIPT.exists(), f"the console script is missing: {SCRIPT}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        version, module, helped, unknown = pool.map(
            lambda a: cli(*a[0], module=a[1]),
            [(["--version"], False), (["--version"], True), (["--help"], False), (["frobnicate"], False)],
        )
    assert version.returncode == module.returncode == 0
    assert version.stdout == module.stdout == f"segql {segql.__version__}\n"
    assert helped.returncode == 0 and helped.stderr == ""
    assert helped.stdout.startswith("usage: segql")
    for command in ("demo", "check", "run", "count", "why", "explain", "fmt", "plugins"):
        assert re.search(rf"^\s+{command}\s+\S", helped.stdout, re.M), command
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr


# -------------------------------------------------------------------- check
def test_check_ok_without_and_with_data(data: Path):
    segments = str(data / "segments.segql")
    plain, with_data, related = cli_many(
        ["check", segments],
        ["check", segments, "--data", str(data / "customers.csv")],
        ["check", segments, "--data", str(data / "customers.jsonl"), "--related", f"orders={data / 'orders.arrow'}"],
    )
    not_key = "  not checked: the key joining the related tables (give --key COLUMN)\n"
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == (
        f"{segments}: ok (4 segments, 3 features)\n  not checked: column names and types (give --data PATH)\n"
    )
    assert with_data.returncode == 0, with_data.stderr
    assert with_data.stdout == (
        f"{segments}: ok (4 segments, 3 features), checked against {data / 'customers.csv'}, "
        f"orders={data / 'orders.parquet'} (found beside the data)\n{not_key}"
    )
    assert related.returncode == 0, related.stderr
    assert related.stdout.endswith(
        f"checked against {data / 'customers.jsonl'}, orders={data / 'orders.arrow'}\n{not_key}"
    )
    assert plain.stderr == with_data.stderr == related.stderr == ""


def write(directory: Path, name: str, source: str) -> str:
    path = directory / name
    path.write_text(source, encoding="utf-8")
    return str(path)


def test_check_syntax_and_name_errors(tmp_path: Path, data: Path):
    syntax = write(tmp_path, "syntax.segql", "feature n = count(orders)\nsegment big = n > > 3\n")
    function = write(tmp_path, "function.segql", "feature n = count(orders)\n\nsegment a = lowr(cohort) = 'x'\n")
    column = write(tmp_path, "column.segql", "segment a = cohortt = '1997-01'\n")
    bad_syntax, bad_function, bad_column = cli_many(
        ["check", syntax], ["check", function], ["check", column, "--data", str(data / "customers.parquet")]
    )
    assert_error(bad_syntax, 1, f"{syntax}: line 2, column 19: unexpected '>'")
    assert_caret(bad_syntax.stderr, 2, 19, "segment big = n > > 3")
    assert bad_syntax.stdout == ""
    assert_error(bad_function, 1, f"{function}: line 3, column 13: unknown function 'lowr'; did you mean 'lower'?")
    assert_caret(bad_function.stderr, 3, 13, "segment a = lowr(cohort) = 'x'", width=4)
    assert_error(bad_column, 1, "line 1, column 13: unknown column 'cohortt'; did you mean 'cohort'?")
    assert_caret(bad_column.stderr, 1, 13, "segment a = cohortt = '1997-01'", width=7)


def test_check_type_error_found_only_with_data(tmp_path: Path, data: Path):
    profile = write(tmp_path, "profile.segql", "segment ok = cohort = '1997-01'\nsegment b = cohort > 5\n")
    related = write(tmp_path, "related.segql", "segment c = max(orders.amount) > 2024-01-01\n")
    customers = ["--data", str(data / "customers.parquet")]
    alone, typed, related_typed = cli_many(
        ["check", profile],
        ["check", profile, *customers],
        ["check", related, *customers, "--related", f"orders={data / 'orders.csv'}"],
    )
    assert alone.returncode == 0, alone.stderr  # column types are unknown without data
    assert_error(typed, 1, "line 2, column 22: cannot compare cohort (string) with 5 (int)")
    assert_caret(typed.stderr, 2, 22, "segment b = cohort > 5")
    assert_error(related_typed, 1, "cannot compare max(orders.amount) (float) with 2024-01-01 (date)")
    assert_caret(related_typed.stderr, 1, 34, "segment c = max(orders.amount) > 2024-01-01", width=10)


# ---------------------------------------------------------------------- run
def test_run_prints_csv_and_json(data: Path, expected: pa.Table):
    run = ["run", str(data / "segments.segql"), *data_args(data), "--as-of", AS_OF]
    as_csv, as_json = cli_many([*run, "--format", "csv", "--limit", "5"], [*run, "--format", "json"])
    head = expected.slice(0, 5).to_pylist()
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["customer_id", *SEGMENT_NAMES, *FEATURE_NAMES]
    # (booleans: either spelling, True or true)
    assert [[c.lower() for c in r] for r in rows[1:]] == [
        ["" if v is None else str(v).lower() for v in r.values()] for r in head
    ]
    assert as_csv.stderr == f"… {ROWS - 5:,} more rows (use -o FILE to save all, or --limit)\n"

    assert as_json.returncode == 0 and as_json.stderr == ""  # not a terminal: every row, no limit
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(records) == ROWS
    rows = [{k: str(v) if isinstance(v, dt.datetime) else v for k, v in r.items()} for r in expected.to_pylist()]
    assert records == rows


def read_back(path: Path) -> list[dict[str, Any]]:
    """An output file's rows, read without segql."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        return pacsv.read_csv(path).to_pylist()
    if path.suffix == ".arrow":
        return feather.read_table(path).to_pylist()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{k: dt.datetime.fromisoformat(v) if k == "last_order" and v else v for k, v in r.items()} for r in rows]


def test_run_writes_output_files(data: Path, tmp_path: Path, expected: pa.Table):
    """Profile and orders read from each format, the result written in that
    format; the rows equal the Python API's over the in-memory tables."""
    outs = [tmp_path / f"out.{fmt}" for fmt in FORMATS]
    run = ["run", str(data / "segments.segql"), "--as-of", AS_OF]
    results = cli_many(*([*run, *data_args(data, fmt, fmt), "-o", str(out)] for fmt, out in zip(FORMATS, outs)))
    for fmt, out, result in zip(FORMATS, outs, results):
        assert result.returncode == 0, (fmt, result.stderr)
        assert result.stdout == ""
        assert result.stderr == f"wrote {ROWS:,} rows × 8 columns to {out}\n"
        rows = read_back(out)
        assert list(rows[0]) == ["customer_id", *SEGMENT_NAMES, *FEATURE_NAMES], fmt
        assert rows == expected.to_pylist(), fmt
    for out in outs[0], outs[2]:  # Parquet and Arrow keep the audit metadata
        meta = (pq.read_schema(out) if out.suffix == ".parquet" else feather.read_table(out).schema).metadata
        assert meta[b"segql.as_of"] == b"1998-07-01T00:00:00+00:00"
        assert meta[b"segql.program_sha256"] == segql.compile(SEGMENTS).sha256.encode()


PARAMS_SOURCE = """\
param window: duration = 90d
segment big = sum(orders.amount) > $min_spend
segment joined_since = first_order_date >= $start
segment active = exists(orders where ts >= now - $window)
segment in_countries = country in $countries
segment in_country = country = $country_code
segment in_cohort = cohort = $cohort
"""
PARAMS = [
    "min_spend=800",
    "start=1997-03-01",
    "window=30d",
    'countries=["PL", "DE"]',
    "country_code=PL",
    "cohort=1997-02",
]


def test_run_params_of_several_types(data: Path, tmp_path: Path, customers: pa.Table, orders: pa.Table):
    path = write(tmp_path, "params.segql", PARAMS_SOURCE)
    count = ["count", path, *data_args(data), "--as-of", AS_OF, "--format", "json"]
    given, typo = cli_many(
        [*count, *(a for p in PARAMS for a in ("--param", p))],
        [*count, *(a for p in PARAMS for a in ("--param", p)), "--param", "min_spnd=800"],
    )
    assert given.returncode == 0, given.stderr
    counts = json.loads(given.stdout)["segments"]
    out = segql.compile(PARAMS_SOURCE).evaluate(
        customers,
        key="customer_id",
        related={"orders": orders},
        as_of=AS_OF_DT,
        params={
            "min_spend": 800,
            "start": dt.date(1997, 3, 1),
            "window": dt.timedelta(days=30),
            "countries": ["PL", "DE"],
            "country_code": "PL",
            "cohort": "1997-02",
        },
    )
    assert counts == api_counts(out, list(counts))
    assert all(0 < n < ROWS for n in counts.values()), counts  # every parameter selects some, not all
    # `1997-02` is not a segql constant (it would be 1997 - 2): taken as text, like the word PL
    assert counts["in_cohort"] == customers.column("cohort").to_pylist().count("1997-02")
    assert counts["in_country"] == customers.column("country").to_pylist().count("PL")
    ninety_days = segql.compile(
        "param window: duration = 90d\nsegment active = exists(orders where ts >= now - $window)"
    )
    default = ninety_days.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=AS_OF_DT)
    assert api_counts(default, ["active"])["active"] > counts["active"]  # --param window=30d took effect
    assert_error(typo, 1, "unknown parameter 'min_spnd'; did you mean 'min_spend'?")


def test_run_undeclared_duration_params(data: Path, tmp_path: Path, customers: pa.Table, orders: pa.Table):
    """`--param window=30d` is a duration for an undeclared `$window` too, and
    `6m` a calendar duration (the CLI reads values as segql constants)."""
    source = (
        "segment last_month = exists(orders where ts >= now - $window)\n"
        "segment last_half_year = exists(orders where ts >= now - $half)\n"
    )
    path = write(tmp_path, "undeclared.segql", source)
    count = ["count", path, *data_args(data), "--as-of", AS_OF, "--format", "json"]
    result = cli(*count, "--param", "window=30d", "--param", "half=6m")
    assert result.returncode == 0, result.stderr
    out = segql.compile(source).evaluate(
        customers,
        key="customer_id",
        related={"orders": orders},
        as_of=AS_OF_DT,
        params={"window": dt.timedelta(days=30), "half": segql.Duration(months=6)},
    )
    counts = json.loads(result.stdout)["segments"]
    assert counts == api_counts(out, ["last_month", "last_half_year"])
    assert 0 < counts["last_month"] < counts["last_half_year"]


def test_as_of_moves_every_relative_time(data: Path, customers: pa.Table, orders: pa.Table):
    program = segql.compile(SEGMENTS)
    count = ["count", str(data / "segments.segql"), *data_args(data), "--format", "json"]
    instants = ["1997-12-31", "1998-03-15T12:00:00+02:00"]
    *given, now = cli_many(*([*count, "--as-of", a] for a in instants), count)
    for as_of, result in zip(instants, given):
        assert result.returncode == 0, result.stderr
        out = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=as_of)
        assert json.loads(result.stdout)["segments"] == api_counts(out, SEGMENT_NAMES), as_of
        assert json.loads(result.stdout)["segments"]["recent"] > 0
    # without --as-of the instant is now: nobody has ordered in CDNOW for decades
    assert now.returncode == 0, now.stderr
    assert json.loads(now.stdout)["segments"]["recent"] == 0


def test_related_needs_key(data: Path):
    run = ["run", str(data / "segments.segql"), "--data", str(data / "customers.parquet")]
    no_key, bad_key = cli_many(
        [*run, "--related", f"orders={data / 'orders.parquet'}"],
        [*run, "--related", f"orders={data / 'orders.parquet'}", "--key", "customer"],
    )
    assert_error(no_key, 2, "--key is needed with --related")
    assert no_key.stdout == ""
    assert_error(bad_key, 1, "key column 'customer' is not in the data", "did you mean 'customer_id'?")


# -------------------------------------------------------------------- count
def test_count_table_and_json_match_duckdb(data: Path, duck: dict[str, list[bool]]):
    count = ["count", str(data / "segments.segql"), "--as-of", AS_OF]
    table, as_json = cli_many(
        [*count, *data_args(data, "csv", "arrow")], [*count, *data_args(data, "jsonl", "parquet"), "--format", "json"]
    )
    sizes = {name: sum(duck[name]) for name in SEGMENT_NAMES}
    both = {a: {b: sum(x and y for x, y in zip(duck[a], duck[b])) for b in SEGMENT_NAMES} for a in SEGMENT_NAMES}
    assert all(0 < n < ROWS for n in sizes.values()), sizes

    assert table.returncode == 0, table.stderr
    assert not BOX.search(table.stdout)  # piped: plain text
    sizes_text, overlap_text = table.stdout.split("\n\n")
    rows = table_rows(sizes_text)
    assert rows[0] == ["segment", "members", "share"]
    assert rows[1:] == [[n, str(sizes[n]), f"{sizes[n] / ROWS:.1%}"] for n in SEGMENT_NAMES]
    overlap = overlap_text.strip().splitlines()
    assert overlap[0] == f"overlap (customers in both; {ROWS:,} rows)"
    matrix = table_rows("\n".join(overlap[1:]))
    assert matrix[0] == SEGMENT_NAMES
    assert matrix[1:] == [[a, *(str(both[a][b]) for b in SEGMENT_NAMES)] for a in SEGMENT_NAMES]

    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    shares = {n: sizes[n] / ROWS for n in SEGMENT_NAMES}
    assert report == {"rows": ROWS, "segments": sizes, "shares": shares, "overlap": both}
    assert list(report["segments"]) == SEGMENT_NAMES  # file order


def test_run_is_plain_when_piped(data: Path):
    run = ["run", str(data / "segments.segql"), *data_args(data), "--as-of", AS_OF, "--limit", "3"]
    plain, pretty = cli_many(run, [*run, "--format", "pretty"])
    assert plain.returncode == 0, plain.stderr
    assert not BOX.search(plain.stdout + plain.stderr)
    header, *rows = table_rows(plain.stdout)
    assert header == ["customer_id", *SEGMENT_NAMES, *FEATURE_NAMES]
    assert [row[:2] for row in rows] == [["1", "false"], ["2", "false"], ["3", "false"]]
    assert "┌" in pretty.stdout and "│" in pretty.stdout  # box drawing only when asked for (or on a terminal)


# ---------------------------------------------------------------------- why
def why_args(data: Path, customer: int | str, file: str = "segments.segql") -> list[str]:
    return ["why", str(data / file), *data_args(data), "--as-of", AS_OF, "--id", str(customer)]


RFM_SOURCE = """\
feature rfm = ecommerce.rfm
segment champs = ecommerce.champions
segment top_scores = rfm = "555"
"""


@pytest.fixture(scope="module")
def why_runs(data: Path, expected: pa.Table, customers: pa.Table, orders: pa.Table) -> dict[str, Any]:
    """Every `segql why` of the tests, run at once: a member of big_spenders
    (that segment only), a non-member (every segment), a prospect without
    orders, an RFM champion, an unknown id, and a call without --key."""
    rows = expected.to_pylist()
    member = next(r for r in rows if r["big_spenders"] and r["recent"])
    outsider = next(r for r in rows if not r["big_spenders"] and r["recent"])
    rfm = segql.compile(RFM_SOURCE).evaluate(customers, key="customer_id", related={"orders": orders}, as_of=AS_OF_DT)
    champion = next(r for r in rfm.to_pylist() if r["top_scores"])
    (data / "rfm.segql").write_text(RFM_SOURCE, encoding="utf-8")
    names = ["member", "outsider", "prospect", "champion", "unknown", "no_key"]
    results = cli_many(
        [*why_args(data, member["customer_id"]), "--segment", "big_spenders"],
        why_args(data, outsider["customer_id"]),
        why_args(data, PROSPECTS[0]),
        why_args(data, champion["customer_id"], "rfm.segql"),
        why_args(data, 999_999),
        ["why", str(data / "segments.segql"), "--data", str(data / "customers.parquet"), "--id", "3"],
    )
    return {"rows": {"member": member, "outsider": outsider, "champion": champion}, **dict(zip(names, results))}


def test_why_member_and_non_member(why_runs: dict[str, Any]):
    member, outsider = why_runs["rows"]["member"], why_runs["rows"]["outsider"]
    one, every = why_runs["member"], why_runs["outsider"]
    for row, result in (member, one), (outsider, every):
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == f"customer_id = {row['customer_id']}, as of 1998-07-01T00:00:00+00:00"
        verdict = "true  → member" if row["big_spenders"] else "false  → not a member"
        assert lines[2] == f"segment big_spenders = {verdict}"
        assert [untree(line) for line in lines[3:5]] == [f"spend = {row['spend']:.10g}", "$min_spend = 500"]
    assert "segment recent" not in one.stdout  # --segment: only that one
    verdicts = re.findall(r"^segment (\w+) = (true|false)", every.stdout, re.M)
    assert verdicts == [(name, str(outsider[name]).lower()) for name in SEGMENT_NAMES]
    assert re.search(rf" last_order = {outsider['last_order']:%Y-%m-%dT%H:%M:%SZ}$", every.stdout, re.M)
    assert re.search(r" now - \$window = 1998-04-02T00:00:00Z$", every.stdout, re.M)


def test_why_explains_nulls(why_runs: dict[str, Any]):
    result = why_runs["prospect"]  # no orders at all
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "segment lapsed_regulars = false  → not a member" in text
    assert re.search(r" orders_total = 0$", text, re.M)
    assert re.search(r" last_order = null$", text, re.M)
    assert "last_order < now - 180d = null   (null because last_order is null)" in text
    assert re.search(r' country = "DE"$', text, re.M)  # 900001 % 5 == 1
    assert re.search(r' cohort = "prospect"$', text, re.M)


def test_why_agrees_with_run_for_population_functions(why_runs: dict[str, Any]):
    """RFM scores rank a customer among all customers: `why` must explain the
    value `run` gives (here "555", a champion), not the customer's rank among
    themselves alone."""
    assert why_runs["rows"]["champion"]["champs"] and why_runs["rows"]["champion"]["rfm"] == "555"
    result = why_runs["champion"]
    assert result.returncode == 0, result.stderr
    assert "segment champs = true  → member" in result.stdout, result.stdout
    assert "segment top_scores = true  → member" in result.stdout, result.stdout
    assert 'rfm = "555"' in result.stdout


def test_why_errors(why_runs: dict[str, Any]):
    assert_error(why_runs["unknown"], 1, "no row has customer_id = 999999")
    assert why_runs["unknown"].stdout == ""
    assert_error(why_runs["no_key"], 2, "--key is needed")


# ------------------------------------------------------------------ explain
def test_explain_without_and_with_data(data: Path):
    bare, typed = cli_many(
        ["explain", str(data / "segments.segql")],
        [
            "explain",
            str(data / "segments.segql"),
            "--data",
            str(data / "customers.parquet"),
            "--related",
            f"orders={data / 'orders.parquet'}",
        ],
    )
    assert bare.returncode == 0, bare.stderr
    for decl in (
        "feature orders_total: int",
        "feature spend: any",
        "segment big_spenders: bool",
        "segment recent: bool",
        "segment early_eu: bool",
        "segment lapsed_regulars: bool",
    ):
        assert re.search(rf"^{re.escape(decl)}(\s|$)", bare.stdout, re.M), decl
    assert "column country : any" in bare.stdout  # no schema: column types unknown
    assert "$min_spend" in bare.stdout and "count over orders" in bare.stdout

    assert typed.returncode == 0, typed.stderr
    assert "column country : string" in typed.stdout
    assert "column orders.amount : float" in typed.stdout
    assert "column orders.ts : timestamp" in typed.stdout
    assert re.search(r"^feature spend: float(\s|$)", typed.stdout, re.M)
    assert re.search(r"^feature last_order: timestamp(\s|$)", typed.stdout, re.M)
    assert ": any" not in typed.stdout
    # every declaration is in the plan, referenced ones before their users
    order = re.findall(r"^(?:segment|feature) (\w+):", typed.stdout, re.M)
    assert sorted(order) == sorted(SEGMENT_NAMES + FEATURE_NAMES)
    assert order.index("spend") < order.index("big_spenders")
    assert order.index("last_order") < order.index("recent")


# ---------------------------------------------------------------------- fmt
MESSY = """\
-- messy file: capitals, odd spacing, comments everywhere
PARAM min_spend:float=500   # threshold in dollars
FEATURE spend=SUM( orders.amount )
feature   n90 = COUNT(orders WHERE ts>=-90d AND amount>10)
feature avg_basket = spend/count(orders)
feature span = days_since(min(orders.ts)) - (days_since(max(orders.ts)) - 1)
feature band = CASE WHEN spend>=1000 THEN 'top' WHEN spend>=$min_spend THEN "mid" ELSE 'low' END
SEGMENT big "Spent a lot"=spend>$min_spend AND NOT (cohort='1997-03')
segment  either = (big OR n90>=2) AND country IN ('PL','DE')  -- parentheses matter here
segment neg = not (big and n90 >= 1) or spend - -1 between 12 and 20
segment mixed=cohort in ['1997-01','1997-02'] and not first_order_date between 1997-01-10 and 1997-01-20;
# trailing comment
"""
COMMENTS = ["-- messy file: capitals", "# threshold in dollars", "-- parentheses matter here", "# trailing comment"]


@pytest.fixture(scope="module")
def fmt_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`segql fmt` on MESSY: --check and --diff, the rewrite, --check again;
    and --check on a file with a syntax error."""
    path = tmp_path_factory.mktemp("fmt") / "messy.segql"
    path.write_text(MESSY, encoding="utf-8")
    runs: dict[str, Any] = {"path": path}
    broken = path.with_name("broken.segql")
    broken.write_text("segment a = (cohort = 'x'\n", encoding="utf-8")
    runs["broken"] = broken
    runs["check"], runs["diff"], runs["broken_check"] = cli_many(
        ["fmt", str(path), "--check"], ["fmt", str(path), "--diff"], ["fmt", str(broken), "--check"]
    )
    runs["untouched"] = path.read_text(encoding="utf-8")
    runs["rewrite"] = cli("fmt", str(path))
    runs["formatted"] = path.read_text(encoding="utf-8")
    runs["check_again"] = cli("fmt", str(path), "--check")
    return runs


def test_fmt_check_diff_rewrite(fmt_runs: dict[str, Any]):
    path = fmt_runs["path"]
    check, diff = fmt_runs["check"], fmt_runs["diff"]
    assert check.returncode == 1 and check.stdout == ""
    assert check.stderr == f"{path}: would be reformatted\n"
    assert diff.returncode == 1
    assert diff.stderr == f"{path}: would be reformatted\n"
    assert fmt_runs["untouched"] == MESSY  # --check and --diff change nothing

    assert fmt_runs["rewrite"].returncode == 0
    assert fmt_runs["rewrite"].stderr == f"{path}: reformatted\n"
    formatted = fmt_runs["formatted"]
    assert formatted != MESSY
    # the diff is exactly the change the rewrite made
    expected_diff = "".join(
        difflib.unified_diff(MESSY.splitlines(True), formatted.splitlines(True), str(path), str(path))
    )
    assert diff.stdout == expected_diff
    assert "\n-PARAM min_spend:float=500   # threshold in dollars\n" in diff.stdout
    assert "\n+param min_spend: float = 500  # threshold in dollars\n" in diff.stdout  # the comment stays
    for comment in COMMENTS:
        assert comment in formatted, comment
    assert "(orders where ts >= -90d and amount > 10)" in formatted
    assert 'case when spend >= 1000 then "top"' in formatted
    assert 'country in ["PL", "DE"]' in formatted


def test_fmt_is_idempotent(fmt_runs: dict[str, Any]):
    """`--check` on the rewritten file passes: formatting it again changes nothing."""
    from segql.format import format_source

    assert fmt_runs["check_again"].returncode == 0
    assert fmt_runs["check_again"].stderr == f"{fmt_runs['path']}: already formatted\n"
    assert format_source(fmt_runs["formatted"]) == fmt_runs["formatted"]


def test_fmt_never_changes_meaning(fmt_runs: dict[str, Any], customers: pa.Table, orders: pa.Table):
    before, after = segql.compile(MESSY), segql.compile(fmt_runs["formatted"])
    assert (before.segments, before.features) == (after.segments, after.features)
    assert before.descriptions == after.descriptions
    options = {"key": "customer_id", "related": {"orders": orders}, "as_of": AS_OF_DT}
    for params in (None, {"min_spend": 100}):
        a = before.evaluate(customers, params=params, **options)
        b = after.evaluate(customers, params=params, **options)
        assert a.column_names == b.column_names
        for name in a.column_names:
            assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
        for name in before.segments:  # and the data exercises every segment both ways
            assert 0 < sum(a.column(name).to_pylist()) < ROWS, (name, params)


def test_fmt_syntax_error(fmt_runs: dict[str, Any]):
    broken, result = fmt_runs["broken"], fmt_runs["broken_check"]
    assert_error(result, 1, f"{broken}: line 1, column 26: unexpected end of input")
    assert_caret(result.stderr, 1, 26, "segment a = (cohort = 'x'")
    assert broken.read_text(encoding="utf-8") == "segment a = (cohort = 'x'\n"


# ------------------------------------------------------------------ plugins
PACK_FUNCTIONS = {
    "ecommerce": {
        "rfm_scores",
        "rfm_segment",
        "purchase_frequency_tier",
        "holiday_timing",
        "last_holiday",
        "favorite_season",
        "historic_clv",
    },
    "bfsi": {"risk_score", "risk_tolerance", "equity_allocation", "life_stage"},
    "travel": {"trip_purpose", "traveler_type"},
    "edtech": {"skill_level", "percentile_rank", "learning_style"},
}


@pytest.fixture(scope="module")
def plugins_runs() -> tuple[Result, Result]:
    text, as_json = cli_many(["plugins", "--all"], ["plugins", "--json"])
    return text, as_json


def test_plugins_lists_the_four_packs(plugins_runs: tuple[Result, Result]):
    result = plugins_runs[0]
    assert result.returncode == 0, result.stderr
    for pack, functions in PACK_FUNCTIONS.items():
        assert re.search(rf"^{pack} \S+ \(entry point\): ok$", result.stdout, re.M), pack
        for function in functions:
            assert re.search(rf"^  {pack}\.{function}\(.*\) -> \w+$", result.stdout, re.M), function
    assert "\n  segment ecommerce.champions  — RFM" in result.stdout
    assert "\n  feature travel.purpose" in result.stdout
    assert "\n  convention table orders: " in result.stdout
    assert "FAILED" not in result.stdout


def test_plugins_json(plugins_runs: tuple[Result, Result]):
    result = plugins_runs[1]
    assert result.returncode == 0, result.stderr
    packs = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(PACK_FUNCTIONS) <= set(packs)
    for pack, functions in PACK_FUNCTIONS.items():
        info = packs[pack]
        assert info["ok"] is True and info["error"] is None and info["origin"] == "entry point"
        assert {f["name"] for f in info["functions"]} == {f"{pack}.{f}" for f in functions}
        assert all(f["signature"].startswith(f["name"] + "(") and f["doc"] for f in info["functions"])
        assert all(e["name"].startswith(pack + ".") and e["kind"] in ("segment", "feature") for e in info["library"])
    library = {e["name"]: e["kind"] for e in packs["ecommerce"]["library"]}
    assert library["ecommerce.champions"] == "segment" and library["ecommerce.rfm"] == "feature"
    assert {e["name"] for e in packs["travel"]["library"]} >= {"travel.business_trips", "travel.purpose"}
    assert {c["name"] for c in packs["ecommerce"]["conventions"]} == {"orders", "orders.ts", "orders.amount"}
    assert "lower" in {f["name"] for f in packs["segql"]["functions"]}  # built-ins, listed as a pack


# --------------------------------------------------------------------- demo
def test_demo_runs_from_any_directory(tmp_path: Path):
    from segql import demo

    result = cli("demo", "--source", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not BOX.search(result.stdout)
    program = segql.compile(demo.source())
    people = demo.customers()
    out = program.evaluate(people, key="customer_id", related={"orders": demo.orders(people)}, as_of=demo.AS_OF)
    assert result.stdout == demo.source()  # --source: the segment file alone on stdout, the summary on stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"segql demo: {out.num_rows:,} generated customers")
    assert lines[1] == f"segment file: {len(program.segments)} segments, {len(program.features)} features"
    table = table_rows(result.stderr.split("\n\n")[1])
    assert table[0] == ["segment", "members", "share", "description"]
    assert [row[0] for row in table[1:]] == program.segments
    for row in table[1:]:
        members = sum(out.column(row[0]).to_pylist())
        assert row[1:3] == [str(members), f"{members / out.num_rows:.1%}"]
        assert 0 < members < out.num_rows


# --------------------------------------------------- files and their errors
def test_unknown_extension_and_missing_files(data: Path, tmp_path: Path):
    segments = str(data / "segments.segql")
    (tmp_path / "customers.xlsx").write_bytes(b"not a spreadsheet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    cases = [
        (
            ["run", segments, "--data", str(tmp_path / "customers.xlsx")],
            2,
            f"{tmp_path / 'customers.xlsx'}: unknown file type .xlsx; use one of .arrow, .csv",
        ),
        (["run", segments, "--data", str(tmp_path / "absent.parquet")], 2, "absent.parquet: no such file"),
        (
            [
                "count",
                segments,
                *data_args(data)[:2],
                "--related",
                f"orders={tmp_path / 'absent.csv'}",
                "--key",
                "customer_id",
            ],
            2,
            "absent.csv: no such file",
        ),
        (["run", segments, *data_args(data), "-o", str(tmp_path / "out.xlsx")], 2, "out.xlsx: unknown file type .xlsx"),
        (["check", str(tmp_path / "absent.segql")], 2, "absent.segql: No such file or directory"),
        (["run", segments, "--data", str(broken)], 1, f"could not read {broken}"),
    ]
    for (_, code, message), result in zip(cases, cli_many(*(args for args, _, _ in cases))):
        assert_error(result, code, message)
        assert result.stdout == ""
    assert not (tmp_path / "out.xlsx").exists()


def test_fixture_files_hold_the_real_data(data: Path, customers: pa.Table, orders: pa.Table):
    """The files the CLI reads are CDNOW: 23,570 customers (+2 prospects), 69,659 orders."""
    assert customers.num_rows == ROWS and orders.num_rows == ORDER_COUNT
    con = duckdb.connect()
    n_orders, n_customers, total = con.execute(
        f"SELECT count(*), count(DISTINCT customer_id), round(sum(amount), 2) FROM read_csv('{data / 'orders.csv'}')"
    ).fetchone()
    assert (n_orders, n_customers) == (ORDER_COUNT, CUSTOMER_COUNT)
    assert total == round(sum(orders.column("amount").to_pylist()), 2)
    assert con.execute(f"SELECT count(*) FROM read_json('{data / 'customers.jsonl'}')").fetchone()[0] == ROWS
    con.close()


# ----------------------------------------------------------------------- sql
def test_sql_prints_a_query_that_duckdb_answers_like_segql(data: Path, expected: pa.Table):
    result = cli("sql", str(data / "segments.segql"), *data_args(data), "--as-of", AS_OF, "--table", "customers")
    assert result.returncode == 0, result.stderr
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW customers AS SELECT * FROM read_parquet('{data / 'customers.parquet'}')")
    con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet('{data / 'orders.parquet'}')")
    got = con.sql(result.stdout).to_arrow_table().sort_by("customer_id")
    con.close()
    for name in SEGMENT_NAMES:
        assert got.column(name).to_pylist() == expected.sort_by("customer_id").column(name).to_pylist(), name


def test_sql_in_another_dialect_and_its_errors(data: Path, tmp_path: Path):
    spark, bad_dialect, refused = cli_many(
        ["sql", str(data / "segments.segql"), *data_args(data), "--as-of", AS_OF, "--dialect", "spark"],
        ["sql", str(data / "segments.segql"), *data_args(data), "--dialect", "oracle"],
        [
            *("sql", write(tmp_path, "matches.segql", 'segment s = country matches "^P"'), *data_args(data)),
            *("--dialect", "snowflake"),
        ],
    )
    assert spark.returncode == 0 and "`customer_id`" in spark.stdout, spark.stderr
    assert bad_dialect.returncode == 2 and "invalid choice: 'oracle'" in bad_dialect.stderr
    assert_error(refused, 1, "matches has no snowflake translation")
    assert_caret(refused.stderr, 1, 13, 'segment s = country matches "^P"', width=20)


def test_sql_translates_first_and_last_and_ignores_the_deprecated_row_order(data: Path, tmp_path: Path):
    """first/last … by need no row order (issue 17): --row-order is accepted
    for one release and ignored, whatever it names."""
    source = write(tmp_path, "first.segql", "feature f = first(orders.amount by ts)")
    plain, ordered, unknown, malformed = cli_many(
        ["sql", source, *data_args(data)],
        ["sql", source, *data_args(data), "--row-order", "orders=amount"],
        ["sql", source, *data_args(data), "--row-order", "orders=seq"],
        ["sql", source, *data_args(data), "--row-order", "orders"],
    )
    assert plain.returncode == 0 and "ROW_NUMBER() OVER" in plain.stdout, plain.stderr
    assert ordered.stdout == unknown.stdout == malformed.stdout == plain.stdout
    assert ordered.returncode == unknown.returncode == malformed.returncode == 0


@pytest.mark.skipif(not FULL, reason="two Spark JVMs started by the CLI (a minute): CI or SEGQL_LONG=1")
def test_run_on_the_spark_engine_gives_the_arrow_engines_segments(data: Path, expected: pa.Table, tmp_path: Path):
    pytest.importorskip("pyspark")
    overflow = write(tmp_path, "overflow.segql", "feature f = count(orders) * 4611686018427387904")
    result, failed = cli_many(
        ["run", str(data / "segments.segql"), *data_args(data), "--as-of", AS_OF, "--engine", "spark", "--format",
         "json"],
        ["run", overflow, *data_args(data), "--engine", "spark"],
    )  # fmt: skip
    # Spark's errors while computing are reported like segql's, exit code 1.
    assert failed.returncode == 1 and "error: Spark: [ARITHMETIC_OVERFLOW]" in failed.stderr, failed.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines
    ordered = expected.sort_by("customer_id")
    assert [r["customer_id"] for r in rows] == ordered.column("customer_id").to_pylist()
    for name in [*SEGMENT_NAMES, "orders_total", "spend"]:
        assert [r[name] for r in rows] == ordered.column(name).to_pylist(), name


SEQUENCE_SOURCE = """\
events orders by ts
segment upgraded "A single CD, then a bigger order within 90 days" =
    sequence(orders where cds = 1 then orders where cds > 1 within 90d)
"""


def test_why_explains_a_sequence(data: Path, customers: pa.Table, orders: pa.Table):
    """`segql why` shows the matching rows of a member's sequence, and for a
    non-member how many rows pass each step (LANGUAGE.md §9)."""
    out = segql.compile(SEQUENCE_SOURCE).evaluate(
        customers, key="customer_id", related={"orders": orders}, as_of=AS_OF_DT
    )
    flags = dict(zip(out["customer_id"].to_pylist(), out["upgraded"].to_pylist(), strict=True))
    member = next(c for c, hit in flags.items() if hit)
    outsider = next(c for c, hit in flags.items() if not hit and c not in PROSPECTS)
    (data / "sequence.segql").write_text(SEQUENCE_SOURCE, encoding="utf-8")
    inside, outside = cli_many(
        [*why_args(data, member, "sequence.segql"), "--time-zone", "Asia/Kolkata"],
        why_args(data, outsider, "sequence.segql"),
    )
    assert inside.returncode == 0, inside.stderr
    assert "(Asia/Kolkata)" in inside.stdout.splitlines()[0]
    assert "upgraded = true" in inside.stdout and "matched rows" in inside.stdout
    assert "step 1" in inside.stdout and "step 2" in inside.stdout and "cds = 1" in inside.stdout
    assert outside.returncode == 0, outside.stderr
    assert "upgraded = false" in outside.stdout and "no chain of rows matches" in outside.stdout
