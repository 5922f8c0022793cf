"""Segment files (LANGUAGE.md §6): params, features, segments, names, order and cycles."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pytest

import segql

UTC = dt.UTC
AS_OF = dt.datetime(2026, 11, 1, tzinfo=UTC)
# The language reference this repository ships (tests never read outside the checkout).
LANGUAGE_MD = Path(__file__).resolve().parents[1] / "docs" / "language.md"


def section_6_example() -> str:
    """The complete segment file of docs/language.md (the contract's §6 example, verbatim)."""
    text = LANGUAGE_MD.read_text(encoding="utf-8")
    examples = [m.group(1) for m in re.finditer(r"```segql\n(.*?)```", text, re.S) if "frequency_tier" in m.group(1)]
    assert len(examples) == 1, "docs/language.md must hold the complete segment file example once"
    return examples[0]


def columns(out: pa.Table) -> dict[str, list]:
    return {name: out.column(name).to_pylist() for name in out.column_names}


# ---------------------------------------------------------- the §6 example
def test_section_6_example_compiles_with_names_in_file_order():
    program = segql.compile(section_6_example())
    assert program.segments == ["big_spenders", "lapsed"]
    assert program.features == ["orders_90d", "frequency_tier"]


def test_section_6_example_evaluates():
    program = segql.compile(section_6_example())
    customers = pa.table(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "amount_spent": [900.0, 100.0, 600.0, 1000.0, 700.0, None],
        }
    )
    order_days = {
        1: [10, 20, 40],  # 3 in 90d, 2 in 30d, 3 in 60d -> medium
        2: [200, 300],  # last order 200 days ago -> lost
        3: [1, 2, 3, 4, 5],  # 5 in 30d -> high
        4: [],  # no orders -> low (last() of nothing is null)
        5: [100, 190],  # last 100 days ago, none in 60d -> low
        6: [5, 6],  # 2 in 60d -> medium
    }
    rows = [(cid, AS_OF - dt.timedelta(days=d)) for cid, days in order_days.items() for d in days]
    orders = pa.table(
        {
            "customer_id": [cid for cid, _ in rows],
            "ts": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
        }
    )
    out = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=AS_OF)
    assert out.column_names == ["customer_id", "big_spenders", "lapsed", "orders_90d", "frequency_tier"]
    assert columns(out) == {
        "customer_id": [1, 2, 3, 4, 5, 6],
        "big_spenders": [True, False, True, False, False, False],
        "lapsed": [False, True, False, False, False, False],
        "orders_90d": [3, 0, 5, 0, 0, 2],
        "frequency_tier": ["medium", "lost", "high", "low", "low", "medium"],
    }
    raised = program.evaluate(
        customers, key="customer_id", related={"orders": orders}, as_of=AS_OF, params={"min_spend": 800.0}
    )
    assert raised.column("big_spenders").to_pylist() == [True, False, False, False, False, False]


# ------------------------------------------------------------- a profile file
PROFILE_FILE = """
# params: typed, with optional defaults
param min_spend: float = 500
param home: string = "PL"
param tiers: list<string> = ["gold", "silver"]

feature spend_band "Spend rounded to hundreds" = round(amount_spent, -2)
feature tier_label = case when tier in $tiers then upper(tier) end

segment big_spenders "Spent above the threshold" =
    amount_spent > $min_spend
segment local = country = $home   -- a description is optional
segment loyal_locals = local and big_spenders and tier_label is not null
"""
PROFILES = pa.table(
    {
        "id": [10, 11, 12, 13],
        "amount_spent": [520.0, 480.0, None, 1260.0],
        "country": ["PL", "PL", "DE", "PL"],
        "tier": ["gold", None, "gold", "bronze"],
    }
)


def test_params_defaults_features_and_segments():
    out = segql.compile(PROFILE_FILE).evaluate(PROFILES, key="id", as_of=AS_OF)
    assert out.column_names == ["id", "big_spenders", "local", "loyal_locals", "spend_band", "tier_label"]
    assert columns(out) == {
        "id": [10, 11, 12, 13],
        "big_spenders": [True, False, False, True],
        "local": [True, True, False, True],
        "loyal_locals": [True, False, False, False],
        "spend_band": [500.0, 500.0, None, 1300.0],
        "tier_label": ["GOLD", None, "GOLD", None],
    }


def test_params_are_overridden_at_evaluation():
    program = segql.compile(PROFILE_FILE)
    out = program.evaluate(PROFILES, as_of=AS_OF, params={"min_spend": 400, "home": "DE", "tiers": ["bronze"]})
    assert columns(out) == {
        "big_spenders": [True, True, False, True],
        "local": [False, False, True, False],
        "loyal_locals": [False, False, False, False],
        "spend_band": [500.0, 500.0, None, 1300.0],
        "tier_label": [None, None, None, "BRONZE"],
    }
    # Overrides do not stick to the program.
    again = program.evaluate(PROFILES, as_of=AS_OF)
    assert again.column("big_spenders").to_pylist() == [True, False, False, True]


