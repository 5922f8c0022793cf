"""bfsi.life_stage, called from segment files: paper expectations and an independent
plain-Python reading of the documented rule over the real credit_data frame."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import segql

YA, YF, EF, PR, RT = "young_adult", "young_family", "established_family", "pre_retiree", "retiree"
STAGE_ARGS = "age: a, marital_status: m, dependants: d"

# (age, marital status, dependants) -> stage, each worked out from the documented rule
CASES: list[tuple[Any, Any, Any, str | None]] = [
    (17, "married", 1, None),  # not an adult
    (18, "single", 0, YA),
    (18, "Married", 0, YF),  # partnered: a family even without dependants
    (39, " SINGLE ", 2, YF),  # dependants make a family
    (39.9, "divorced", 0, YA),
    (39, None, 0, None),  # unknown status, no dependants: family unknown
    (39, None, 1, YF),  # dependants decide it
    (39, "single", None, None),  # unknown dependants, not partnered: family unknown
    (39, "married", None, YF),  # partnered decides it
    (30, "Civil_Partnership", 0, YF),
    (30, "common-law", 0, YF),
    (30, "de  facto", math.nan, YF),  # runs of spaces collapse; NaN dependants are unknown
    (30, "separated", 0, YA),  # separated is not partnered
    (30, "widowed", -1, None),  # a negative count is unknown
    (30, "single", math.inf, None),  # so is an infinite count (segql.pack's rule)
    (30, "married", math.inf, YF),  # partnered: a family whatever the count
    (math.inf, "married", 2, None),  # an infinite age is no age
    (30, "", 0, None),  # empty status is unknown
    (30, "Prefer not to say", 0, None),
    (30, "N/A", 1, YF),
    (40, None, None, EF),  # from 40 the household does not matter
    (54.9, "single", 0, EF),
    (55, "married", 3, PR),
    (64.99, None, None, PR),
    (65, "widow", 0, RT),
    (120, "single", 0, RT),
    (121, "single", 0, None),  # not a plausible age
    (None, "married", 2, None),
    (math.nan, "married", 2, None),
]


def profile(cases: list[tuple[Any, Any, Any, str | None]], *, dictionary: bool = False) -> pa.Table:
    marital = pa.array([c[1] for c in cases], pa.string())
    return pa.table(
        {
            "a": pa.array([c[0] for c in cases], pa.float64(), from_pandas=True),
            "m": marital.dictionary_encode() if dictionary else marital,
            "d": pa.array([c[2] for c in cases], pa.float64(), from_pandas=True),
        }
    )


@pytest.mark.parametrize("dictionary", [False, True])
def test_life_stage_rule_on_paper(run: Any, dictionary: bool) -> None:
    out = run(f"feature stage = bfsi.life_stage({STAGE_ARGS})", profile(CASES, dictionary=dictionary))
    assert out["stage"] == [c[3] for c in CASES]


def test_retirement_age_argument_moves_the_older_bands(run: Any) -> None:
    ages = [39, 40, 56, 56.99, 57, 66, 67]
    t = pa.table({"a": pa.array(ages, pa.float64()), "m": ["single"] * 7, "d": [0] * 7})
    out = run(f"feature stage = bfsi.life_stage({STAGE_ARGS}, retirement_age: 67)", t)
    assert out["stage"] == [YA, EF, EF, EF, PR, PR, RT]


def test_retirement_age_is_checked(run: Any) -> None:
    t = pa.table({"a": [30.0], "m": ["single"], "d": [0]})
    with pytest.raises(segql.PluginError, match="retirement_age must be between 50 and 120, got 49"):
        run(f"feature stage = bfsi.life_stage({STAGE_ARGS}, retirement_age: 49)", t)


def test_integer_columns_and_constant_arguments(run: Any) -> None:
    t = pa.table({"age": [33, 70], "marital_status": ["MARRIED", "single"], "dependants": [0, 0]})
    out = run(
        """
        feature by_convention = bfsi.life_stage()
        feature no_children = bfsi.life_stage(age: age, marital_status: "single", dependants: 0)
        feature constant = bfsi.life_stage(age: 58, marital_status: null, dependants: null)
        """,
        t,
    )
    assert out["by_convention"] == [YF, RT]
    assert out["no_children"] == [YA, RT]
    assert out["constant"] == [PR, PR]


# ------------------------------------------------------------------ real data


def test_credit_data_without_dependants(
    run: Any, credit: pa.Table, credit_df: pd.DataFrame, expected_stage: Any
) -> None:
    """credit_data records no dependants: pass null.  Married under-40s are young families,
    unpartnered under-40s cannot be placed (null), older applicants fall in their age band."""
    out = run(
        """
        feature stage = bfsi.life_stage(age: Age, marital_status: Marital, dependants: null)
        segment young_families = stage = "young_family"
        segment unplaced = stage is null
        """,
        credit,
    )
    want = [expected_stage(a, m, None) for a, m in zip(credit_df["Age"], credit_df["Marital"])]
    assert out["stage"] == want
    assert out["young_families"] == [s == YF for s in want]
    assert out["unplaced"] == [s is None for s in want]
    assert set(want) == {YF, EF, PR, RT, None}
    assert credit_df["Age"].min() == 18 and credit_df["Age"].max() >= 65


def test_credit_data_assuming_no_dependants(
    run: Any, credit: pa.Table, credit_df: pd.DataFrame, expected_stage: Any
) -> None:
    """The same applicants if the host asserts "no dependants" (0): singles under 40 become young adults;
    the one applicant with a missing marital status and age under 40 stays unplaced."""
    source = """
        feature stage = bfsi.life_stage(age: Age, marital_status: Marital, dependants: 0, retirement_age: 60)
    """
    out = run(source, credit)
    want = [expected_stage(a, m, 0, retirement_age=60) for a, m in zip(credit_df["Age"], credit_df["Marital"])]
    assert out["stage"] == want
    counts = Counter(want)
    assert set(counts) == {YA, YF, EF, PR, RT, None}
    assert (
        counts[YA]
        == ((credit_df["Age"] < 40) & credit_df["Marital"].isin(["single", "separated", "widow", "divorced"])).sum()
    )


def test_marital_status_as_an_expression(
    run: Any, credit: pa.Table, credit_df: pd.DataFrame, expected_stage: Any
) -> None:
    """Arguments are ordinary expressions: here a host-side recode of the status."""
    out = run(
        """
        feature stage = bfsi.life_stage(age: Age,
            marital_status: case when Marital in ["married"] then "partnered" else "single" end,
            dependants: if(Home = "parents", 0, null))
        """,
        credit,
    )
    want = [
        expected_stage(a, "partnered" if m == "married" else "single", 0 if h == "parents" else None)
        for a, m, h in zip(credit_df["Age"], credit_df["Marital"], credit_df["Home"])
    ]
    assert out["stage"] == want
