"""The pack as a whole: discovery, declared signatures, type checking, errors, README examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import segql_bfsi

import segql

README = Path(__file__).resolve().parents[1] / "README.md"
FUNCTIONS = ("bfsi.equity_allocation", "bfsi.life_stage", "bfsi.risk_score", "bfsi.risk_tolerance")
LIBRARY = (
    "bfsi.aggressive_investors",
    "bfsi.conservative_investors",
    "bfsi.equity_share",
    "bfsi.established_families",
    "bfsi.moderate_investors",
    "bfsi.pre_retirees",
    "bfsi.retirees",
    "bfsi.risk_level",
    "bfsi.risk_profile",
    "bfsi.stage",
    "bfsi.suitability_review",
    "bfsi.young_adults",
    "bfsi.young_families",
)
CONVENTIONS = (
    "age",
    "annual_income",
    "dependants",
    "investment_experience_years",
    "marital_status",
    "risk_questionnaire_score",
)


def test_discovered_through_the_entry_point() -> None:
    host = segql.PluginHost()
    info = host.packs["bfsi"]
    assert info.ok, info.error
    assert info.origin == "entry point"
    assert info.version == segql_bfsi.__version__
    assert info.functions == FUNCTIONS
    assert info.library == LIBRARY
    assert info.conventions == CONVENTIONS


def test_blocked_pack_is_reported() -> None:
    host = segql.PluginHost(block=["bfsi"])
    with pytest.raises(segql.PluginError, match="bfsi"):
        segql.compile("segment s = bfsi.retirees", plugins=host)


def test_signatures_and_docs(host: segql.PluginHost) -> None:
    fn = host.functions.get("bfsi.life_stage")
    assert fn is not None
    assert fn.signature() == (
        "bfsi.life_stage(age: float = age, marital_status: string = marital_status, "
        "dependants: float = dependants, retirement_age: float = 65) -> string"
    )
    risk = host.functions.get("bfsi.risk_tolerance")
    assert risk is not None and risk.returns.text == "string"
    assert [p.name for p in risk.params][:5] == [
        "questionnaire_score",
        "age",
        "annual_income",
        "experience_years",
        "debt_to_income",
    ]
    for name in FUNCTIONS:
        f = host.functions.get(name)
        assert f is not None and f.doc and f.pack == "bfsi"
    readme = README.read_text()
    for name in FUNCTIONS + LIBRARY:
        assert f"`{name}" in readme, name


def test_arguments_are_type_checked_before_reading_rows(host: segql.PluginHost) -> None:
    with pytest.raises(segql.SegqlTypeError) as err:
        segql.compile('feature s = bfsi.life_stage(age: "old", marital_status: "x", dependants: 0)', plugins=host)
    assert (err.value.line, err.value.column) == (1, 34)
    t = pa.table({"age": ["thirty"], "marital_status": ["single"], "dependants": [0]})
    with pytest.raises(segql.SegqlTypeError):
        segql.compile("feature s = bfsi.life_stage()", plugins=host).check(t)
    with pytest.raises(segql.SegqlTypeError, match="cannot compare"):
        segql.compile("segment s = bfsi.life_stage(age: 30, marital_status: null, dependants: 0) > 3", plugins=host)
    with pytest.raises(segql.SegqlNameError, match="has no argument 'dependents'"):
        segql.compile("feature s = bfsi.life_stage(dependents: 1)", plugins=host)


def test_missing_convention_column_says_what_to_pass(run: Any) -> None:
    t = pa.table({"age": [40], "annual_income": [1.0], "investment_experience_years": [1]})
    with pytest.raises(segql.SegqlNameError) as err:
        run("segment s = bfsi.conservative_investors", t)
    assert "risk_questionnaire_score" in str(err.value)
    # passing the argument explicitly is the remedy: age 40 rates 3, income 1.0 rates 1, one year's
    # experience rates 1, so the score is (3 + 1 + 1) / 3 = 1.67: moderate
    out = run(
        """
        feature r = bfsi.risk_tolerance(questionnaire_score: null)
        segment s = bfsi.risk_tolerance(questionnaire_score: null) = 'conservative'
        """,
        t,
    )
    assert out["r"] == ["moderate"]
    assert out["s"] == [False]


def test_chunked_and_dictionary_inputs_give_the_same_result(run: Any) -> None:
    rows = {
        "age": [25, 45, 60, 70, 33, None],
        "marital_status": ["single", "married", None, "widow", "Married", "single"],
        "dependants": [0, 1, 0, 0, None, 0],
        "risk_questionnaire_score": [10.0, 50, 90, None, 70, 20],
        "annual_income": [20000.0, 60000, 150000, 30000, None, 10000],
        "investment_experience_years": [0, 3, 10, 40, 1, None],
    }
    whole = pa.table(rows)
    source = "feature p = bfsi.risk_profile  feature s = bfsi.stage  feature l = bfsi.risk_level"
    expected = run(source, whole)
    chunked = pa.concat_tables([whole.slice(0, 2), whole.slice(2, 1), whole.slice(3)])
    assert chunked.column("age").num_chunks == 3
    dictionary = whole.set_column(1, "marital_status", whole.column("marital_status").dictionary_encode())
    assert run(source, chunked) == expected
    assert run(source, dictionary) == expected


def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_empty_tables_null_typed_and_decimal_columns(run: Any) -> None:
    source = "feature p = bfsi.risk_profile  feature s = bfsi.stage  feature l = bfsi.risk_level"
    one = pa.table(
        {
            "age": pa.array([30], pa.decimal128(5, 1)),  # float parameters accept decimals
            "marital_status": pa.nulls(1),  # an all-null column of Arrow type null
            "dependants": pa.nulls(1),
            "risk_questionnaire_score": pa.nulls(1),
            "annual_income": [50000.0],
            "investment_experience_years": pa.nulls(1),
        }
    )
    # age 30 rates 3, income 50,000 rates 2: 2.5, the tie goes to moderate; the stage is unknown
    assert run(source, one) == {"p": ["moderate"], "s": [None], "l": [2.5]}
    assert run(source, one.slice(0, 0)) == {"p": [], "s": [], "l": []}