TYPED_PARAMS = """
param window: duration = 30d
param since: date = 2024-01-01
param at: timestamp = 2024-01-01T10:00:00Z
param ids: list<int> = [1, 2]
param on: bool = true
segment s = x in $ids and $on and t >= $since and t >= $at - $window and now - t < $window
"""


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [True, True, False]),
        ({"window": "60d", "ids": [2, 3]}, [False, True, True]),
        ({"window": dt.timedelta(days=3)}, [False, False, False]),
        ({"since": dt.date(2024, 1, 2)}, [True, False, False]),
        ({"on": False}, [False, False, False]),
        ({"at": dt.datetime(2024, 2, 3, 10, tzinfo=UTC)}, [True, False, False]),
    ],
)
def test_typed_params_with_defaults_and_overrides(params, expected):
    table = pa.table(
        {
            "x": [1, 2, 3],
            "t": pa.array(
                [dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 20)], pa.timestamp("us")
            ),
        }
    )
    out = segql.compile(TYPED_PARAMS).evaluate(table, as_of=dt.datetime(2024, 1, 25, tzinfo=UTC), params=params)
    assert out.column("s").to_pylist() == expected


def test_features_keep_nulls_and_segments_do_not():
    out = segql.compile(PROFILE_FILE).evaluate(PROFILES, as_of=AS_OF)
    assert out.column("spend_band").null_count == 1
    assert out.column("tier_label").null_count == 2
    for name in ("big_spenders", "local", "loyal_locals"):
        assert out.column(name).null_count == 0
        assert out.schema.field(name).type == pa.bool_()


def test_descriptions():
    program = segql.compile(PROFILE_FILE)
    assert program.descriptions == {
        "spend_band": "Spend rounded to hundreds",
        "tier_label": None,
        "big_spenders": "Spent above the threshold",
        "local": None,
        "loyal_locals": None,
    }


def test_description_strings_take_either_quote_style():
    program = segql.compile("segment a 'it''s a' = x > 1\nsegment b \"say \\\"b\\\"\" = x > 2")
    assert program.descriptions == {"a": "it's a", "b": 'say "b"'}


def test_declarations_may_end_with_semicolons():
    program = segql.compile("segment a = x > 1; segment b = x > 2;")
    assert program.segments == ["a", "b"]


def test_names_in_file_order():
    program = segql.compile(
        """
        segment zeta = x > 1
        feature beta = x * 2
        segment alpha = zeta or beta > 10
        param p: int = 1
        feature aardvark = x + $p
        """
    )
    assert program.segments == ["zeta", "alpha"]
    assert program.features == ["beta", "aardvark"]
    out = program.evaluate(pa.table({"x": [1, 6]}), as_of=AS_OF)
    assert out.column_names == ["zeta", "alpha", "beta", "aardvark"]


# ------------------------------------------------------ declaration order
FORWARD = """
segment vip_and_recent = vip and recent
segment vip = score_band = "high"
feature score_band = case when score >= 80 then "high" else "low" end
segment recent = days_ago < 30
"""
BACKWARD = """
segment recent = days_ago < 30
feature score_band = case when score >= 80 then "high" else "low" end
segment vip = score_band = "high"
segment vip_and_recent = vip and recent
"""


def test_declaration_order_does_not_matter():
    table = pa.table({"score": [90, 90, 50], "days_ago": [10, 40, 10]})
    forward = segql.compile(FORWARD).evaluate(table, as_of=AS_OF)
    backward = segql.compile(BACKWARD).evaluate(table, as_of=AS_OF)
    expected = {
        "vip_and_recent": [True, False, False],
        "vip": [True, True, False],
        "recent": [True, False, True],
        "score_band": ["high", "high", "low"],
    }
    assert columns(forward) == expected
    assert columns(backward) == expected
    assert forward.column_names == ["vip_and_recent", "vip", "recent", "score_band"]
    assert backward.column_names == ["recent", "vip", "vip_and_recent", "score_band"]


def test_param_declared_after_use():
    program = segql.compile("segment s = x > $limit\nparam limit: int = 5")
    assert program.evaluate(pa.table({"x": [5, 6]}), as_of=AS_OF).column("s").to_pylist() == [False, True]


# ------------------------------------------------------ a bare expression
def test_bare_expression_is_one_segment_named_segment():
    program = segql.compile("x > 1 and y = 'a'")
    assert program.segments == ["segment"]
    assert program.features == []
    out = program.evaluate(pa.table({"x": [1, 2, 3], "y": ["a", "a", None]}), as_of=AS_OF)
    assert out.column_names == ["segment"]
    assert out.column("segment").to_pylist() == [False, True, False]


def test_bare_expression_with_key():
    out = segql.compile("x > 1").evaluate(pa.table({"id": [7, 8], "x": [1, 2]}), key="id", as_of=AS_OF)
    assert columns(out) == {"id": [7, 8], "segment": [False, True]}


