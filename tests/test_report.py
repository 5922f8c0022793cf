"""Notebooks and counts (segql.report; docs/editors.md "Notebooks"; docs/decisions.md 101–110).

``Program.counts`` (sizes, shares, overlaps, allocation) and
``Program.attrition`` (customers passing each clause of a segment's
top-level ``and`` chain, cumulatively) are checked against DuckDB SQL
written by hand: on a small table with nulls (counted in batches of 3 rows,
so the sums cross batches) and on CDNOW's 23,570 customers and 69,659
orders.  The HTML of a program, of counts, of attrition and of why/explain
escapes every name and text; plots are real PNG files (parsed here: chunks,
CRCs, image data); the CLI's ``count --plot``, ``count`` (descriptions,
thousands separators) and ``explain --counts`` run as processes.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cdnow import load_customers, load_orders

import segql
from segql.report import Attrition, Counts, Explanation, Why, attrition_plan
from segql.span import Span

# ------------------------------------------------------------ a small table
PEOPLE = pa.table(
    {
        "id": list(range(1, 11)),
        "age": [25, 34, None, 52, 41, 19, 67, 38, 45, 29],
        "spend": [120.0, 900.5, 40.0, None, 1500.0, 0.0, 300.0, 2200.0, 75.0, 640.0],
        "country": ["PL", "DE", "PL", "US", None, "PL", "DE", "FR", "PL", "DE"],
        "newsletter": [True, False, True, None, True, True, False, True, None, True],
    }
)
SMALL = """\
param min_spend: float = 100
feature value "spend <per> customer" = spend * 2

segment adults "Customers & adults: age > 30" = age >= 30 and (country in ["PL", "DE"] or spend > 2000) and newsletter
segment spenders = spend > $min_spend and value < 3000
segment young = age < 30
"""
SMALL_SQL = """
SELECT id,
    (age >= 30 AND (country IN ('PL', 'DE') OR spend > 2000) AND newsletter) IS TRUE AS adults,
    (spend > 100 AND spend * 2 < 3000) IS TRUE AS spenders,
    (age < 30) IS TRUE AS young,
    -- each clause of adults and spenders, cumulatively
    (age >= 30) IS TRUE AS adults_1,
    (age >= 30 AND (country IN ('PL', 'DE') OR spend > 2000)) IS TRUE AS adults_2,
    (spend > 100) IS TRUE AS spenders_1
