"""Error positions, carets and hints (LANGUAGE.md §6, §7): every error for bad input is a
SegqlError with 1-based .line/.column and a message that shows the source line with a caret."""

from __future__ import annotations

import pyarrow as pa
import pytest

import segql

TABLE = pa.table({"age": [30], "name": ["Ann"], "country": ["PL"], "x": [1], "y": [2], "z": [3]})


def raised(source: str, table: pa.Table = TABLE) -> segql.SegqlError:
    """The error that compiling ``source`` or evaluating it over ``table`` raises."""
    with pytest.raises(segql.SegqlError) as info:
        segql.compile(source).evaluate(table)
    return info.value


def marked(err: segql.SegqlError) -> tuple[str, str]:
    """The source line shown in ``str(err)`` and the text under its caret line."""
    *_, shown, carets = str(err).splitlines()
    assert shown.startswith("  ") and carets.startswith("  ")
    shown, carets = shown[2:], carets[2:]
    start = carets.index("^")
    width = len(carets) - start
    assert carets == " " * start + "^" * width
    assert start == err.column - 1, "the caret is not at err.column"
    return shown, shown[start : start + width]


CASES = [
    # (source, error class, line, column, text under the caret, message, hint)
    pytest.param(
        "x < y < z", segql.SegqlSyntaxError, 1, 7, "<", "unexpected '<'",
        "comparisons cannot be chained; write `x < y and y < z`", id="chained-comparison",
    ),
    pytest.param(
        "x > 1 && y > 2", segql.SegqlSyntaxError, 1, 7, "&", "unexpected character '&'", "use 'and'", id="and-and",
    ),
    pytest.param(
        "x > 1 || y > 2", segql.SegqlSyntaxError, 1, 7, "|", "unexpected character '|'", "use 'or'", id="or-or",
    ),
    pytest.param(
        'name = "abc', segql.SegqlSyntaxError, 1, 8, '"', "unterminated string",
        'a string is missing its closing "', id="unterminated-double",
    ),
    pytest.param(
        "segment a = x > 1\nsegment b =\n    name = 'abc", segql.SegqlSyntaxError, 3, 12, "'",
        "unterminated string", "a string is missing its closing '", id="unterminated-single-line-3",
    ),
    pytest.param(
        "x = `abc", segql.SegqlSyntaxError, 1, 5, "`", "unterminated quoted name",
        "a quoted name is missing its closing `", id="unterminated-quoted-name",
    ),
    pytest.param(
        "segment a = x > 1\nsegment b = x < 2\nsegment c = x >> 3", segql.SegqlSyntaxError, 3, 16, ">",
        "unexpected '>'", None, id="syntax-line-3",
    ),
    pytest.param(
        "segment a = x > 1\nsegment b = x > 2 &&\n  x < 3", segql.SegqlSyntaxError, 2, 19, "&",
        "unexpected character '&'", "use 'and'", id="and-and-line-2",
    ),
    pytest.param(
        "age 30", segql.SegqlSyntaxError, 1, 5, "30", "unexpected number 30",
        "two values need an operator between them (and, or, =, +, …)", id="missing-operator",
    ),
    pytest.param(
        "case when x = 1 then 'a' end end", segql.SegqlSyntaxError, 1, 30, "end", "unexpected keyword 'end'",
        "expected the end of the input", id="extra-end",
    ),
    pytest.param(
        "agee > 30", segql.SegqlNameError, 1, 1, "agee", "unknown column 'agee'", "did you mean 'age'?",
        id="unknown-column",
    ),
    pytest.param(
        "segment a = age > 1\n\n  -- a comment\nsegment b = agge > 2", segql.SegqlNameError, 4, 13, "agge",
        "unknown column 'agge'", "did you mean 'age'?", id="unknown-column-line-4",
    ),
    pytest.param(
        "age > 1 and\n  nmae = 'x'", segql.SegqlNameError, 2, 3, "nmae", "unknown column 'nmae'",
        "did you mean 'name'?", id="unknown-column-line-2",
    ),
    pytest.param(
        "lowr(name) = 'a'", segql.SegqlNameError, 1, 1, "lowr", "unknown function 'lowr'",
        "did you mean 'lower'?", id="unknown-function",
    ),
    pytest.param(
        "x > 1 and\n\n  days_sinc(age) > 3", segql.SegqlNameError, 3, 3, "days_sinc",
        "unknown function 'days_sinc'", "did you mean 'days_since'?", id="unknown-function-line-3",
    ),
    pytest.param(
        "round(2.5, digitz: 1) > 1", segql.SegqlNameError, 1, 12, "digitz: 1",
        "round has no argument 'digitz'", "did you mean 'digits'?", id="unknown-named-argument",
    ),
    pytest.param(
        "lower(name, 1) = 'a'", segql.SegqlTypeError, 1, 13, "1", "lower takes at most 1 argument",
        "signature: lower(s: string) -> string", id="too-many-arguments",
    ),
    pytest.param(
        "segment a =\n  x > 1 and\n  lower(name, name) = 'x'", segql.SegqlTypeError, 3, 15, "name",
        "lower takes at most 1 argument", "signature: lower(s: string) -> string", id="too-many-arguments-line-3",
    ),
    pytest.param(
        "distance_km(1, 2, 3) > 1", segql.SegqlTypeError, 1, 1, "distance_km",
        "distance_km needs argument 'lon2'",
        "signature: distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float",
        id="too-few-arguments",
    ),
    pytest.param(
        "age > 'x'", segql.SegqlTypeError, 1, 7, "'x'", "cannot compare age (int) with 'x' (string)",
        "strings and numbers never compare equal; quote both or neither", id="incompatible-comparison",
    ),
    pytest.param(
        "segment a = age > 1\nsegment b =\n  age > 'x'", segql.SegqlTypeError, 3, 9, "'x'",
        "cannot compare age (int) with 'x' (string)",
        "strings and numbers never compare equal; quote both or neither", id="incompatible-comparison-line-3",
    ),
    pytest.param(
        "segment s = age + 1", segql.SegqlTypeError, 1, 13, "age + 1",
        "segment 's' must be a condition (true or false), but its expression is int",
        "compare it with something, e.g. `… > 0`, or declare it as a feature", id="segment-not-boolean",
    ),
    pytest.param(
        "segment a = b\nsegment b = a", segql.CycleError, 2, 13, "a",
        "segments refer to each other in a cycle: a -> b -> a",
        "break the cycle by removing one of these references", id="cycle-2",
    ),
    pytest.param(
        "segment a = b\nsegment b = c\nsegment c = a", segql.CycleError, 3, 13, "a",
        "segments refer to each other in a cycle: a -> b -> c -> a",
        "break the cycle by removing one of these references", id="cycle-3",
    ),
    pytest.param(
        "age > $min", segql.ParameterError, 1, 7, "$min", "parameter $min has no value",
        "pass params={'min': …} or declare it with a default: param min: <type> = …", id="missing-param",
    ),
    pytest.param(
        "segment s = x > 1\n  and y > 1\n  and $limit > 3", segql.ParameterError, 3, 7, "$limit",
        "parameter $limit has no value",
        "pass params={'limit': …} or declare it with a default: param limit: <type> = …", id="missing-param-line-3",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("source", "cls", "line", "column", "text", "message", "hint"), CASES)
def test_error_position_caret_and_hint(source, cls, line, column, text, message, hint):
    err = raised(source)
    assert type(err) is cls
    assert (err.line, err.column) == (line, column)
    assert err.message == message
    if hint is not None:
        assert err.hint == hint
    shown, underlined = marked(err)
    assert shown == source.splitlines()[line - 1]
    assert underlined == text
    first = str(err).splitlines()[0]
    expected_first = f"line {line}, column {column}: {message}"
    assert first == (f"{expected_first}; {err.hint}" if err.hint else expected_first)


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("age +", 1, 6),
        ("age > 30 and", 1, 13),
        ("(age > 30", 1, 10),
        ("x between 1", 1, 12),
        ("segment a = x > 1\nsegment b = (x > 2", 2, 19),
    ],
)
def test_unexpected_end_of_input_points_past_the_last_character(source, line, column):
    err = raised(source)
    assert isinstance(err, segql.SegqlSyntaxError)
    assert err.message == "unexpected end of input"
    assert (err.line, err.column) == (line, column)
    shown, underlined = marked(err)
    assert shown == source.splitlines()[-1]
    assert underlined == ""


