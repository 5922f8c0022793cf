"""The CDNOW purchase log (Fader & Hardie) as Arrow tables.

The file ships with the ``Lifetimes`` package; its Python loader is not used
(it does not import on this NumPy), the text file is read directly::

     customer_id  date number_of_cds  dollar_value
     00001 19970101  1   11.77

69,659 orders of 23,570 customers, January 1997 to June 1998.

``orders`` keeps the file's row order (customer, then date).  A customer's
orders of one day tie on the date: ``first``/``last … by`` decide them by the
value (LANGUAGE.md §3), never by that order.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ORDER_COUNT = 69_659
CUSTOMER_COUNT = 23_570


def cdnow_path() -> Path:
    """Where ``lifetimes/datasets/CDNOW_master.txt`` is installed (without importing lifetimes)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"
        if path.exists():
            return path
    located = importlib.metadata.distribution("Lifetimes").locate_file("lifetimes/datasets/CDNOW_master.txt")
    return Path(str(located))


@functools.cache
def load_orders() -> pa.Table:
    """``customer_id`` int64, ``ts`` timestamp[us, UTC] (midnight of the order day),
    ``order_date`` date32, ``cds`` int64, ``amount`` float64 -- in file order."""
    tokens = cdnow_path().read_text().split()
    header = ["customer_id", "date", "number_of_cds", "dollar_value"]
    assert tokens[:4] == header, f"unexpected CDNOW header {tokens[:4]}"
    fields = np.array(tokens[4:]).reshape(-1, 4)
    midnight = pc.strptime(pa.array(fields[:, 1]), format="%Y%m%d", unit="us")
    return pa.table(
        {
            "customer_id": pa.array(fields[:, 0].astype(np.int64)),
            "ts": pc.assume_timezone(midnight, "UTC"),
            "order_date": pc.cast(midnight, pa.date32()),
            "cds": pa.array(fields[:, 2].astype(np.int64)),
            "amount": pa.array(fields[:, 3].astype(np.float64)),
        }
    )


@functools.cache
def load_customers() -> pa.Table:
    """One row per customer, sorted by id: ``customer_id`` int64, the day of the
    first order ``first_order_date`` (date32) and the acquisition ``cohort``
    (``"1997-01"`` … ``"1997-03"``, string)."""
    orders = load_orders()
    grouped = (
        orders.group_by("customer_id")
        .aggregate([("order_date", "min")])
        .rename_columns(["customer_id", "first_order_date"])
        .sort_by("customer_id")
    )
    cohort = pc.strftime(pc.cast(grouped.column("first_order_date"), pa.timestamp("s")), format="%Y-%m")
    return grouped.append_column("cohort", cohort)