FROM people
"""
NAMES = ["adults", "spenders", "young"]


def duck_counts(con: duckdb.DuckDBPyConnection, sql: str, names: list[str]) -> dict[str, Any]:
    """Sizes and pairwise overlaps of boolean columns ``names`` of ``sql``, in DuckDB."""
    pairs = ", ".join(f"count(*) FILTER (WHERE {a} AND {b}) AS {a}__{b}" for a in names for b in names)
    row = con.execute(f"SELECT count(*) AS n, {pairs} FROM ({sql})").fetchone()
    assert row is not None
    both = {(a, b): row[1 + i * len(names) + j] for i, a in enumerate(names) for j, b in enumerate(names)}
    return {"rows": row[0], "sizes": {n: both[n, n] for n in names}, "overlap": both}


def duck_allocation(con: duckdb.DuckDBPyConnection, sql: str, priority: list[str]) -> dict[str | None, int]:
    whens = " ".join(f"WHEN {s} THEN '{s}'" for s in priority)
    rows = con.execute(f"SELECT CASE {whens} END AS s, count(*) FROM ({sql}) GROUP BY s").fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def small_duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("people", PEOPLE)
    return con


def test_counts_match_duckdb_on_a_small_table(small_duck: duckdb.DuckDBPyConnection):
    program = segql.compile(SMALL)
    counts = program.counts(PEOPLE, priority=["young", "adults"], batch_rows=3)
    expected = duck_counts(small_duck, SMALL_SQL, NAMES)
    assert counts.rows == expected["rows"] == 10
    assert counts.sizes == expected["sizes"]
    assert list(counts.sizes) == NAMES  # program order
    assert counts.overlap == {a: {b: expected["overlap"][a, b] for b in NAMES} for a in NAMES}
    assert counts.shares == {n: expected["sizes"][n] / 10 for n in NAMES}
    allocated = duck_allocation(small_duck, SMALL_SQL, ["young", "adults"])
    assert counts.allocation == {"young": allocated["young"], "adults": allocated["adults"]}
    assert counts.unallocated == allocated[None]
    assert counts.descriptions == {"adults": "Customers & adults: age > 30", "spenders": None, "young": None}
    assert all(0 < n < 10 for n in counts.sizes.values()), counts.sizes  # the case says something
    shown = pretty(counts).splitlines()
    assert shown[1:3] == [
        "segment   members  share  description",
        f"adults          {counts.sizes['adults']}  {counts.sizes['adults'] / 10:.1%}  Customers & adults: age > 30",
    ]
    assert (
        "overlap (customers in both)" in shown
        and "allocation (each customer in the first of the priority it is in)" in shown
    )
    # Batches do not change the counts.
    once = program.counts(PEOPLE, priority=["young", "adults"], as_of="2024-01-01")
    assert once == program.counts(PEOPLE, priority=["young", "adults"], as_of="2024-01-01", batch_rows=3)
    assert once.sizes == counts.sizes and once.overlap == counts.overlap


def test_counts_tables_for_arrow_pandas_polars():
    program = segql.compile(SMALL)
    counts = program.counts(PEOPLE, segments=["young", "adults"], priority=["adults"], as_of="2024-01-01")
    assert counts.segments == ["adults", "young"]  # program order, whatever the order asked
    assert counts.as_of == "2024-01-01T00:00:00+00:00"
    sizes = counts.to_arrow()
    assert sizes.column_names == ["segment", "description", "members", "share"]
    assert sizes.column("members").to_pylist() == [counts.sizes["adults"], counts.sizes["young"]]
    overlap = counts.to_arrow("overlap")
    both = counts.overlap["adults"]["young"]
    assert overlap.to_pylist()[1] == {
        "segment": "adults",
        "other": "young",
        "members": both,
        "share": both / counts.sizes["adults"],
    }
    allocation = counts.to_arrow("allocation")
    assert allocation.to_pylist()[-1]["segment"] is None
    assert sum(allocation.column("members").to_pylist()) == counts.rows
    assert counts.to_pandas("overlap").equals(overlap.to_pandas())
    assert counts.to_polars().to_dicts() == sizes.to_pylist()
    with pytest.raises(segql.ParameterError, match="no table 'matrix'"):
        counts.to_arrow("matrix")
    with pytest.raises(segql.ParameterError, match="no allocation"):
        program.counts(PEOPLE).to_arrow("allocation")


def test_counts_errors_are_segql_errors():
    program = segql.compile(SMALL)
    with pytest.raises(segql.DataError, match="no segment 'adult'") as err:
        program.counts(PEOPLE, segments=["adult"])
    assert err.value.hint == "did you mean 'adults'?"
    with pytest.raises(segql.DataError, match="priority names a feature, not a segment: 'value'"):
        program.counts(PEOPLE, priority=["value"])
    with pytest.raises(segql.SegqlNameError, match="unknown column 'spend'"):
        program.counts(PEOPLE.drop_columns(["spend"]))


def test_counts_of_no_rows_and_no_segments():
    empty = segql.compile(SMALL).counts(PEOPLE.slice(0, 0), priority=["young"])
    assert empty.rows == 0 and empty.sizes == {"adults": 0, "spenders": 0, "young": 0}
    assert empty.shares == {"adults": None, "spenders": None, "young": None}
    assert empty.unallocated == 0
    assert "0 customers" in empty._repr_html_()
    features_only = segql.compile("feature f = age + 1").counts(PEOPLE)
    assert features_only.rows == 10 and features_only.sizes == {} and features_only.overlap == {}


def test_attrition_matches_duckdb_on_a_small_table(small_duck: duckdb.DuckDBPyConnection):
    program = segql.compile(SMALL)
    attrition = program.attrition(PEOPLE, batch_rows=4)
    expected = small_duck.execute(
        f"SELECT count(*) FILTER (adults_1), count(*) FILTER (adults_2), count(*) FILTER (adults),"
        f" count(*) FILTER (spenders_1), count(*) FILTER (spenders), count(*) FILTER (young) FROM ({SMALL_SQL})"
    ).fetchone()
    assert expected is not None
    table = attrition.to_arrow()
    assert table.column_names == ["segment", "step", "clause", "customers", "share", "kept"]
    assert [(r["segment"], r["step"], r["clause"], r["customers"]) for r in table.to_pylist()] == [
        ("adults", 1, "age >= 30", expected[0]),
        ("adults", 2, 'country in ["PL", "DE"] or spend > 2000', expected[1]),  # in parentheses: one clause
        ("adults", 3, "newsletter", expected[2]),
        ("spenders", 1, "spend > $min_spend", expected[3]),
        ("spenders", 2, "value < 3000", expected[4]),
        ("young", 1, "age < 30", expected[5]),
    ]
    assert expected[0] > expected[1] > expected[2] > 0  # every step filters
    assert table.column("kept").to_pylist()[:2] == [expected[0] / 10, expected[1] / expected[0]]
    # The last step of a segment counts its members.
    sizes = program.counts(PEOPLE).sizes
    assert {s.segment: s.customers for s in attrition.steps} == sizes
    # IPython (and print(attrition.text())) shows the steps as a table.
    assert pretty(attrition).splitlines()[:3] == [
        "segment adults — Customers & adults: age > 30 (10 rows)",
        "step  clause                                   customers  share   kept",
        f"   1  age >= 30                                        {expected[0]}  {expected[0] / 10:.1%}  "
        f"{expected[0] / 10:.1%}",
    ]
    assert attrition.to_pandas().equals(table.to_pandas())
    assert attrition.to_polars().to_dicts() == table.to_pylist()


def test_attrition_of_one_segment_with_params_a_reader_and_a_bare_expression():
    program = segql.compile(SMALL)
    reader = pa.RecordBatchReader.from_batches(PEOPLE.schema, PEOPLE.to_batches(max_chunksize=4))
    one = program.attrition(reader, "SPENDERS", params={"min_spend": 500})
    assert [(s.segment, s.customers) for s in one.steps] == [
        ("spenders", sum(1 for v in PEOPLE.column("spend").to_pylist() if v is not None and v > 500)),
        ("spenders", sum(1 for v in PEOPLE.column("spend").to_pylist() if v is not None and 500 < v < 1500)),
    ]
    bare = segql.compile("age > 20 and newsletter").attrition(PEOPLE)
    assert [(s.segment, s.clause, s.customers) for s in bare.steps] == [
        ("segment", "age > 20", 8),
        ("segment", "newsletter", 4),
    ]
    with pytest.raises(segql.DataError, match="segment names a feature, not a segment: 'value'"):
        program.attrition(PEOPLE, "value")
    with pytest.raises(segql.ParameterError) as err:
        program.attrition(PEOPLE, params={"min_spend": "a lot"})
    assert "min_spend" in str(err.value)


def test_attrition_errors_point_into_the_program_source():
    source = 'feature f = a + 1\nsegment s "x" = a > 0 and\n   # a comment\n   b * 4611686018427387904 > 1 and a < 9\n'
    program = segql.compile(source, source_name="s.segql")
    data = pa.table({"a": [1, 2, 3], "b": [1, 2, 3]})
    with pytest.raises(segql.SegqlError, match="integer overflow") as err:
        program.attrition(data)
    line = "   b * 4611686018427387904 > 1 and a < 9"
    assert (err.value.line, err.value.column, err.value.source_line) == (4, 4, line)
    # A position in the derived program's copy of a clause maps back to the clause.
    plan = attrition_plan(source, program.tree, ["s"], program.segments)
    first = plan.blocks[1][0]
    assert plan.source.splitlines()[first - 1] == "b * 4611686018427387904 > 1"
    moved = plan.in_source(segql.SegqlError("boom", span=Span(0, 0, first, 5, first, 24), source=plan.source), source)
    assert (moved.line, moved.column, moved.end_line, moved.end_column) == (4, 8, 4, 27)
    assert str(moved).splitlines()[1:] == ["     b * 4611686018427387904 > 1 and a < 9", "         ^^^^^^^^^^^^^^^^^^^"]


# ----------------------------------------------------------------- CDNOW
AS_OF = "1998-07-01T00:00:00Z"
CDNOW = """\
param window: duration = 90d
feature orders_total = count(orders)
feature spend = sum(orders.amount)
feature last_order = max(orders.ts)

