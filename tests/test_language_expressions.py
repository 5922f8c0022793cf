"""Every form of the expression table (LANGUAGE.md §2), with hand-computed expectations.

All relative times are resolved against AS_OF, Saturday 2024-06-15 12:30 UTC.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

import segql

UTC = dt.UTC
AS_OF = dt.datetime(2024, 6, 15, 12, 30, tzinfo=UTC)
ONE_ROW = pa.table({"x": [1]})


def members(source: str, table: pa.Table, **options) -> list[bool]:
    """Membership of each row in the one-condition ``source``."""
    return segql.evaluate(source, table, as_of=AS_OF, **options).to_pylist()


def values(expression: str, table: pa.Table = ONE_ROW, **options) -> list:
    """The values of ``expression`` as a feature (nulls kept)."""
    out = segql.compile(f"feature f = {expression}").evaluate(table, as_of=AS_OF, **options)
    return out.column("f").to_pylist()


def ts(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def ts_table(*stamps: dt.datetime | None) -> pa.Table:
    return pa.table({"t": pa.array(stamps, pa.timestamp("us", tz="UTC"))})


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("literal", "expected", "arrow_type"),
    [
        ("42", 42, pa.int64()),
        ("-3", -3, pa.int64()),
        ("2.5", 2.5, pa.float64()),
        ("1e3", 1000.0, pa.float64()),
        ("1_000", 1000, pa.int64()),
        ("1_000.5", 1000.5, pa.float64()),
        ("2.5e-1", 0.25, pa.float64()),
        ("9223372036854775807", 9223372036854775807, pa.int64()),
        ("-9223372036854775808", -9223372036854775808, pa.int64()),
    ],
)
def test_number_literals(literal, expected, arrow_type):
    out = segql.compile(f"feature f = {literal}").evaluate(ONE_ROW, as_of=AS_OF)
    assert out.schema.field("f").type == arrow_type
    value = out.column("f")[0].as_py()
    assert value == expected
    assert type(value) is type(expected)


def test_number_literals_compare_with_columns():
    table = pa.table({"n": [999, 1000, 1001]})
    assert members("n = 1_000", table) == [False, True, False]
    assert members("n >= 1e3", table) == [False, True, True]
    assert members("n > -3", pa.table({"n": [-4, -3, -2]})) == [False, False, True]


def test_integer_literal_too_large_is_an_error():
    with pytest.raises(segql.SegqlError):
        segql.compile("x > 9223372036854775808")


# ---------------------------------------------------------------- strings
@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ('"PL"', "PL"),
        ("'PL'", "PL"),
        ("'it''s'", "it's"),
        ('"a\\"b"', 'a"b'),
        ('"a""b"', 'a"b'),
        ('"it\'s"', "it's"),
        ('"back\\\\slash"', "back\\slash"),
        ('"tab\\tnew\\nline"', "tab\tnew\nline"),
        ('"\\u00e9t\\u00e9"', "été"),
        ('"\\U0001F600"', "\U0001f600"),
        ('"\\d+"', "\\d+"),
        ("'no\\nescape'", "no\\nescape"),
        ("'say \"hi\"'", 'say "hi"'),
        ('"żółw"', "żółw"),
        ('""', ""),
    ],
)
def test_string_literals(literal, expected):
    assert values(literal) == [expected]


def test_string_literal_compares_with_column():
    table = pa.table({"name": ["it's", "its", 'a"b']})
    assert members("name = 'it''s'", table) == [True, False, False]
    assert members('name = "a\\"b"', table) == [False, False, True]


# ------------------------------------------------------- booleans and null
@pytest.mark.parametrize(
    ("literal", "expected"),
    [("true", True), ("TRUE", True), ("True", True), ("false", False), ("FALSE", False), ("fAlSe", False)],
)
def test_boolean_literals_are_case_insensitive(literal, expected):
    assert values(literal) == [expected]
    assert members(literal, pa.table({"x": [1, 2]})) == [expected, expected]


@pytest.mark.parametrize("literal", ["null", "NULL", "Null"])
def test_null_literal_is_case_insensitive(literal):
    assert values(literal) == [None]
    assert members(f"x is {literal}", pa.table({"x": [1, None]})) == [False, True]


def test_boolean_column_compared_with_literal():
    table = pa.table({"b": [True, False, None]})
    assert members("b = true", table) == [True, False, False]
    assert members("b = FALSE", table) == [False, True, False]
    assert members("b", table) == [True, False, False]


# ------------------------------------------------- dates and timestamps
def test_date_literal():
    assert values("2024-12-24") == [dt.date(2024, 12, 24)]
    table = pa.table({"d": pa.array([dt.date(2024, 12, 23), dt.date(2024, 12, 24), None], pa.date32())})
    assert members("d = 2024-12-24", table) == [False, True, False]
    assert members("d < 2024-12-24", table) == [True, False, False]


@pytest.mark.parametrize(
    "literal",
    ["2024-12-24T10:30:00", "2024-12-24T10:30:00Z", "2024-12-24T12:30:00+02:00", "2024-12-24T10:30"],
)
def test_timestamp_literals_are_utc_instants(literal):
    table = ts_table(ts(2024, 12, 24, 10, 29, 59), ts(2024, 12, 24, 10, 30), ts(2024, 12, 24, 10, 30, 1))
    assert members(f"t = {literal}", table) == [False, True, False]
    assert members(f"t >= {literal}", table) == [False, True, True]


def test_timestamp_literal_with_fraction():
    table = ts_table(ts(2024, 12, 24, 10, 30, 0), dt.datetime(2024, 12, 24, 10, 30, 0, 250_000, tzinfo=UTC))
    assert members("t = 2024-12-24T10:30:00.25Z", table) == [False, True]


def test_naive_timestamp_column_is_utc():
    table = pa.table({"t": pa.array([dt.datetime(2024, 12, 24, 10, 30)], pa.timestamp("us"))})
    assert members("t = 2024-12-24T10:30:00Z", table) == [True]


# -------------------------------------------------------------- durations
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("t + 30d", ts(2024, 3, 1, 9)),
        ("t - 30d", ts(2024, 1, 1, 9)),
        ("t + 2w", ts(2024, 2, 14, 9)),
        ("t + 12h", ts(2024, 1, 31, 21)),
        ("t - 12h", ts(2024, 1, 30, 21)),
        # Months and years are calendar units, clamped to the end of the month.
        ("t + 1m", ts(2024, 2, 29, 9)),
        ("t + 6m", ts(2024, 7, 31, 9)),
        ("t - 2m", ts(2023, 11, 30, 9)),
        ("t + 1y", ts(2025, 1, 31, 9)),
        ("t + 13m", ts(2025, 2, 28, 9)),
    ],
)
def test_duration_literals_shift_timestamps(expression, expected):
    table = ts_table(ts(2024, 1, 31, 9))
    assert members(f"{expression} = {expected.strftime('%Y-%m-%dT%H:%M:%SZ')}", table) == [True]


def test_year_from_29_february_clamps():
    table = ts_table(ts(2024, 2, 29, 8))
    assert members("t + 1y = 2025-02-28T08:00:00Z", table) == [True]


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("30d", dt.timedelta(days=30)),
        ("2w", dt.timedelta(days=14)),
        ("12h", dt.timedelta(hours=12)),
        ("1_0d", dt.timedelta(days=10)),
    ],
)
def test_fixed_duration_literal_values(literal, expected):
    assert values(literal) == [expected]


def test_date_arithmetic():
    table = pa.table(
        {
            "t": pa.array([ts(2024, 3, 1, 6)], pa.timestamp("us", tz="UTC")),
            "u": pa.array([ts(2024, 2, 28, 18)], pa.timestamp("us", tz="UTC")),
            "d": pa.array([dt.date(2024, 1, 31)], pa.date32()),
            "e": pa.array([dt.date(2024, 1, 1)], pa.date32()),
        }
    )
    assert values("t - u", table) == [dt.timedelta(days=1, hours=12)]
    assert values("t - u = 36h", table) == [True]
    assert values("t - u > 1d", table) == [True]
    assert values("d + 1m", table) == [dt.date(2024, 2, 29)]
    assert values("d - 30d", table) == [dt.date(2024, 1, 1)]
    assert values("d + 2w", table) == [dt.date(2024, 2, 14)]
    assert values("d - e", table) == [dt.timedelta(days=30)]
    assert members("d + 12h = 2024-01-31T12:00:00Z", table) == [True]


def test_durations_compare_with_durations():
    table = ts_table(ts(2024, 6, 1), ts(2024, 6, 10))
    # now - t is 14d 12h30m and 5d 12h30m.
    assert members("now - t > 2w", table) == [True, False]
    assert members("now - t < 1w", table) == [False, True]
    assert members("now - t >= 132h", table) == [True, True]


# ---------------------------------------------------------- relative times
@pytest.mark.parametrize(
    ("condition", "row", "expected"),
    [
        # -30d is 2024-05-16 12:30 UTC.
        ("t >= -30d", ts(2024, 5, 16, 12, 30), True),
        ("t >= -30d", ts(2024, 5, 16, 12, 29, 59), False),
        # +7d is 2024-06-22 12:30 UTC.
        ("t <= +7d", ts(2024, 6, 22, 12, 30), True),
        ("t <= +7d", ts(2024, 6, 22, 12, 30, 1), False),
        ("t = now", ts(2024, 6, 15, 12, 30), True),
        ("t < now", ts(2024, 6, 15, 12, 30), False),
        ("t = today", ts(2024, 6, 15), True),
        ("t >= today", ts(2024, 6, 14, 23, 59, 59), False),
        # now - 2w is 2024-06-01 12:30 UTC.
        ("t = now - 2w", ts(2024, 6, 1, 12, 30), True),
        ("t > now - 2w", ts(2024, 6, 1, 12, 30), False),
        # today + 1m is 2024-07-15 00:00 UTC.
        ("t = today + 1m", ts(2024, 7, 15), True),
        ("t < today + 1m", ts(2024, 7, 14, 23, 59), True),
        # -6m and -1y are calendar months before as_of.
        ("t = -6m", ts(2023, 12, 15, 12, 30), True),
        ("t = -1y", ts(2023, 6, 15, 12, 30), True),
        ("t = -12h", ts(2024, 6, 15, 0, 30), True),
    ],
)
def test_relative_times(condition, row, expected):
    assert members(condition, ts_table(row)) == [expected]


def test_relative_time_ranges_shape_from_the_contract():
    table = ts_table(ts(2024, 3, 1), ts(2024, 4, 1), ts(2024, 5, 20), ts(2024, 6, 1), None)
    # -90d = 2024-03-17 12:30, -30d = 2024-05-16 12:30.
    assert members("t not between -90d and -30d", table) == [True, False, True, True, False]
    assert members("t < -180d", ts_table(ts(2023, 12, 18), ts(2023, 12, 19))) == [True, False]


def test_relative_time_moves_with_as_of():
    table = ts_table(ts(2024, 6, 1))
    program = segql.compile("segment recent = t >= -7d")
    later = program.evaluate(table, as_of=ts(2024, 6, 20)).column("recent").to_pylist()
    sooner = program.evaluate(table, as_of=ts(2024, 6, 5)).column("recent").to_pylist()
    assert (later, sooner) == ([False], [True])


# ------------------------------------------------------------------ lists
@pytest.mark.parametrize(
    "condition",
    ['country in ["PL", "DE"]', "country in ('PL', 'DE')", 'country in ["PL", "DE",]', "country in (\"PL\", 'DE')"],
)
def test_list_literal_forms(condition):
    table = pa.table({"country": ["PL", "DE", "FR", None]})
    assert members(condition, table) == [True, True, False, False]


def test_list_literal_values():
    assert values("[1, 2, 3]") == [[1, 2, 3]]
    assert values('("PL", "DE")') == [["PL", "DE"]]
    assert values("[]") == [[]]


# ---------------------------------------------------------------- columns
def test_backquoted_column_names():
    table = pa.table({"Customer ID": [1, 2, 3], "end": [10, 20, 30], "a-b": ["x", "y", "z"]})
    assert members("`Customer ID` >= 2", table) == [False, True, True]
    assert members("`end` = 20", table) == [False, True, False]
    assert members('`a-b` = "z"', table) == [False, False, True]


def test_column_names_match_case_insensitively():
    table = pa.table({"Age": [20, 40]})
    assert members("age > 30", table) == [False, True]
    assert members("AGE > 30", table) == [False, True]


def test_exact_column_name_wins_over_case_insensitive_match():
    table = pa.table({"age": [20, 40], "AGE": [40, 20]})
    assert members("age > 30", table) == [False, True]
    assert members("AGE > 30", table) == [True, False]


def test_ambiguous_column_case_is_an_error():
    table = pa.table({"age": [20], "AGE": [40]})
    with pytest.raises(segql.SegqlNameError):
        members("Age > 30", table)


# ------------------------------------------------------------- parameters
def test_parameters():
    table = pa.table({"spend": [100.0, 500.0, 900.0]})
    assert members("spend > $min_spend", table, params={"min_spend": 400}) == [False, True, True]
    assert members("spend > $min_spend", table, params={"min_spend": 800.0}) == [False, False, True]


def test_parameter_value_is_never_pasted_into_source():
    table = pa.table({"name": ['x" or "1" = "1', "y"]})
    assert members("name = $n", table, params={"n": 'x" or "1" = "1'}) == [True, False]
    assert members("name = $n", table, params={"n": '" or true or "'}) == [False, False]


# ------------------------------------------------------------- comparison
@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", [False, True, False, False]),
        ("==", [False, True, False, False]),
        ("!=", [True, False, True, False]),
        ("<>", [True, False, True, False]),
        ("<", [True, False, False, False]),
        ("<=", [True, True, False, False]),
        (">", [False, False, True, False]),
        (">=", [False, True, True, False]),
    ],
)
def test_comparison_operators(op, expected):
    assert members(f"x {op} 2", pa.table({"x": [1, 2, 3, None]})) == expected
    assert members(f"s {op} 'b'", pa.table({"s": ["a", "b", "c", None]})) == expected
    dates = pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3), None], pa.date32())
    assert members(f"d {op} 2024-01-02", pa.table({"d": dates})) == expected


def test_comparison_between_columns():
    table = pa.table({"a": [1, 2, 3], "b": [2, 2, 2]})
    assert members("a < b", table) == [True, False, False]
    assert members("a = b", table) == [False, True, False]


# ------------------------------------------------------------------ range
def test_between_is_inclusive():
    table = pa.table({"x": [9, 10, 15, 20, 21, None]})
    assert members("x between 10 and 20", table) == [False, True, True, True, False, False]
    assert members("x not between 10 and 20", table) == [True, False, False, False, True, False]


def test_between_with_floats_and_strings():
    assert members("x between 0.5 and 1.5", pa.table({"x": [0.5, 1.5, 1.50001]})) == [True, True, False]
    assert members("s between 'b' and 'c'", pa.table({"s": ["a", "b", "bz", "c", "ca"]})) == [
        False,
        True,
        True,
        True,
        False,
    ]


# ------------------------------------------------------------- membership
def test_in_and_not_in():
    table = pa.table({"x": [1, 2, 3, None]})
    assert members("x in [1, 2]", table) == [True, True, False, False]
    assert members("x not in (1, 2)", table) == [False, False, True, False]
    assert members("x in (3)", table) == [False, False, True, False]


def test_in_list_of_floats_with_int_column():
    assert members("x in [1.0, 2.5]", pa.table({"x": [1, 2, 3]})) == [True, False, False]


# ------------------------------------------------------------- null tests
def test_null_tests_are_never_null():
    table = pa.table({"x": [1, None]})
    assert values("x is null", table) == [False, True]
    assert values("x is not null", table) == [True, False]
    assert values("x IS NOT NULL", table) == [True, False]


def test_null_test_on_expressions():
    table = pa.table({"a": [1, None, 3], "b": [None, 2, 3]})
    assert values("a + b is null", table) == [True, True, False]


# --------------------------------------------------------------- strings
STRINGS = pa.table(
    {
        "email": ["ann@gmail.com", "bob@GMAIL.COM", "cy@gmail.com.pl", None],
        "city": ["Warszawa", "warszawa", "Kraków", None],
        "name": ["Anna", "Jan", "ANNA", None],
    }
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('email ends with "@gmail.com"', [True, False, False, False]),
        ('email not ends with "@gmail.com"', [False, True, True, False]),
        ('city starts with "War"', [True, False, False, False]),
        ('city starts with ""', [True, True, True, False]),
        ('name contains "an"', [False, True, False, False]),
        ('name contains "nn"', [True, False, False, False]),
        # `matches` is RE2, matches anywhere, and is case-sensitive.
        ('email matches "gmail"', [True, False, True, False]),
        ('email matches "^[a-z]+@"', [True, True, True, False]),
        ('email matches "com$"', [True, False, False, False]),
        ('email matches "(?i)GMAIL\\\\.com$"', [True, True, False, False]),
        ('city matches "ó"', [False, False, True, False]),
        ('city matches "^W.*a$"', [True, False, False, False]),
    ],
)
def test_string_predicates(condition, expected):
    assert members(condition, STRINGS) == expected


def test_string_predicates_take_parameters():
    assert members("email ends with $domain", STRINGS, params={"domain": "@gmail.com"}) == [True, False, False, False]


def test_string_predicate_on_null_is_null():
    assert values('city starts with "War"', STRINGS) == [True, False, False, None]


def test_matches_backslash_classes():
    table = pa.table({"code": ["ab12", "abc", "12"]})
    assert members('code matches "\\d+"', table) == [True, False, True]
    assert members("code matches '^\\d+$'", table) == [False, False, True]


# ----------------------------------------------------------- list columns
TAGS = pa.table({"tags": pa.array([["vip", "a"], ["b"], [], None, ["a", "b", None]], pa.list_(pa.string()))})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('tags contains "vip"', [True, False, False, False, False]),
        ('tags contains "a"', [True, False, False, False, True]),
        ('tags contains any ["a", "b"]', [True, True, False, False, True]),
        ('tags contains any ("vip", "zzz")', [True, False, False, False, False]),
        ('tags contains all ["a", "b"]', [False, False, False, False, True]),
        ('tags contains all ["vip", "a"]', [True, False, False, False, False]),
    ],
)
def test_list_column_membership(condition, expected):
    assert members(condition, TAGS) == expected


def test_list_column_tests_on_null_list_are_null():
    assert values('tags contains "a"', TAGS)[3] is None
    assert values('tags contains any ["a"]', TAGS)[3] is None
    assert values('tags contains all ["a"]', TAGS)[3] is None


def test_list_column_of_ints():
    table = pa.table({"ids": pa.array([[1, 2], [3], None], pa.list_(pa.int64()))})
    assert members("ids contains 2", table) == [True, False, False]
    assert members("ids contains any [3, 4]", table) == [False, True, False]


# --------------------------------------------------------------- boolean
BOOLS = pa.table(
    {
        "a": [True, True, True, True, False, False, False, False],
        "b": [True, True, False, False, True, True, False, False],
        "c": [True, False, True, False, True, False, True, False],
    }
)


def test_and_or_not():
    assert members("a and b", BOOLS) == [True, True, False, False, False, False, False, False]
    assert members("a or b", BOOLS) == [True, True, True, True, True, True, False, False]
    assert members("not a", BOOLS) == [False, False, False, False, True, True, True, True]


def test_and_binds_tighter_than_or():
    # a or (b and c)
    expected = [True, True, True, True, True, False, False, False]
    assert members("a or b and c", BOOLS) == expected
    assert members("a or (b and c)", BOOLS) == expected
    assert members("(a or b) and c", BOOLS) == [True, False, True, False, True, False, False, False]
    # (a and b) or c
    assert members("a and b or c", BOOLS) == [True, True, True, False, True, False, True, False]


def test_not_binds_tighter_than_and():
    # (not a) and b
    assert members("not a and b", BOOLS) == [False, False, False, False, True, True, False, False]
    assert members("not (a and b)", BOOLS) == [False, False, True, True, True, True, True, True]
    # (not a) or b
    assert members("not a or b", BOOLS) == [True, True, False, False, True, True, True, True]
    assert members("not not a", BOOLS) == [True, True, True, True, False, False, False, False]


def test_comparisons_bind_tighter_than_not():
    table = pa.table({"x": [1, 2, 3]})
    assert members("not x = 2", table) == [True, False, True]
    assert members("not x > 1 and x < 3", table) == [True, False, False]
    assert members("not x between 2 and 3", table) == [True, False, False]
    assert members("not x in [1, 3]", table) == [False, True, False]
    assert members("x = 1 or x = 3 and x > 2", table) == [True, False, True]


def test_parentheses_group_boolean_expressions():
    table = pa.table({"x": [1, 2, 3, 4]})
    assert members("(x = 1 or x = 2) and not (x = 2)", table) == [True, False, False, False]


# ------------------------------------------------------------- arithmetic
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 * 3 % 4", 2),
        ("-2 * 3", -6),
        ("- (2 + 3)", -5),
        ("+5", 5),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("1 / 4 * 2", 0.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("-7 % -3", -1),
        ("7.5 % 2", 1.5),
        ("-7.5 % 2", -1.5),
        ("1.5 + 1", 2.5),
        ("a - -1", 4),
    ],
)
def test_arithmetic(expression, expected):
    out = values(expression, pa.table({"a": [3]}))
    assert out == [expected]
    assert type(out[0]) is type(expected)


def test_division_is_true_division_on_int_columns():
    table = pa.table({"a": [7, -7, 1, 6], "b": [2, 2, 3, 3]})
    assert values("a / b", table) == [3.5, -3.5, 1 / 3, 2.0]
    assert values("a % b", table) == [1, -1, 1, 0]


def test_division_of_large_integers_is_float_division():
    # 2**60 and 2**53 + 1 do not fit a float exactly; true division still gives the nearest float.
    table = pa.table({"a": [2**60, 2**53 + 1, -(2**63)], "b": [2, 1, -1]})
    assert values("a / b", table) == [2.0**59, 2.0**53, 2.0**63]
    assert values("a / 2", table) == [2.0**59, 2.0**52, -(2.0**62)]


def test_arithmetic_with_null_is_null():
    table = pa.table({"a": [1, None], "b": [None, 2.0]})
    assert values("a + 1", table) == [2, None]
    assert values("a * b", table) == [None, None]


def test_arithmetic_on_columns_in_conditions():
    table = pa.table({"price": [10.0, 20.0, 30.0], "qty": [3, 1, 2]})
    assert members("price * qty >= 50", table) == [False, False, True]


# ------------------------------------------------------------ conditional
def test_case_first_match_wins():
    table = pa.table({"x": [5, 15, 25, None]})
    source = 'case when x > 20 then "big" when x > 10 then "mid" when x > 0 then "small" else "none" end'
    assert values(source, table) == ["small", "mid", "big", "none"]
    overlapping = 'case when x > 0 then "first" when x > 10 then "second" end'
    assert values(overlapping, table) == ["first", "first", "first", None]


def test_case_without_else_gives_null():
    table = pa.table({"x": [1, 2]})
    assert values('case when x = 1 then "one" end', table) == ["one", None]
    assert values("case when x = 1 then 10 end", table) == [10, None]


def test_case_as_a_condition():
    table = pa.table({"x": [1, 2, 3]})
    assert members("case when x = 1 then true when x = 2 then false end", table) == [True, False, False]


def test_case_keywords_are_case_insensitive():
    table = pa.table({"x": [1, 2]})
    assert values("CASE WHEN x = 1 THEN 'a' ELSE 'b' END", table) == ["a", "b"]


# ---------------------------------------------------------------- functions
def test_functions_in_expressions():
    table = pa.table(
        {
            "email": ["Ann@Gmail.com", None],
            "age": [None, 30],
            "last_order_date": pa.array([dt.date(2024, 6, 5), dt.date(2024, 6, 15)], pa.date32()),
        }
    )
    assert values("lower(email)", table) == ["ann@gmail.com", None]
    assert values("coalesce(age, 0)", table) == [0, 30]
    # 2024-06-05 00:00 to 2024-06-15 12:30 is 10.5 days; floored.
    assert values("days_since(last_order_date)", table) == [10, 0]
    assert members('lower(email) ends with "@gmail.com" and coalesce(age, 0) < 18', table) == [True, False]


def test_function_names_are_case_insensitive():
    assert values("LOWER('AbC')") == ["abc"]


# ------------------------------------------------------- segment references
def test_segment_reference_as_boolean():
    source = """
    segment high_value = spend > 100
    segment lapsed = last_seen < -90d
    segment keep = high_value and not lapsed
    """
    table = pa.table(
        {
            "spend": [200.0, 200.0, 50.0, None],
            "last_seen": pa.array([ts(2024, 6, 1), ts(2024, 1, 1), ts(2024, 6, 1), ts(2024, 6, 1)], pa.timestamp("us")),
        }
    )
    out = segql.compile(source).evaluate(table, as_of=AS_OF)
    assert out.column("high_value").to_pylist() == [True, True, False, False]
    assert out.column("lapsed").to_pylist() == [False, True, False, False]
    assert out.column("keep").to_pylist() == [True, False, False, False]


# ------------------------------------------------------------------ comments
@pytest.mark.parametrize(
    "source",
    [
        "x > 1 # a comment",
        "x > 1 -- a comment",
        "# leading comment\nx > 1",
        "-- leading comment\nx > 1\n-- trailing",
        "x > 1 -- and x < 0",
        "x > 1 # or true",
        "x >\n  -- the threshold:\n  1",
    ],
)
def test_comments(source):
    assert members(source, pa.table({"x": [1, 2]})) == [False, True]


def test_comment_markers_inside_strings_are_text():
    table = pa.table({"s": ["a # b", "c -- d", "e"]})
    assert members('s contains "#"', table) == [True, False, False]
    assert members("s contains '--'", table) == [False, True, False]


# ------------------------------------------------- case-insensitive keywords
def test_keywords_are_case_insensitive():
    table = pa.table(
        {
            "x": [1, 5, None],
            "s": ["War", "Kra", None],
            "tags": pa.array([["a"], ["b"], None], pa.list_(pa.string())),
        }
    )
    assert members("x BETWEEN 0 AND 2 Or x Is NuLl", table) == [True, False, True]
    assert members("NOT x IN [1] AND x IS NOT NULL", table) == [False, True, False]
    assert members("s STARTS WITH 'W' OR s ENDS with 'a'", table) == [True, True, False]
    assert members("s Matches '^K' or s CONTAINS 'ar'", table) == [True, True, False]
    assert members("tags CONTAINS ANY ['a'] or tags contains ALL ['b']", table) == [True, True, False]
    assert members("x NOT BETWEEN 2 AND 9", table) == [True, False, False]
    assert members("x NOT IN (5)", table) == [True, False, False]


def test_relative_time_keywords_are_case_insensitive():
    table = ts_table(ts(2024, 6, 15), ts(2024, 6, 15, 12, 30))
    assert members("t = TODAY", table) == [True, False]
    assert members("t = NOW", table) == [False, True]


# ------------------------------------------------ date vs timestamp: whole days
DEC = ts_table(
    ts(2024, 11, 30, 23, 59, 59),
    ts(2024, 12, 1, 0, 0),
    ts(2024, 12, 31, 0, 0),
    dt.datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ts(2025, 1, 1, 0, 0),
    None,
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("t between 2024-12-01 and 2024-12-31", [False, True, True, True, False, False]),
        ("t > 2024-12-31", [False, False, False, False, True, False]),
        ("t >= 2024-12-31", [False, False, True, True, True, False]),
        ("t = 2024-12-31", [False, False, True, True, False, False]),
        ("t <= 2024-11-30", [True, False, False, False, False, False]),
        ("t < 2024-12-01", [True, False, False, False, False, False]),
        ("t in [2024-12-31]", [False, False, True, True, False, False]),
    ],
)
def test_date_literal_compared_with_timestamp_compares_whole_days(condition, expected):
    assert members(condition, DEC) == expected


def test_whole_day_rule_uses_the_utc_date_of_zoned_timestamps():
    # 2025-01-01 00:30 in Warsaw (UTC+1) is 2024-12-31 23:30 UTC.
    warsaw = dt.timezone(dt.timedelta(hours=1))
    table = pa.table(
        {"t": pa.array([dt.datetime(2025, 1, 1, 0, 30, tzinfo=warsaw)], pa.timestamp("us", tz="Europe/Warsaw"))}
    )
    assert members("t > 2024-12-31", table) == [False]
    assert members("t = 2024-12-31", table) == [True]


def test_date_column_compared_with_relative_time_compares_days():
    # -30d is 2024-05-16 12:30 UTC; a date column compares with its UTC day, 2024-05-16.
    dates = pa.array([dt.date(2024, 5, 15), dt.date(2024, 5, 16), dt.date(2024, 5, 17)], pa.date32())
    assert members("d >= -30d", pa.table({"d": dates})) == [False, True, True]
    assert members("d = today", pa.table({"d": pa.array([dt.date(2024, 6, 15)], pa.date32())})) == [True]
    assert members("d = now", pa.table({"d": pa.array([dt.date(2024, 6, 15)], pa.date32())})) == [True]


def test_date_column_compared_with_timestamp_literal_compares_days():
    dates = pa.array([dt.date(2024, 12, 30), dt.date(2024, 12, 31), dt.date(2025, 1, 1)], pa.date32())
    assert members("d = 2024-12-31T15:00:00Z", pa.table({"d": dates})) == [False, True, False]


def test_list_mixing_a_date_and_a_relative_time():
    # t in [a, b] means t = a or t = b: the date compares whole days, -1d is an exact instant.
    table = ts_table(ts(2024, 12, 31, 8), ts(2024, 6, 14, 12, 30), ts(2024, 6, 14, 12, 31))
    assert members("t in [2024-12-31, -1d]", table) == [True, True, False]
    assert members("t = 2024-12-31 or t = -1d", table) == [True, True, False]


def test_timestamp_literal_compared_with_timestamp_is_exact():
    assert members("t > 2024-12-31T00:00:00Z", DEC) == [False, False, False, True, True, False]
