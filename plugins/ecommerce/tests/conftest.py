"""Fixtures for the ecommerce pack: the CDNOW purchase log (Fader & Hardie) as Arrow
tables and as a DuckDB table, and a host with the pack registered explicitly.

The log ships with the ``Lifetimes`` package as ``lifetimes/datasets/CDNOW_master.txt``
(whitespace-separated ``customer_id date(YYYYMMDD) number_of_cds dollar_value``).
``lifetimes`` itself is never imported (its loader is broken on this NumPy): the
file is located through its import spec and parsed here.  The DuckDB copy is
built from the plain-Python parse, not from the Arrow tables under test.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import segql_ecommerce

import segql

AS_OF = dt.datetime(1998, 7, 1, tzinfo=dt.UTC)
ORDER_COUNT = 69_659
CUSTOMER_COUNT = 23_570
Row = tuple[int, dt.date, int, float]


def cdnow_path() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations, "the Lifetimes package is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"


@pytest.fixture(scope="session")
def cdnow_rows() -> list[Row]:
    """The raw log in file order: (customer_id, order day, number of CDs, dollar value)."""
    lines = cdnow_path().read_text().splitlines()
    assert lines[0].split() == ["customer_id", "date", "number_of_cds", "dollar_value"]
    rows: list[Row] = []
    for line in lines[1:]:
        cid, day, cds, value = line.split()
        rows.append((int(cid), dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])), int(cds), float(value)))
    assert len(rows) == ORDER_COUNT
    return rows


@pytest.fixture(scope="session")
def orders(cdnow_rows: list[Row]) -> pa.Table:
    """customer_id int64, ts timestamp[us, UTC] (midnight of the order day), amount float64."""
    ids = np.fromiter((r[0] for r in cdnow_rows), dtype=np.int64, count=len(cdnow_rows))
    days = np.array([r[1] for r in cdnow_rows], dtype="datetime64[D]")
    amounts = np.fromiter((r[3] for r in cdnow_rows), dtype=np.float64, count=len(cdnow_rows))
    return pa.table(
        {
            "customer_id": pa.array(ids),
            "ts": pa.array(days.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amounts),
        }
    )


@pytest.fixture(scope="session")
def customers(cdnow_rows: list[Row]) -> pa.Table:
    """One row per customer, ids ascending."""
    ids = sorted({r[0] for r in cdnow_rows})
    assert len(ids) == CUSTOMER_COUNT
    return pa.table({"customer_id": pa.array(ids, pa.int64())})


@pytest.fixture(scope="session")
def duck(cdnow_rows: list[Row]) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB with ``orders(customer_id BIGINT, day DATE, amount DOUBLE)`` from the raw parse."""
    raw = pa.table(
        {
            "customer_id": pa.array([r[0] for r in cdnow_rows], pa.int64()),
            "day": pa.array([r[1] for r in cdnow_rows], pa.date32()),
            "amount": pa.array([r[3] for r in cdnow_rows], pa.float64()),
        }
    )
    con = duckdb.connect()
    con.register("raw_orders", raw)
    con.execute("CREATE TABLE orders AS SELECT * FROM raw_orders")
    con.unregister("raw_orders")
    yield con
    con.close()


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """A host with only segql's built-ins and this pack (other packs cannot interfere)."""
    host = segql.PluginHost(discover=False, packs={"ecommerce": segql_ecommerce})
    assert host.packs["ecommerce"].ok, host.failures
    return host


Evaluate = Callable[..., dict[str, list[Any]]]


@pytest.fixture(scope="session")
def cdnow(host: segql.PluginHost, customers: pa.Table, orders: pa.Table) -> Evaluate:
    """Evaluate a segment file on CDNOW at AS_OF: column name -> values, in customer-id order."""

    def evaluate(source: str, **kwargs: Any) -> dict[str, list[Any]]:
        kwargs.setdefault("as_of", AS_OF)
        program = segql.compile(source, plugins=kwargs.pop("plugins", host))
        out = program.evaluate(customers, key="customer_id", related={"orders": orders}, **kwargs)
        assert out["customer_id"].to_pylist() == customers["customer_id"].to_pylist()
        return out.to_pydict()

    return evaluate


@pytest.fixture(scope="session")
def sql(duck: duckdb.DuckDBPyConnection, customers: pa.Table) -> Callable[[str], list[Any]]:
    """Run a DuckDB query selecting (customer_id, value); the values in customer-id
    order, null for customers the query does not return."""

    def run(query: str) -> list[Any]:
        found = dict(duck.execute(query).fetchall())
        return [found.get(cid) for cid in customers["customer_id"].to_pylist()]

    return run