def test_unclosed_parenthesis_hint_lists_what_was_expected():
    err = raised("(age > 30")
    assert err.hint == "expected ')', ','"


def test_error_classes_are_segql_errors():
    for cls in (
        segql.SegqlSyntaxError,
        segql.SegqlNameError,
        segql.SegqlTypeError,
        segql.CycleError,
        segql.ParameterError,
        segql.DataError,
        segql.EvaluationError,
        segql.LimitError,
    ):
        assert issubclass(cls, segql.SegqlError)


def test_error_without_position():
    err = raised("")
    assert isinstance(err, segql.SegqlSyntaxError)
    assert err.line is None and err.column is None
    assert "^" not in str(err)


def test_caret_on_a_line_with_leading_indentation():
    source = "segment s =\n        agee > 1"
    err = raised(source)
    assert (err.line, err.column) == (2, 9)
    assert marked(err) == ("        agee > 1", "agee")


def test_column_counts_characters_not_bytes():
    err = raised("name = 'żółw' and agee > 1")
    assert (err.line, err.column) == (1, 19)
    assert marked(err)[1] == "agee"


def test_unknown_name_without_a_close_match_has_no_suggestion():
    err = raised("qqqqqq > 1")
    assert isinstance(err, segql.SegqlNameError)
    assert err.message == "unknown column 'qqqqqq'"
    assert err.hint is None or "did you mean" not in err.hint


def test_error_in_a_declaration_points_into_that_declaration():
    source = "param limit: int = 5\nfeature f = x + 1\nsegment s =\n  f > $limit and\n  nme = 'x'"
    err = raised(source)
    assert (err.line, err.column) == (5, 3)
    assert err.hint == "did you mean 'name'?"


def test_evaluation_error_has_position_and_caret():
    err = raised("x > 0 and\n  x * 9223372036854775807 > 0", pa.table({"x": [2]}))
    assert isinstance(err, segql.EvaluationError)
    assert (err.line, err.column) == (2, 3)
    assert marked(err) == ("  x * 9223372036854775807 > 0", "x * 9223372036854775807")
