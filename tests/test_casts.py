"""Casts in the language (to_int, to_float, to_string, to_date), the hint for
text compared with a number, PostgreSQL's round() of a float nested in itself,
and ecommerce.historic_clv in SQL (issue 19).

The rules are docs/decisions.md 126-140; the hand-computed agreement case
``casts`` of test_engine_agreement.py runs them on every engine.  Here: the
ends of the double range in text (the reference is Python's ``float()``, a
correctly rounded parser), checker refusals, and the SQL gaps.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pyarrow as pa
import pytest
from engines import Runner, runner

import segql

AS_OF = dt.datetime(2024, 3, 31, 10, 30, tzinfo=dt.UTC)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Runner:
    return runner(request.param, request)


FLOAT_TEXTS = [
    "1.7976931348623157e308",  # the largest double
    "1.7976931348623158e308",  # rounds down to it
    "1.8e308",  # beyond: inf
    "-1" + "0" * 400,  # -1e400: -inf
    "4.9e-324",  # the least subnormal
    "3e-324",  # rounds up to it
    "2e-324",  # below half of it: 0.0
    "1e-5000",  # an exponent NUMERIC cannot hold: 0.0
    "0.000000001e+99999",  # 1e99990: inf
    "0e99999",
    "2.2250738585072011e-308",  # subnormal, next to the least normal
    "123456789012345678901234567890",
    " +.5E1 ",
    "1e",
    "e5",
    "--1",
    "1.5.2",
]


def _expected(text: str) -> float | None:
    try:
        value = float(text)  # Python's parser: correctly rounded, overflow to inf
    except ValueError:
        return None
    return None if "_" in text or text.strip().lower().startswith(("0x", "-0x")) else value


@pytest.mark.parametrize("engine", ["arrow", "duckdb", "postgres"], indirect=True)
def test_to_float_of_text_at_the_ends_of_the_double_range(engine: Runner) -> None:
    profile = pa.table({"id": list(range(len(FLOAT_TEXTS))), "s": FLOAT_TEXTS})
    out = engine.run(segql.compile("feature f = to_float(s)"), profile, key="id", as_of=AS_OF).sort_by("id")
    got = out.column("f").to_pylist()
    for text, value in zip(FLOAT_TEXTS, got, strict=True):
        want = _expected(text)
        assert (value is None and want is None) or value == want, (text, value, want)
        if want == 0.0:
            assert math.copysign(1.0, value) == math.copysign(1.0, want), text


def test_arrow_casts_by_hand() -> None:
    profile = pa.table(
        {
            "s": [" 007 ", "1_000", "0x10", "٣", "12.0", "2024-2-01", "2024-12-31", "0000-01-01"],
            "f": [-0.9, 0.9, 1e19, -1e19, None, 4.5, -4.5, 9.2e18],
        }
    )
    out = segql.compile(
        "feature i = to_int(s)\nfeature d = to_date(s)\nfeature fi = to_int(f)\nfeature t = to_string(to_int(f))"
    ).evaluate(profile)
    assert out.column("i").to_pylist() == [7, None, None, None, None, None, None, None]
    assert out.column("d").to_pylist() == [None] * 6 + [dt.date(2024, 12, 31), None]
    assert out.column("fi").to_pylist() == [0, 0, None, None, None, 4, -4, 9200000000000000000]
    assert out.column("t").to_pylist() == ["0", "0", None, None, None, "4", "-4", "9200000000000000000"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("feature x = to_string(f)", "to_string() cannot convert a float value: a float's text differs"),
        ("feature x = to_string(ts)", "to_string() cannot convert a timestamp value"),
        ("feature x = to_int(d)", "to_int() cannot convert a date value"),
        ("feature x = to_date(f)", "to_date() cannot convert a float value"),
    ],
)
def test_casts_refuse_types_they_cannot_convert_alike(source: str, message: str) -> None:
    schema = pa.schema([("f", pa.float64()), ("ts", pa.timestamp("us")), ("d", pa.date32())])
    with pytest.raises(segql.SegqlTypeError) as caught:
        segql.compile(source).check(schema)
    assert message in caught.value.message
    assert caught.value.line == 1


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        (
            "segment s = age > 30",
            "age holds text: compare it as a number with to_float(age) or to_int(age), "
            "or read the column as a number (CSV: --schema age=float)",
        ),
        ("segment s = n = '30'", 'a number is written without quotes: 30, not "30"'),
    ],
)
def test_text_compared_with_a_number_hints_a_cast_not_quotes(source: str, hint: str) -> None:
    schema = pa.schema([("age", pa.string()), ("n", pa.int64())])
    with pytest.raises(segql.SegqlTypeError) as caught:
        segql.compile(source).check(schema)
    assert caught.value.hint == hint
    # and the cast it suggests works
    out = segql.compile("segment s = to_float(age) > 30").evaluate(pa.table({"age": ["31", "29", "n/a", None]}))
    assert out.column("s").to_pylist() == [True, False, False, False]


NESTED_ROUNDS = """
feature a = round(x, 2)
feature b = round(a * 1.1, 2)
feature c = round(b * 1.1, 2)
feature d = round(round(round(round(x * 3, 3) / 7, 2) * 11, 1))
"""


@pytest.mark.parametrize("engine", ["arrow", "duckdb", "postgres"], indirect=True)
def test_nested_rounds_of_floats_run_in_postgres(engine: Runner) -> None:
    """round() of a float repeats its argument ~20 times in PostgreSQL's formula; nested,
    the query grew geometrically and was refused ("nested too deeply").  The reference is
    DuckDB's own ROUND (the rule, docs/decisions.md 15) in SQL written by hand."""
    xs = [1.005, 2.675, -0.125, 1234.5678, 0.0, None, 1e300, -3.3333]
    profile = pa.table({"id": list(range(len(xs))), "x": pa.array(xs, pa.float64())})
    reference = duckdb.sql(
        "SELECT id, ROUND(x, 2) AS a, ROUND(ROUND(x, 2) * 1.1, 2) AS b,"
        " ROUND(ROUND(ROUND(x, 2) * 1.1, 2) * 1.1, 2) AS c,"
        " ROUND(ROUND(ROUND(ROUND(x * 3, 3) / 7, 2) * 11, 1), 0) AS d FROM profile ORDER BY id"
    ).fetch_arrow_table()
    out = engine.run(segql.compile(NESTED_ROUNDS), profile, key="id", as_of=AS_OF).sort_by("id")
    for name in "abcd":
        assert out.column(name).to_pylist() == reference.column(name).to_pylist(), name