segment big_spenders "Spent more than $500" = spend > 500 and orders_total >= 2
segment recent "Ordered within the window" = last_order >= now - $window
segment early_regulars = cohort = "1997-01" and orders_total >= 3 and last_order < now - 180d and spend > 100
"""
CDNOW_NAMES = ["big_spenders", "recent", "early_regulars"]
CDNOW_SQL = """
WITH agg AS (SELECT customer_id, count(*) AS n, sum(amount) AS spend, max(ts) AS last_order
             FROM orders GROUP BY customer_id),
base AS (SELECT c.customer_id, c.cohort, coalesce(agg.n, 0) AS n, coalesce(agg.spend, 0) AS spend, agg.last_order
         FROM customers c LEFT JOIN agg USING (customer_id))
SELECT
    (spend > 500 AND n >= 2) IS TRUE AS big_spenders,
    (last_order >= TIMESTAMPTZ '1998-07-01 00:00:00+00' - INTERVAL 90 DAY) IS TRUE AS recent,
    (cohort = '1997-01' AND n >= 3 AND last_order < TIMESTAMPTZ '1998-07-01 00:00:00+00' - INTERVAL 180 DAY
        AND spend > 100) IS TRUE AS early_regulars,
    (spend > 500) IS TRUE AS big_1,
    (cohort = '1997-01') IS TRUE AS early_1,
    (cohort = '1997-01' AND n >= 3) IS TRUE AS early_2,
    (cohort = '1997-01' AND n >= 3 AND last_order < TIMESTAMPTZ '1998-07-01 00:00:00+00' - INTERVAL 180 DAY)
        IS TRUE AS early_3
