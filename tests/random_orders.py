"""Small random customer/order tables for the aggregate differential tests
(median/quantile, stddev): a few customers, orders with some unknown keys,
amounts drawn from a pool of repeated values or a normal distribution at a
random scale, with NaN, ±inf, ±0 and nulls mixed in."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def random_order_tables(
    seed: int, *, nan_share: float = 0.05, special_share: float = 0.03, big: bool = False
) -> tuple[pa.Table, pa.Table]:
    """(profiles, orders) drawn from ``seed``: ``nan_share`` of the amounts NaN,
    the next ``special_share`` one of ±inf/±0; with ``big``, an int64 column
    ``big`` of values up to ±2**62."""
    rng = np.random.default_rng(seed)
    customers = int(rng.integers(1, 12))
    rows = int(rng.integers(0, 60))
    keys = rng.integers(0, customers + 2, size=rows)  # some orders of unknown customers
    scale = 10.0 ** float(rng.integers(-3, 4))
    pool = np.round(rng.normal(size=8) * scale, int(rng.integers(0, 4)))
    amounts = rng.choice(pool, size=rows) if rng.random() < 0.5 else rng.normal(size=rows) * scale
    special = rng.random(rows)
    amounts = np.where(special < nan_share, np.nan, amounts)
    amounts = np.where(
        (special >= nan_share) & (special < nan_share + special_share),
        rng.choice([np.inf, -np.inf, 0.0, -0.0], size=rows),
        amounts,
    )
    nulls = rng.random(rows) < 0.1
    columns = {
        "customer_id": pa.array(keys, pa.int64()),
        "amount": pa.array(amounts, pa.float64(), mask=nulls),
        "qty": pa.array(rng.integers(-5, 6, size=rows), pa.int64()),
    }
    if big:
        columns["big"] = pa.array(rng.integers(-(2**62), 2**62, size=rows), pa.int64())
    columns["price"] = pa.array([f"{v:.2f}" for v in rng.normal(size=rows) * 50]).cast(pa.decimal128(9, 2))
    profile = pa.table({"customer_id": pa.array(np.arange(customers), pa.int64())})
    return profile, pa.table(columns)