def test_segment_reference_is_its_membership():
    # A segment is a plain boolean (§4: null means "not a member"), so `not a` is its complement.
    program = segql.compile("segment a = x > 1\nsegment not_a = not a\nsegment either = a or not_a")
    out = program.evaluate(pa.table({"x": [0, 2, None]}), as_of=AS_OF)
    assert columns(out) == {
        "a": [False, True, False],
        "not_a": [True, False, True],
        "either": [True, True, True],
    }


# ------------------------------------------------------------- duplicates
@pytest.mark.parametrize(
    "source",
    [
        "segment a = x > 1\nsegment a = x > 2",
        "segment a = x > 1\nsegment A = x > 2",
        "feature Total = x\nsegment total = x > 2",
        "feature f = x\nfeature f = x + 1",
    ],
)
def test_duplicate_names_are_an_error(source):
    with pytest.raises(segql.SegqlNameError) as info:
        segql.compile(source)
    assert info.value.line == 2
    assert info.value.column == 9


def test_duplicate_name_message_says_which():
    with pytest.raises(segql.SegqlNameError) as info:
        segql.compile("segment big = x > 1\nsegment BIG = x > 2")
    assert "only in case" in info.value.message
    with pytest.raises(segql.SegqlNameError) as info:
        segql.compile("segment big = x > 1\nsegment big = x > 2")
    assert "already declared" in info.value.message


def test_duplicate_params_are_an_error():
    with pytest.raises(segql.SegqlNameError):
        segql.compile("param p: int = 1\nparam P: int = 2\nsegment s = x > $p")


# ---------------------------------------------------------- undefined names
def test_reference_to_undefined_name_suggests_the_nearest():
    program = segql.compile("segment big_spenders = spend > 100\nsegment keep = big_spender and active")
    with pytest.raises(segql.SegqlNameError) as info:
        program.evaluate(pa.table({"spend": [1.0], "active": [True]}), as_of=AS_OF)
    err = info.value
    assert (err.line, err.column) == (2, 16)
    assert "big_spender" in err.message
    assert err.hint == "did you mean 'big_spenders'?"


def test_undefined_name_suggests_a_column():
    program = segql.compile("segment s = amount_spnt > 100")
    with pytest.raises(segql.SegqlNameError) as info:
        program.evaluate(pa.table({"amount_spent": [1.0]}), as_of=AS_OF)
    assert info.value.hint == "did you mean 'amount_spent'?"


# ------------------------------------------------------------------- cycles
@pytest.mark.parametrize(
    ("source", "cycle"),
    [
        ("segment a = b\nsegment b = a", ["a", "b"]),
        ("segment a = not b\nsegment b = c or x > 1\nsegment c = a", ["a", "b", "c"]),
        ("segment a = a and x > 1", ["a"]),
        ("feature f = case when s then 1 else 0 end\nsegment s = f > 0", ["f", "s"]),
    ],
)
def test_cycles_are_an_error_naming_the_cycle(source, cycle):
    with pytest.raises(segql.CycleError) as info:
        segql.compile(source)
    message = info.value.message
    named = re.search(r"(\w+(?: -> \w+)+)", message)
    assert named is not None, message
    names = named.group(1).split(" -> ")
    assert names[0] == names[-1]
    assert sorted(names[:-1]) == sorted(cycle)
    assert isinstance(info.value, segql.SegqlError)


def test_cycle_message_for_two_segments():
    with pytest.raises(segql.CycleError) as info:
        segql.compile("segment a = b\nsegment b = a")
    assert "a -> b -> a" in info.value.message


def test_cycle_not_involving_all_declarations():
    source = "segment ok = x > 1\nsegment p = q or ok\nsegment q = r\nsegment r = p"
    with pytest.raises(segql.CycleError) as info:
        segql.compile(source)
    assert "p -> q -> r -> p" in info.value.message


# --------------------------------------------------- shadowing and backquotes
def test_declared_names_shadow_columns():
    table = pa.table({"vip": [True, False, True], "spend": [50.0, 500.0, 900.0]})
    program = segql.compile(
        """
        segment vip = spend > 100
        segment vip_column = `vip`
        segment both = vip and `vip`
        """
    )
    out = program.evaluate(table, as_of=AS_OF)
    assert columns(out) == {
        "vip": [False, True, True],
        "vip_column": [True, False, True],
        "both": [False, False, True],
    }


def test_backquoted_name_inside_its_own_declaration_is_the_column():
    table = pa.table({"score": [1, 5]})
    program = segql.compile("feature score = `score` * 10\nsegment high = score > 20")
    out = program.evaluate(table, as_of=AS_OF)
    assert columns(out) == {"high": [False, True], "score": [10, 50]}


def test_shadowing_is_case_insensitive():
    table = pa.table({"VIP": [True, False]})
    program = segql.compile("segment vip = 1 = 2\nsegment s = VIP")
    out = program.evaluate(table, as_of=AS_OF)
    assert out.column("s").to_pylist() == [False, False]