FROM base
"""


@pytest.fixture(scope="module")
def cdnow_duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("customers", load_customers())
    con.register("orders", load_orders())
    return con


def test_counts_and_attrition_match_duckdb_on_cdnow(cdnow_duck: duckdb.DuckDBPyConnection):
    program = segql.compile(CDNOW)
    options: dict[str, Any] = dict(key="customer_id", related={"orders": load_orders()}, as_of=AS_OF)
    counts = program.counts(load_customers(), priority=["early_regulars", "big_spenders"], **options)
    expected = duck_counts(cdnow_duck, CDNOW_SQL, CDNOW_NAMES)
    assert counts.rows == expected["rows"] == 23_570
    assert counts.sizes == expected["sizes"]
    assert counts.overlap == {a: {b: expected["overlap"][a, b] for b in CDNOW_NAMES} for a in CDNOW_NAMES}
    assert 0 < counts.overlap["big_spenders"]["recent"] < counts.sizes["recent"]  # a real overlap
    allocated = duck_allocation(cdnow_duck, CDNOW_SQL, ["early_regulars", "big_spenders"])
    assert counts.allocation == {
        "early_regulars": allocated["early_regulars"],
        "big_spenders": allocated["big_spenders"],
    }
    assert counts.unallocated == allocated[None]

    attrition = program.attrition(load_customers(), **options)
    steps = cdnow_duck.execute(
        "SELECT count(*) FILTER (big_1), count(*) FILTER (big_spenders), count(*) FILTER (recent),"
        " count(*) FILTER (early_1), count(*) FILTER (early_2), count(*) FILTER (early_3),"
        f" count(*) FILTER (early_regulars) FROM ({CDNOW_SQL})"
    ).fetchone()
    assert [s.customers for s in attrition.steps] == list(steps or ())
    assert [s.clause for s in attrition.of("early_regulars")] == [
        'cohort = "1997-01"',
        "orders_total >= 3",
        "last_order < now - 180d",
        "spend > 100",
    ]
    assert len(set(steps or ())) == len(steps or ())  # every step differs: a wrong order would show


# ------------------------------------------------------------------- HTML
HOSTILE = """\
param label: string = "<script>alert(1)</script>"
feature tag "a <i>tag</i> & more" = concat(country, $label)
segment sneaky "<img src=x onerror=alert(1)>" = age < 40 and tag != "<b>"
"""


def test_program_html_lists_everything_escaped():
    program = segql.compile(HOSTILE)
    page = program._repr_html_()
    for raw in ("<script>", "<img", "<i>tag", '"<b>"'):
        assert raw not in page, raw
    for escaped in (
        "&lt;img src=x onerror=alert(1)&gt;",
        "a &lt;i&gt;tag&lt;/i&gt; &amp; more",
        "&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;",  # the default, as written
        "age &lt; 40 and tag != &quot;&lt;b&gt;&quot;",  # the definition
        "sneaky",
        "$label",
        "string",  # the parameter's type
    ):
        assert escaped in page, escaped
    # Only segql's own markup remains: every tag is one of these.
    assert set(re.findall(r"</?([a-z]+)", page)) <= {
        "style",
        "div",
        "b",
        "table",
        "caption",
        "tr",
        "th",
        "td",
        "code",
        "i",
    }
    assert repr(program) == "<segql.Program segments=['sneaky'] features=['tag']>"  # unchanged


def test_counts_attrition_why_and_explain_html_are_escaped():
    program = segql.compile(HOSTILE)
    data = pa.table({"id": [1, 2, 3], "age": [30, 50, 20], "country": ["PL", "<b>x", "DE"]})
    counts = program.counts(data)
    attrition = program.attrition(data)
    why = program.why(data, key="id", id=1, as_of="2024-01-01")
    plan = program.explain(data)
    for page in (counts._repr_html_(), attrition._repr_html_(), why._repr_html_(), plan._repr_html_()):
        assert "<img" not in page and "<i>" not in page and "<b>x" not in page
        assert "sneaky" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in counts._repr_html_()
    assert "tag != &quot;&lt;b&gt;&quot;" in attrition._repr_html_()
    assert "age &lt; 40" in why._repr_html_()
    assert "→ member" in why._repr_html_()


def test_why_and_explain_print_as_before_and_display_as_text():
    program = segql.compile(SMALL)
    why = program.why(PEOPLE, key="id", id=8, as_of="2024-01-01")
    plan = program.explain()
    assert isinstance(why, Why) and isinstance(why, str)
    assert isinstance(plan, Explanation) and isinstance(plan, str)
    assert type(str(why)) is str and str(why) == why
    assert why.startswith("id = 8, as of 2024-01-01T00:00:00+00:00\n\nsegment adults = true  → member\n")
    assert plan.startswith("feature value: any")
    # IPython shows the text itself, not a quoted, escaped string (its
    # pretty printer calls _repr_pretty_ with a printer that collects text).
    assert pretty(why) == str(why) and "\\n" not in pretty(why)
    assert pretty(plan) == str(plan)
    assert why._repr_html_().startswith('<pre class="segql-report">')


def pretty(obj: Any) -> str:
    """What IPython's pretty printer shows for ``obj`` (its _repr_pretty_ protocol)."""
    shown: list[str] = []
    printer = type("Printer", (), {"text": lambda self, text: shown.append(text)})()
    obj._repr_pretty_(printer, False)
    return "".join(shown)


