"""Edge cases of aggregates over related tables (LANGUAGE.md §3, docs/decisions.md,
segql.engines.arrow.aggregate): empty groups, keys, errors (type and message),
time zones, dictionary strings, the first/last tie rule, empty tables."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

import segql

AS_OF = dt.datetime(2024, 3, 31, tzinfo=dt.UTC)
DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)

EVERY_FORM = """
feature n = count(orders)
feature n_where = count(orders where amount > 0)
feature n_amounts = count(orders.amount)
feature total = sum(orders.amount)
feature units = sum(orders.qty)
feature mean = avg(orders.amount)
feature low = min(orders.amount)
feature high = max(orders.ts)
feature kinds = count_distinct(orders.category)
feature first_cat = first(orders.category by ts)
feature last_amount = last(orders.amount by ts)
feature any_big = exists(orders where amount > 0)
"""
EMPTY = {
    "n": 0,
    "n_where": 0,
    "n_amounts": 0,
    "total": 0.0,
    "units": 0,
    "mean": None,
    "low": None,
    "high": None,
    "kinds": 0,
    "first_cat": None,
    "last_amount": None,
    "any_big": False,
}
EMPTY_TYPES = {
    "n": pa.int64(),
    "n_where": pa.int64(),
    "n_amounts": pa.int64(),
    "total": pa.float64(),
    "units": pa.int64(),
    "mean": pa.float64(),
    "low": pa.float64(),
    "kinds": pa.int64(),
    "first_cat": pa.string(),
    "last_amount": pa.float64(),
    "any_big": pa.bool_(),
}


INT64 = pa.int64()


def orders_table(rows: list[tuple], *, key_type: pa.DataType = INT64) -> pa.Table:
    """Orders from (customer_id, amount, qty, category, ts) tuples."""
    columns = list(zip(*rows)) if rows else [[]] * 5
    return pa.table(
        {
            "customer_id": pa.array(columns[0], key_type),
            "amount": pa.array(columns[1], pa.float64()),
            "qty": pa.array(columns[2], pa.int64()),
            "category": pa.array(columns[3], pa.string()),
            "ts": pa.array(columns[4], pa.timestamp("us", tz="UTC")),
        }
    )


def run(source: str, profile: pa.Table, orders, *, key: str | None = "customer_id", **kwargs) -> pa.Table:
    related = {"orders": orders} if orders is not None else None
    return segql.compile(source).evaluate(profile, key=key, related=related, as_of=AS_OF, **kwargs)


def column(out: pa.Table, name: str) -> list:
    return out.column(name).to_pylist()


def assert_exact(row: dict, expected: dict) -> None:
    """Equal values and equal Python types (0 is not 0.0, False is not 0)."""
    for name, value in expected.items():
        assert row[name] == value and type(row[name]) is type(value), f"{name}: {row[name]!r}, expected {value!r}"


PROFILE = pa.table({"customer_id": [1, 2, 3], "region": ["north", "south", "north"]})
ORDERS = orders_table(
    [
        (1, 10.0, 1, "books", DAY),
        (1, None, 2, "music", DAY + dt.timedelta(days=1)),
        (2, 5.0, 3, None, DAY),
    ]
)


# ------------------------------------------------------------- empty groups
def test_profiles_without_events_get_the_empty_group_values():
    out = run(EVERY_FORM, PROFILE, ORDERS)
    assert column(out, "customer_id") == [1, 2, 3]
    assert_exact(out.to_pylist()[2], EMPTY)
    assert_exact(out.to_pylist()[0], {"n": 2, "n_amounts": 1, "total": 10.0, "units": 3, "kinds": 2})


def test_empty_group_types_do_not_depend_on_the_data():
    """A float ``sum`` over no rows is 0.0 in a float64 column, like the same
    feature over rows (the checker types it float)."""
    with_rows = run(EVERY_FORM, PROFILE, ORDERS).schema
    without_rows = run(EVERY_FORM, PROFILE, ORDERS.slice(0, 0)).schema
    for name, arrow_type in EMPTY_TYPES.items():
        assert with_rows.field(name).type == arrow_type, name
        assert without_rows.field(name).type == arrow_type, name


def test_sum_over_a_where_that_keeps_nothing_is_a_float_zero():
    out = run("feature big = sum(orders.amount where amount > 1000)", PROFILE, ORDERS)
    assert out.schema.field("big").type == pa.float64()
    assert column(out, "big") == [0.0, 0.0, 0.0]


def test_sum_of_only_nulls_is_zero_and_count_of_a_column_skips_nulls():
    orders = orders_table([(1, None, None, None, DAY), (1, None, None, None, None), (2, 1.5, 2, "a", DAY)])
    out = run(EVERY_FORM, PROFILE, orders)
    assert_exact(
        out.to_pylist()[0],
        {"n": 2, "n_amounts": 0, "total": 0.0, "units": 0, "mean": None, "low": None, "kinds": 0, "any_big": False},
    )
    # first/last … by ts: the row with a null ts is ignored; the other row's null value is returned as null.
    assert out.to_pylist()[0]["first_cat"] is None
    assert out.to_pylist()[0]["last_amount"] is None
    assert out.to_pylist()[0]["high"] == DAY  # timestamps come back as UTC instants


def test_avg_of_decimals_is_their_exact_sum_over_the_count():
    """As DuckDB's AVG(DECIMAL): the exact sum as the nearest double, divided once
    (summing the values as doubles gave 0.15000000000000002 for 0.10 and 0.20)."""
    from decimal import Decimal

    cents = pa.array([Decimal("0.10"), Decimal("0.20"), None, Decimal("0.1"), Decimal("0.2"), Decimal("0.3")])
    orders = pa.table({"customer_id": [1, 1, 1, 2, 2, 2], "a": cents.cast(pa.decimal128(10, 2))})
    source = "feature mean = avg(orders.a)\nsegment at_least = avg(orders.a) >= 0.15"
    out = segql.compile(source).evaluate(PROFILE, key="customer_id", related={"orders": orders})
    assert out["mean"].to_pylist() == [0.15, 0.6 / 3, None]
    assert out["at_least"].to_pylist() == [True, True, False]


def test_count_distinct_ignores_nulls():
    orders = orders_table(
        [(1, 1.0, 1, "a", DAY), (1, 1.0, 1, None, DAY), (1, 2.0, 1, "a", DAY), (1, None, 1, "b", DAY)]
    )
    out = run(
        "feature c = count_distinct(orders.category)\nfeature a = count_distinct(orders.amount)\n"
        "feature w = count_distinct(orders.category where amount >= 1)",
        PROFILE,
        orders,
    )
    assert out.to_pylist()[0] == {"customer_id": 1, "c": 2, "a": 2, "w": 1}
    assert column(out, "c")[1:] == [0, 0]


def test_empty_related_table():
    out = run(EVERY_FORM, PROFILE, ORDERS.slice(0, 0))
    for row in out.to_pylist():
        assert_exact(row, EMPTY)


def test_profile_table_with_zero_rows():
    out = run(EVERY_FORM + "segment buyers = count(orders) > 0", PROFILE.slice(0, 0), ORDERS)
    assert out.num_rows == 0
    assert out.column_names == ["customer_id", "buyers", *EMPTY]
    assert out.schema.field("buyers").type == pa.bool_()
    for name, arrow_type in EMPTY_TYPES.items():
        assert out.schema.field(name).type == arrow_type, name


def test_arithmetic_on_empty_groups_is_null():
    """An empty group's null stays null through arithmetic (no error from
    whatever the null slots hold)."""
    orders = orders_table([(1, 10.0, 3, "a", DAY), (1, 20.0, 5, "b", DAY + dt.timedelta(days=29))])
    out = run(
        """
        feature tenure = max(orders.ts) - min(orders.ts)
        feature since_last = now - max(orders.ts)
        feature until_now = max(orders.ts) - now
        feature month_before = max(orders.ts) - 30d
        feature qty_range = max(orders.qty) - min(orders.qty)
        feature amount_range = max(orders.amount) - min(orders.amount)
        segment lapsed = max(orders.ts) - 30d < -1y
        """,
        PROFILE,
        orders,
    )
    rows = out.to_pylist()
    assert rows[0]["tenure"] == dt.timedelta(days=29)
    assert rows[0]["qty_range"] == 2 and rows[0]["amount_range"] == 10.0
    for row in rows[1:]:
        assert row["lapsed"] is False
        for name in ("tenure", "since_last", "until_now", "month_before", "qty_range", "amount_range"):
            assert row[name] is None, name


# --------------------------------------------------------------------- keys
def test_related_rows_with_unknown_or_null_keys_are_ignored():
    orders = orders_table(
        [
            (1, 10.0, 1, "a", DAY),
            (99, 1000.0, 1, "a", DAY),  # no such customer
            (None, 1000.0, 1, "a", DAY),  # no customer at all
            (-5, 1000.0, 1, "a", DAY),
        ]
    )
    out = run("feature total = sum(orders.amount)\nfeature n = count(orders)", PROFILE, orders)
    assert column(out, "total") == [10.0, 0.0, 0.0]
    assert column(out, "n") == [1, 0, 0]


@pytest.mark.parametrize("kind", ["dense int", "sparse int", "string"])
def test_a_null_profile_key_matches_nothing(kind):
    """Not even related rows with a null key (SQL: null = null is not true)."""
    make = {"dense int": lambda k: k, "sparse int": lambda k: k * 10**15, "string": str}[kind]
    key_type = pa.string() if kind == "string" else pa.int64()
    profile = pa.table({"customer_id": pa.array([make(1), None, make(2)], key_type)})
    orders = orders_table(
        [(make(1), 1.0, 1, "a", DAY), (None, 2.0, 1, "a", DAY), (None, 3.0, 1, "a", DAY)], key_type=key_type
    )
    out = run("feature n = count(orders)\nfeature total = sum(orders.amount)", profile, orders)
    assert column(out, "n") == [1, 0, 0]
    assert column(out, "total") == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "keys, shown",
    [
        (pa.array([1, 2, 3, 2, 4], pa.int64()), "2"),  # a dense range: the direct-address key index
        (pa.array([10**15, 7, 10**15, 3], pa.int64()), str(10**15)),  # sparse: the hashed key index
        (pa.array(["ann", "bob", "ann"]), "'ann'"),
        (pa.array(["ann", "bob", "ann"]).dictionary_encode(), "'ann'"),
    ],
    ids=["dense int", "sparse int", "string", "dictionary string"],
)
def test_duplicate_profile_keys_are_a_data_error(keys, shown):
    profile = pa.table({"customer_id": keys})
    orders = orders_table([], key_type=keys.type.value_type if pa.types.is_dictionary(keys.type) else keys.type)
    with pytest.raises(segql.DataError) as err:
        run("feature n = count(orders)", profile, orders)
    message = str(err.value)
    assert "repeats" in message
    assert "key column 'customer_id'" in message
    assert shown in message


def test_int_and_string_keys_do_not_join():
    profile = pa.table({"customer_id": ["1", "2"]})
    with pytest.raises(segql.DataError) as err:
        run("feature n = count(orders)", profile, ORDERS)
    message = str(err.value)
    assert "key type mismatch" in message
    assert "'customer_id'" in message and "string" in message and "int64" in message and "orders" in message


def test_related_tables_need_a_key():
    with pytest.raises(segql.DataError) as err:
        run("feature n = count(orders)", PROFILE, ORDERS, key=None)
    assert "key= is needed when related tables are given" in str(err.value)


def test_a_related_table_without_the_key_column_is_a_data_error_with_a_suggestion():
    orders = ORDERS.rename_columns(["cust_id", *ORDERS.column_names[1:]])
    with pytest.raises(segql.DataError) as err:
        run("feature n = count(orders)", PROFILE, orders)
    message = str(err.value)
    assert "related table orders has no key column 'customer_id'" in message
    assert "did you mean 'cust_id'" in message


@pytest.mark.parametrize("keys", [[-(2**63), -(2**63) + 1], [2**63 - 1, 2**63 - 2]], ids=["int64 min", "int64 max"])
def test_extreme_int64_keys(keys):
    """Keys at the ends of int64 are ordinary keys, also next to null related keys."""
    profile = pa.table({"customer_id": pa.array(keys, pa.int64())})
    orders = orders_table(
        [(keys[0], 1.0, 1, "a", DAY), (keys[1], 2.0, 1, "a", DAY), (5, 4.0, 1, "a", DAY), (None, 8.0, 1, "a", DAY)]
    )
    out = run("feature total = sum(orders.amount)", profile, orders)
    assert column(out, "total") == [1.0, 2.0]


# ------------------------------------------------------ errors in the source
def raises_for(error: type[segql.SegqlError], source: str, orders: pa.Table = ORDERS) -> segql.SegqlError:
    with pytest.raises(error) as err:
        run(source, PROFILE, orders)
    assert isinstance(err.value, segql.SegqlError)
    assert err.value.line is not None and err.value.column is not None
    assert "^" in str(err.value)  # the source line with a caret
    return err.value


def test_unknown_related_table_suggests_the_nearest():
    err = raises_for(segql.SegqlNameError, "segment s = count(ordrs) > 1")
    assert "unknown related table 'ordrs'" in str(err)
    assert "did you mean 'orders'" in str(err)
    assert (err.line, err.column) == (1, 19)


def test_unknown_column_of_a_related_table_suggests_the_nearest():
    err = raises_for(segql.SegqlNameError, "segment s = sum(orders.amont) > 1")
    assert "orders has no column 'amont'" in str(err) and "did you mean 'amount'" in str(err)


def test_profile_column_inside_an_aggregate_is_a_name_error():
    err = raises_for(segql.SegqlNameError, 'segment s = count(orders where region = "north") > 0')
    assert "orders has no column 'region'" in str(err)
    assert "names refer to columns of its related table" in str(err)
    assert (err.line, err.column) == (1, 32)


def test_related_column_outside_an_aggregate_is_an_error():
    err = raises_for(segql.SegqlNameError, "segment s = orders.amount > 3")
    assert "orders.amount is a column of the related table orders" in str(err)
    assert "only be used inside an aggregate" in str(err)
    err = raises_for(segql.SegqlNameError, "segment s = orders > 3")
    assert "'orders' is a related table, not a column" in str(err)


def test_nested_aggregates_are_an_error():
    err = raises_for(segql.SegqlTypeError, "segment s = sum(orders.amount where count(orders) > 1) > 0")
    assert "aggregates cannot be nested" in str(err)


def test_sum_of_strings_is_a_type_error():
    err = raises_for(segql.SegqlTypeError, "segment s = sum(orders.category) > 0")
    assert "sum needs numbers" in str(err) and "string" in str(err)
    assert (err.line, err.column) == (1, 17)
    err = raises_for(segql.SegqlTypeError, "segment s = avg(orders.category) > 0")
    assert "avg needs numbers" in str(err)


def test_first_and_last_need_by():
    for func in ("first", "last"):
        err = raises_for(segql.SegqlTypeError, f"segment s = {func}(orders.amount) > 0")
        assert f"{func} needs an order" in str(err) and "by" in str(err)


@pytest.mark.parametrize(
    "source, words",
    [
        ("segment s = sum(orders.amount by ts) > 0", "only first and last take 'by'"),
        ("segment s = exists(orders.amount)", "exists takes a table"),
        ("segment s = min(orders) > 0", "must read a related table"),
        ("segment s = count_distinct(orders) > 0", "must read a related table"),
        ("segment s = count(orders where amount) > 0", "'where'"),
    ],
)
def test_other_misshapen_aggregates_are_type_errors(source, words):
    err = raises_for(segql.SegqlTypeError, source)
    assert words in str(err)


def test_integer_sum_overflow_is_an_evaluation_error():
    orders = pa.table({"customer_id": [1, 1, 1, 2], "v": [2**62, 2**62, 2**62, 1]})
    with pytest.raises(segql.EvaluationError) as err:
        run("feature total = sum(orders.v)", PROFILE, orders)
    assert "integer overflow" in str(err.value)
    assert "sum" in str(err.value)
    assert (err.value.line, err.value.column) == (1, 17)


def test_integer_sums_near_the_limit_are_exact():
    big = 2**62
    orders = pa.table({"customer_id": [1, 1, 2, 2, 2], "v": [big, big - 1, big, big, -big]})
    out = run("feature total = sum(orders.v)", PROFILE, orders)
    # 2**63 - 1 fits exactly; customer 2 passes 2**63 on the way but ends at 2**62.
    assert column(out, "total") == [2**63 - 1, 2**62, 0]


# ------------------------------------------------------- types of the data
def test_naive_timestamps_are_utc_like_aware_ones():
    instants = [
        dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 23, 30, tzinfo=dt.UTC),  # 1 March in UTC, 2 March in Warsaw
        dt.datetime(2024, 3, 28, 12, 0, tzinfo=dt.UTC),
        dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.UTC),
    ]
    keys = [1, 1, 2, 2]
    source = """
        feature recent = count(orders where ts >= -7d)
        feature march_1 = count(orders where ts between 2024-03-01 and 2024-03-01)
        feature in_2024 = count(orders where ts >= 2024-01-01)
        feature latest = max(orders.ts)
        feature first_day = first(orders.ts by ts)
        feature days = count_distinct(orders.ts)
    """
    variants = {
        "aware us": pa.array(instants, pa.timestamp("us", tz="UTC")),
        "naive us": pa.array([t.replace(tzinfo=None) for t in instants], pa.timestamp("us")),
        "aware ms, Warsaw": pa.array(instants, pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("ms", "Europe/Warsaw")),
        "naive ns": pa.array([t.replace(tzinfo=None) for t in instants], pa.timestamp("ns")),
    }
    results = {
        name: run(source, PROFILE, pa.table({"customer_id": keys, "ts": ts})).to_pylist()
        for name, ts in variants.items()
    }
    reference = results["aware us"]
    assert [r["recent"] for r in reference] == [0, 1, 0]
    assert [r["march_1"] for r in reference] == [2, 0, 0]
    assert [r["in_2024"] for r in reference] == [2, 1, 0]
    for name, rows in results.items():
        for row, ref in zip(rows, reference):
            for field in ("recent", "march_1", "in_2024", "days"):
                assert row[field] == ref[field], (name, field)
            for field in ("latest", "first_day"):
                got, want = row[field], ref[field]
                assert (got is None) == (want is None), (name, field)
                if got is not None:
                    assert got.replace(tzinfo=got.tzinfo or dt.UTC) == want.replace(tzinfo=want.tzinfo or dt.UTC)


def test_dictionary_encoded_strings_behave_like_strings():
    rows = [(1, 1.0, 1, "books", DAY), (1, 2.0, 1, "music", DAY), (1, 3.0, 1, None, DAY), (2, 4.0, 1, "art", DAY)]
    plain = orders_table(rows)
    encoded = plain.set_column(3, "category", plain.column("category").dictionary_encode())
    assert pa.types.is_dictionary(encoded.schema.field("category").type)
    source = """
        feature kinds = count_distinct(orders.category)
        feature lowest = min(orders.category)
        feature highest = max(orders.category)
        feature first_cat = first(orders.category by amount)
        feature last_cat = last(orders.category by amount)
        feature n_named = count(orders.category)
        feature books = count(orders where category = "books")
        feature not_books = count(orders where category != "books")
        feature listed = sum(orders.amount where category in ["music", "art"])
        feature prefixed = count(orders where category starts with "mu")
        segment music_fans = exists(orders where category = "music")
    """
    expected = run(source, PROFILE, plain)
    got = run(source, PROFILE, encoded)
    assert got.equals(expected)
    assert expected.to_pylist()[0] == {
        "customer_id": 1,
        "music_fans": True,
        "kinds": 2,
        "lowest": "books",
        "highest": "music",
        "first_cat": "books",
        "last_cat": None,  # the row with the largest amount has no category
        "n_named": 2,
        "books": 1,
        "not_books": 1,
        "listed": 2.0,
        "prefixed": 1,
    }
    lowest_type = got.schema.field("lowest").type
    assert pa.types.is_string(lowest_type) or pa.types.is_large_string(lowest_type)


def test_first_last_ties_go_to_the_smallest_and_the_largest_value():
    """Ties on `by` are decided by the value (LANGUAGE.md §3): first takes the
    smallest, last the largest, a null value counting above every value."""
    later = DAY + dt.timedelta(days=3)
    orders = orders_table(
        [
            (1, 1.0, 10, "a", DAY),
            (2, 100.0, 20, "x", None),  # a null by: never chosen
            (1, 2.0, 11, "b", later),
            (1, 3.0, 12, "c", DAY),  # ties with row 0 for first: 1.0 < 3.0
            (1, 4.0, 13, None, later),  # ties with row 2 for last: 4.0 > 2.0; its null category is above "b"
            (2, 5.0, 21, "y", DAY),
            (3, 6.0, 31, "z", None),  # customer 3: only a null by
        ]
    )
    out = run(
        """
        feature first_amount = first(orders.amount by ts)
        feature last_amount = last(orders.amount by ts)
        feature last_cat = last(orders.category by ts)
        feature first_cat_of_late = first(orders.category by ts where ts > 2024-03-01)
        feature first_by_qty = first(orders.category by qty)
        feature last_by_qty = last(orders.qty by qty)
        """,
        PROFILE,
        orders,
    )
    assert out.to_pylist() == [
        {
            "customer_id": 1,
            "first_amount": 1.0,  # rows 0 and 3 tie: the smaller amount
            "last_amount": 4.0,  # rows 2 and 4 tie: the larger amount
            "last_cat": None,  # rows 2 and 4 tie: a null value is above every value
            "first_cat_of_late": "b",  # rows 2 and 4 tie: "b" is below null
            "first_by_qty": "a",
            "last_by_qty": 13,
        },
        {
            "customer_id": 2,
            "first_amount": 5.0,
            "last_amount": 5.0,
            "last_cat": "y",
            "first_cat_of_late": None,
            "first_by_qty": "x",  # qty orders it, the null ts does not matter here
            "last_by_qty": 21,
        },
        {
            "customer_id": 3,
            "first_amount": None,
            "last_amount": None,
            "last_cat": None,
            "first_cat_of_late": None,
            "first_by_qty": "z",
            "last_by_qty": 31,
        },
    ]


def test_first_last_ties_by_string_do_not_depend_on_row_order_or_chunks():
    """Rows tied on `by` are decided by the value, whatever the row order and
    the chunks (the tie rule once counted rows of the whole table)."""
    first_half = orders_table([(1, 1.0, 1, "b", DAY), (1, 2.0, 1, "a", DAY)])
    second_half = orders_table([(1, 3.0, 1, "a", DAY), (1, 4.0, 1, "b", DAY)])
    orders = pa.concat_tables([first_half, second_half])
    assert orders.column("amount").num_chunks == 2
    source = "feature f = first(orders.amount by category)\nfeature l = last(orders.amount by category)"
    out = run(source, PROFILE, orders)
    assert out.to_pylist()[0] == {"customer_id": 1, "f": 2.0, "l": 4.0}
    backwards = pa.concat_tables([second_half.take([1, 0]), first_half.take([1, 0])])
    assert run(source, PROFILE, backwards).to_pylist()[0] == {"customer_id": 1, "f": 2.0, "l": 4.0}
