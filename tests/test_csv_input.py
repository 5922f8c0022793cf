"""CSV input with types (segql.csvinput, issue 19): empty cells null for every
type, leading zeros kept when a column is read as text, stray values and cells
that do not match their type reported with file, line and column, and the
``--schema`` option's values.  Expected tables are written by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import segql
from segql.csvinput import parse_schema_option, physical_line, read_csv, schema_for

PEOPLE = 'id,zip,name,age,joined\n1,02134,"Ann\nLee",31,2024-01-05\n\n2,10001,,,\n3,,"",40,2023-12-31\n'
"""Row 1 has a name on two lines; an empty line follows it; row 2 has empty cells."""


def write(tmp_path: Path, text: str, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_empty_cells_are_null_for_text_as_for_numbers(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, PEOPLE))
    assert table.column("name").to_pylist() == ["Ann\nLee", None, None]  # "" and an empty cell alike
    assert table.column("age").to_pylist() == [31, None, 40]
    assert table.column("joined").to_pylist() == [dt.date(2024, 1, 5), None, dt.date(2023, 12, 31)]
    # and a segment sees them as missing: "name is null" holds for both
    out = segql.compile("segment no_name = name is null").evaluate(table)
    assert out.column("no_name").to_pylist() == [False, True, True]


def test_leading_zeros_are_kept_when_the_column_is_text(tmp_path: Path) -> None:
    path = write(tmp_path, PEOPLE)
    assert read_csv(path).column("zip").to_pylist() == [2134, 10001, None]  # inferred: a number
    kept = read_csv(path, schema={"zip": "string"})
    assert kept.column("zip").to_pylist() == ["02134", "10001", None]
    assert read_csv(path, text_columns=["zip"]).column("zip").to_pylist() == ["02134", "10001", None]
    out = segql.compile('segment boston = zip starts with "021"').evaluate(kept)
    assert out.column("boston").to_pylist() == [True, False, False]


def test_a_stray_value_is_an_error_naming_file_line_and_column(tmp_path: Path) -> None:
    text = 'id,note,age\n1,"two\nlines",31\n2,x,29\n\n3,y,n/a\n4,z,44\n'
    path = write(tmp_path, text)
    with pytest.raises(segql.DataError) as caught:
        read_csv(path)
    message = caught.value.message
    assert f"{path}, line 6, column 'age' (#3): 'n/a' is a stray value" in message
    assert "3 of the column's 4 values are numbers" in message
    assert "--schema age=string" in (caught.value.hint or "")
    # read as text on request, the cast then makes numbers of what converts
    table = read_csv(path, schema={"age": "string"})
    out = segql.compile("feature a = to_int(age)").evaluate(table)
    assert out.column("a").to_pylist() == [31, 29, None, 44]


@pytest.mark.parametrize(
    ("cells", "stray", "line"),
    [
        (["1.5", "-inf", "NaN", " +2", ".5", "Infinity", "abc"] + ["7"] * 30, "abc", 8),  # numbers spelled all ways
        (["2024-01-05", "2024-02-29", "soon"] + ["2023-12-31"] * 30, "soon", 4),
        (["x1", "y2", "z3"], None, 0),  # text: no stray
        (["a@b.c"] * 5 + ["1", "2"], None, 0),  # mostly text with two numbers: text
    ],
)
def test_strays_are_found_among_repeated_and_special_texts(
    tmp_path: Path, cells: list[str], stray: str | None, line: int
) -> None:
    """The check tests each distinct text once and skips columns that mostly cannot convert;
    the row it reports is still the first stray's."""
    path = write(tmp_path, "id,v\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells)))
    if stray is None:
        assert read_csv(path).column("v").to_pylist() == cells
        return
    with pytest.raises(segql.DataError, match=f"line {line}, column 'v' \\(#2\\): '{stray}' is a stray value"):
        read_csv(path)


def test_explicit_types_and_cells_that_do_not_match(tmp_path: Path) -> None:
    text = "id,amount,vip,seen,price\n1, 12 ,TRUE,2024-01-01T10:00:00+02:00,1.50\n2,,0,2024-01-02 00:00:00,\n"
    path = write(tmp_path, text)
    table = read_csv(path, schema={"amount": "int", "vip": "bool", "seen": "timestamp", "price": "decimal(10,2)"})
    assert table.schema.field("amount").type == pa.int64()
    assert table.column("amount").to_pylist() == [12, None]
    assert table.column("vip").to_pylist() == [True, False]
    assert table.column("seen").to_pylist() == [
        dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
    ]
    assert table.column("price").to_pylist() == [Decimal("1.50"), None]
    bad = write(tmp_path, 'id,amount\n1,3\n2,"4"\n3,4.5\n', "bad.csv")
    with pytest.raises(segql.DataError, match=r"bad\.csv, line 4, column 'amount' \(#2\): '4\.5' is not an int"):
        read_csv(bad, schema={"amount": "int"})
    with pytest.raises(segql.DataError, match="not a column of the file"):
        read_csv(bad, schema={"amout": "int"})


def test_the_schema_option() -> None:
    assert parse_schema_option(["zip=string,price=decimal(10, 2)", "age=INT"]) == {
        "zip": "string",
        "price": "decimal(10,2)",
        "age": "int",
    }
    both = parse_schema_option("zip=string,orders.amount=float,orders.sku=string")
    assert schema_for(both) == {"zip": "string"}
    assert schema_for(both, "orders") == {"amount": "float", "sku": "string"}
    assert schema_for(both, "sessions") == {}
    with pytest.raises(segql.DataError, match="unknown column type 'number1'"):
        parse_schema_option("age=number1")
    with pytest.raises(segql.DataError, match="write NAME=TYPE"):
        parse_schema_option("age")


def test_physical_lines_count_quoted_line_breaks_and_empty_lines(tmp_path: Path) -> None:
    path = write(tmp_path, PEOPLE)
    assert [physical_line(path, row) for row in range(3)] == [2, 5, 6]