# ------------------------------------------------------------------ plots
def png_facts(path: Path) -> tuple[int, int]:
    """Width and height of a well-formed PNG: signature, every chunk's CRC,
    IHDR first, IEND last, IDAT that inflates to height × (1 + row bytes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks, idat = 8, [], b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        at += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and at == len(data)
    ihdr = data[16:29]
    width, height, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
    assert len(zlib.decompress(idat)) == height * (1 + width * channels * depth // 8)
    return width, height


def test_save_plot_writes_a_png_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    counts = segql.compile(SMALL).counts(PEOPLE)
    target = tmp_path / "sizes.png"
    counts.save_plot(target)
    width, height = png_facts(target)
    assert width > 600 and height > 200
    single = segql.compile("segment a = age > 30").counts(PEOPLE)
    single.save_plot(tmp_path / "one.svg")
    assert (tmp_path / "one.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    # A failure while drawing leaves the previous file and no temporary.
    before = target.read_bytes()
    from matplotlib.figure import Figure

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        Path(args[0]).write_bytes(b"half a png")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        counts.save_plot(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.svg", "sizes.png"]
    with pytest.raises(segql.ParameterError, match=r"a plot is written as \.png, \.svg, \.pdf, not \.jpg"):
        counts.save_plot(tmp_path / "sizes.jpg")


def test_plots_on_given_axes_and_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from matplotlib.figure import Figure

    counts = segql.compile(SMALL).counts(PEOPLE)
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert counts.plot(left) is left and counts.plot_overlap(right) is right
    assert [t.get_text() for t in left.get_yticklabels()] == NAMES
    assert len(left.patches) == 3  # one bar per segment
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    for attempt in (lambda: counts.save_plot(tmp_path / "x.png"), counts.plot):
        with pytest.raises(segql.SegqlError, match="plots need matplotlib") as err:
            attempt()
        assert err.value.hint == "pip install 'segql[plot]'"
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------- CLI
SCRIPT = Path(sys.executable).with_name("segql")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, encoding="utf-8", env=ENV, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report_cli")
    pq.write_table(load_customers(), directory / "customers.parquet")
    pq.write_table(load_orders(), directory / "orders.parquet")
    (directory / "cdnow.segql").write_text(CDNOW, encoding="utf-8")
    return directory


def data_args(files: Path) -> list[str]:
    return [
        *("--data", str(files / "customers.parquet"), "--related", f"orders={files / 'orders.parquet'}"),
        *("--key", "customer_id", "--as-of", AS_OF),
    ]


def test_cli_count_pretty_shows_descriptions_and_thousands_separators(files: Path, cdnow_duck: Any):
    """The newcomer's bullet: `count` never showed descriptions, nor thousands separators."""
    result = cli("count", str(files / "cdnow.segql"), *data_args(files), "--format", "pretty")
    assert result.returncode == 0, result.stderr
    sizes = duck_counts(cdnow_duck, CDNOW_SQL, CDNOW_NAMES)["sizes"]
    lines = result.stdout.splitlines()
    assert [c.strip() for c in lines[1].strip("│").split("│")] == ["segment", "members", "share", "description"]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("│").split("│")] for line in lines[3:6])}
    assert rows["big_spenders"] == [
        "big_spenders",
        f"{sizes['big_spenders']:,}",
        f"{sizes['big_spenders'] / 23_570:.1%}",
        "Spent more than $500",
    ]
    assert rows["recent"][3] == "Ordered within the window" and rows["early_regulars"][3] == ""
    assert sizes["recent"] >= 1000 and f"{sizes['recent']:,}" in rows["recent"][1] and "," in rows["recent"][1]
    assert "overlap (customers in both; 23,570 rows)" in result.stdout


