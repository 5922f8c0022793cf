"""Messages that used to misdiagnose (issue 19): each names the actual mistake
and the fix, with the caret on the offending text."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

import segql
import segql.suggest
from segql.cli import main

DATES = pa.table(
    {
        "first_order": pa.array([dt.date(1997, 1, 1)], pa.date32()),
        "last_seen": pa.array([dt.datetime(1997, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", "UTC")),
        "cohort": ["1997-01"],
        "amount spent": [3.0],
    }
)


def error_of(source: str, table: pa.Table | None = None) -> segql.SegqlError:
    with pytest.raises(segql.SegqlError) as info:
        program = segql.compile(source)
        if table is not None:
            program.evaluate(table)
    return info.value


def under_caret(err: segql.SegqlError) -> str:
    *_, shown, carets = str(err).splitlines()
    start = carets.index("^") - 2
    return shown[2:][start : start + carets.count("^")]


def test_a_chained_comparison_in_a_segment_file_says_so_and_shows_the_rewrite() -> None:
    err = error_of("segment few_orders = 1 < count(orders) < 5\nsegment b = x > 1")
    assert (err.line, err.column, under_caret(err)) == (1, 40, "<")
    assert err.message == "unexpected '<'"
    assert err.hint == "comparisons cannot be chained; write `1 < count(orders) and count(orders) < 5`"


def test_a_chained_comparison_in_an_expression_names_its_operands() -> None:
    err = error_of("age >= 18 and 18 <= age <= $max")
    assert err.hint == "comparisons cannot be chained; write `18 <= age and age <= $max`"


@pytest.mark.parametrize(
    ("source", "line", "name"),
    [
        ("young = age < 30", 1, "young"),  # the first declaration: read as a bare expression
        ("# people\nyoung = age < 30\nsegment old = age > 60", 2, "young"),
        ("segment old = age > 60\nyoung = age < 30", 2, "young"),
        ('segment old = age > 60\nyoung "Under 30" = age < 30', 2, "young"),
        ("feature n = count(orders)\nyoung = age between 18 and 29", 2, "young"),
    ],
)
def test_a_forgotten_segment_keyword_is_named(source: str, line: int, name: str) -> None:
    err = error_of(source)
    assert "chained" not in str(err)
    assert (err.line, err.column, under_caret(err)) == (line, 1, name)
    assert err.message == f"'{name} = …' is not a declaration: it has no keyword"
    assert err.hint == f"write `segment {name} = …` (or `feature {name} = …`)"


@pytest.mark.parametrize(
    ("literal", "hint"),
    [
        ("1997-02-30", "February 1997 has 28 days: day 30 does not exist"),
        ("1996-02-30", "February 1996 has 29 days: day 30 does not exist"),
        ("1997-04-31", "April 1997 has 30 days: day 31 does not exist"),
        ("1997-13-01", "there is no month 13: months go from 01 to 12 (dates are written YYYY-MM-DD)"),
        ("1997-02-29T10:00:00Z", "February 1997 has 28 days: day 29 does not exist"),
        (
            "1997-02-28T24:00:00Z",
            "there is no hour 24: hours go from 00 to 23 (timestamps are written YYYY-MM-DDTHH:MM:SS[Z])",
        ),
    ],
)
def test_a_day_that_does_not_exist(literal: str, hint: str) -> None:
    err = error_of(f"segment s = first_order > {literal}")
    assert err.message == f"invalid {'timestamp' if 'T' in literal else 'date'} {literal}"
    assert err.hint == hint
    assert under_caret(err) == literal


def test_a_name_with_a_space_gets_the_backquotes_hint() -> None:
    for source, column in (("segment s = amount spent > 3", 20), ("amount spent > 3", 8)):
        err = error_of(source)
        assert (err.column, under_caret(err)) == (column, "spent")
        assert err.hint == "a name with spaces is written in backquotes: `amount spent`"
    # ... and the backquoted name is what the data has
    assert segql.evaluate("`amount spent` > 2", DATES).to_pylist() == [True]


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ('first_order > "1997-02-01"', "1997-02-01"),
        ('"1997-02-01" <= first_order', "1997-02-01"),
        ('last_seen >= "1997-02-01T10:00:00Z"', "1997-02-01T10:00:00Z"),
        ('first_order between "1997-01-01" and 1997-03-01', "1997-01-01"),
        ('first_order in ["1997-01-01", 1997-01-02]', "1997-01-01"),
    ],
)
def test_a_quoted_date_compared_with_a_date_column_gets_the_drop_the_quotes_hint(source: str, shown: str) -> None:
    err = error_of(source, DATES)
    assert err.hint == f"drop the quotes: write {shown} (date and timestamp literals have no quotes)"
    assert under_caret(err) == f'"{shown}"'
    # the hint is right: without the quotes it evaluates (first_order is 1997-01-01)
    fixed = source.replace(f'"{shown}"', shown)
    assert segql.evaluate(fixed, DATES).to_pylist() == [fixed.startswith(("first_order between", "first_order in"))]


def test_a_quoted_impossible_date_gets_both_fixes() -> None:
    err = error_of('first_order > "1997-02-30"', DATES)
    assert err.hint == "drop the quotes, and fix the date: February 1997 has 28 days: day 30 does not exist"


def test_text_that_looks_like_a_date_in_a_text_column_stays_text() -> None:
    assert segql.evaluate('cohort = "1997-01"', DATES).to_pylist() == [True]


@pytest.mark.parametrize(
    ("api", "command_line"),
    [
        ("pass params={'min': …} or declare it", "give --param min=VALUE or declare it"),
        (
            "give the table and the key column: related={'orders': …}, key=… "
            "(command line: --related orders=PATH --key COLUMN)",
            "give the table and the key column: --related orders=PATH --key COLUMN",
        ),
        (
            "expected a timedelta or a duration such as '30d', got int 3",
            "expected a duration such as 30d, 2w, 6m, 1y or 12h, got the number 3",
        ),
        ("expected a datetime.date, got str 'x'", "expected a date (YYYY-MM-DD), got the text 'x'"),
        ("expected a str, got float 2.5", "expected text, got the number 2.5"),
        ("expected a bool, got bool True", "expected true or false, got true"),
        ("key= is needed when related tables are given", "--key is needed when related tables are given"),
        ("e.g. since='2026-10-01' or previous='y.parquet'", "e.g. --since 2026-10-01 or --previous y.parquet"),
        (
            "pass segments=['a', 'b'] (segql changes: --segments a,b)",
            "pass --segments a,b",
        ),
    ],
)
def test_command_line_wording(api: str, command_line: str) -> None:
    assert segql.suggest.command_line_wording(api) == command_line


def test_command_line_users_see_no_python_words(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "w.segql"
    path.write_text("param window: duration = 30d\nparam since: date\nsegment s = age > 1\n", encoding="utf-8")
    assert main(["check", str(path), "--param", "window=3"]) == 1
    err = capsys.readouterr().err
    assert "timedelta" not in err and "got int" not in err
    assert "expected a duration such as 30d, 2w, 6m, 1y or 12h, got the number 3" in err
    assert main(["check", str(path), "--param", "since=soon"]) == 1
    err = capsys.readouterr().err
    assert "datetime" not in err and "got str" not in err
    assert "expected a date (YYYY-MM-DD), got the text 'soon'" in err