CLV = """
feature clv = ecommerce.clv
feature half_margin = ecommerce.historic_clv(margin: 0.5)
feature given = ecommerce.historic_clv(monetary: 100, tenure_days: 50, margin: 0.5, horizon_days: 100)
feature nan_spend = ecommerce.historic_clv(monetary: sum(orders.amount) * (0.0 / 0.0))
segment big = ecommerce.clv > 1000
"""


@pytest.mark.parametrize("engine", ["arrow", "duckdb", "postgres"], indirect=True)
def test_historic_clv_in_sql_gives_the_hand_computed_values(engine: Runner) -> None:
    """As plugins/ecommerce/tests/test_clv_on_paper, as_of 2026-11-01 15:00Z:
    1: one order of 50 today at 09:00 -> tenure 0, counted as 1 -> 50 * 365 = 18250
    2: 30 ten days ago, 20 today -> 50 / 10 * 365 = 1825
    3: no orders -> null;  4: one order tomorrow (tenure -1) -> null.
    A NaN input is unusable: null."""
    as_of = dt.datetime(2026, 11, 1, 15)
    hours = [-6, -240, -6, 24]  # today 09:00, ten days ago, today 09:00, tomorrow
    orders = pa.table(
        {
            "id": [1, 2, 2, 4],
            "ts": pa.array([as_of + dt.timedelta(hours=h) for h in hours], pa.timestamp("us")),
            "amount": [50.0, 30.0, 20.0, 99.0],
        }
    )
    host = segql.PluginHost(discover=False, packs={"ecommerce": pytest.importorskip("segql_ecommerce")})
    program = segql.compile(CLV, plugins=host)
    out = engine.run(
        program,
        pa.table({"id": [1, 2, 3, 4]}),
        key="id",
        related={"orders": orders},
        as_of=dt.datetime(2026, 11, 1, 15, tzinfo=dt.UTC),
    ).sort_by("id")
    assert out.column("clv").to_pylist() == [18250.0, 1825.0, None, None]
    assert out.column("half_margin").to_pylist() == [9125.0, 912.5, None, None]
    assert out.column("given").to_pylist() == [100.0] * 4
    assert out.column("nan_spend").to_pylist() == [None] * 4
    assert out.column("big").to_pylist() == [True, True, False, False]