def test_cli_count_plot_and_machine_formats(files: Path, tmp_path: Path, cdnow_duck: Any):
    plot = tmp_path / "sizes.png"
    base = ["count", str(files / "cdnow.segql"), *data_args(files)]
    drawn = cli(*base, "--format", "csv", "--plot", str(plot))
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stderr == f"wrote the plot to {plot}\n"
    png_facts(plot)
    sizes = duck_counts(cdnow_duck, CDNOW_SQL, CDNOW_NAMES)["sizes"]
    # csv stays machine-readable: no separators, no descriptions.
    assert drawn.stdout.splitlines() == ["segment,members,share"] + [
        f"{n},{sizes[n]},{sizes[n] / 23_570:.1%}" for n in CDNOW_NAMES
    ]
    bad = cli(*base, "--plot", str(tmp_path / "sizes.gif"))
    assert bad.returncode == 2 and "--plot" in bad.stderr and ".gif" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sizes.png"]


def test_cli_explain_counts(files: Path, cdnow_duck: Any):
    segment_file = str(files / "cdnow.segql")
    as_csv = cli(
        "explain", segment_file, *data_args(files), "--counts", "--segment", "early_regulars", "--format", "csv"
    )
    assert as_csv.returncode == 0, as_csv.stderr
    expected = cdnow_duck.execute(
        "SELECT count(*) FILTER (early_1), count(*) FILTER (early_2), count(*) FILTER (early_3),"
        f" count(*) FILTER (early_regulars) FROM ({CDNOW_SQL})"
    ).fetchone()
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "segment,step,clause,customers,share,kept"
    assert [line.split(",")[:4] for line in lines[1:]] == [
        ["early_regulars", "1", '"cohort = ""1997-01"""', str(expected[0])],
        ["early_regulars", "2", "orders_total >= 3", str(expected[1])],
        ["early_regulars", "3", "last_order < now - 180d", str(expected[2])],
        ["early_regulars", "4", "spend > 100", str(expected[3])],
    ]
    pretty_text = cli("explain", segment_file, *data_args(files), "--counts", "--format", "pretty")
    assert pretty_text.returncode == 0, pretty_text.stderr
    assert "segment big_spenders — Spent more than $500 (23,570 rows)" in pretty_text.stdout
    assert f"{expected[0]:,}" in pretty_text.stdout
    no_data = cli("explain", segment_file, "--counts")
    assert no_data.returncode == 2 and "--counts needs --data" in no_data.stderr
    stray = cli("explain", segment_file, "--as-of", AS_OF)
    assert stray.returncode == 2 and "--as-of is used only with --counts" in stray.stderr


def test_counts_is_exported_types():
    assert isinstance(segql.compile("segment a = x > 1").counts(pa.table({"x": [1, 2]})), Counts)
    assert isinstance(segql.compile("segment a = x > 1").attrition(pa.table({"x": [1, 2]})), Attrition)
