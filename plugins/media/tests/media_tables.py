"""Shared helpers of the media pack's tests: the evaluation instant and table builders.

(A uniquely named module rather than ``conftest``: every pack has a
``tests/conftest.py``, so ``from conftest import …`` could resolve to another pack's.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

AS_OF = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
NAIVE_AS_OF = AS_OF.replace(tzinfo=None)

ViewRow = tuple[int, str | None, float | None, dt.datetime]
SessionRow = tuple[int, str | None, dt.datetime]


def ago(days: float = 0, hours: float = 0, microseconds: int = 0) -> dt.datetime:
    """A naive UTC timestamp this long before AS_OF (negative: after it)."""
    return NAIVE_AS_OF - dt.timedelta(days=days, hours=hours, microseconds=microseconds)


def views_table(rows: Sequence[ViewRow]) -> pa.Table:
    """customer_id int64, genre string, minutes float64, ts timestamp[us]."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.int64()),
            "genre": pa.array([r[1] for r in rows], pa.string()),
            "minutes": pa.array([r[2] for r in rows], pa.float64()),
            "ts": pa.array([r[3] for r in rows], pa.timestamp("us")),
        }
    )


def sessions_table(rows: Sequence[SessionRow]) -> pa.Table:
    """customer_id int64, device string, ts timestamp[us]."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.int64()),
            "device": pa.array([r[1] for r in rows], pa.string()),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us")),
        }
    )


def customers_table(ids: Sequence[int], **columns: Sequence[Any] | pa.Array) -> pa.Table:
    return pa.table({"customer_id": pa.array(ids, pa.int64()), **columns})


Run = Callable[..., dict[str, list[Any]]]
"""The ``run`` fixture: ``run(source, customers, views=None, sessions=None, **evaluate_kwargs)``."""


# ------------------------------------------------------------ generated tables

SEED = 20261101
N_CUSTOMERS = 1500
DEFAULT_GENRES = [
    *["action", "animation", "comedy", "crime", "documentary", "drama", "family"],
    *["horror", "reality", "romance", "sci-fi", "sports", "thriller"],
]
GENRE_POOL = [*DEFAULT_GENRES, "anime", "Drama", None]
MINUTES_POOL = [0.0, 10.0, 20.0, 30.0, 60.0, 90.0, None]
DEVICES = {
    "mobile": ["mobile", "phone", "smartphone", "tablet"],
    "tv": ["tv", "smart_tv", "connected_tv", "streaming_stick", "set_top_box", "console"],
    "web": ["web", "desktop", "laptop", "browser"],
}
DEVICE_POOL = [*DEVICES["mobile"], *DEVICES["tv"], *DEVICES["web"], "car", "Phone", None]
US = dt.timedelta(microseconds=1)
BOUNDARIES = [
    NAIVE_AS_OF,
    NAIVE_AS_OF + dt.timedelta(hours=1),
    *(NAIVE_AS_OF - dt.timedelta(days=d) for d in (14, 28, 30, 90)),
    *(NAIVE_AS_OF - dt.timedelta(days=d) - US for d in (14, 28, 30, 90)),
]


def _timestamps(rng: np.random.Generator, n: int, days: int) -> list[dt.datetime]:
    """Uniform over the ``days`` before AS_OF, with 15% on the boundary instants."""
    offsets = rng.integers(0, days * 86_400_000_000, n)
    on_boundary = rng.random(n) < 0.15
    picks = rng.integers(0, len(BOUNDARIES), n)
    return [
        BOUNDARIES[p] if b else NAIVE_AS_OF - dt.timedelta(microseconds=int(o))
        for o, b, p in zip(offsets, on_boundary, picks)
    ]


def _events(rng: np.random.Generator, per_customer: np.ndarray, pool: Sequence[Any]) -> Iterator[Any]:
    """One (customer, value) per event: the customer's favourite from ``pool`` with a
    per-customer probability (0.2, 0.5 or 0.9), else any value of ``pool``."""
    favourite = rng.integers(0, len(pool), N_CUSTOMERS)
    loyalty = rng.choice([0.2, 0.5, 0.9], N_CUSTOMERS)
    for customer, count in enumerate(per_customer):
        loyal = rng.random(count) < loyalty[customer]
        other = rng.integers(0, len(pool), count)
        for is_loyal, o in zip(loyal, other):
            yield customer + 1, pool[favourite[customer] if is_loyal else o]


def generated_tables(seed: int = SEED) -> dict[str, pa.Table]:
    """Seeded customers (N_CUSTOMERS), views and sessions around AS_OF."""
    rng = np.random.default_rng(seed)
    customers = pa.table({"customer_id": pa.array(range(1, N_CUSTOMERS + 1), pa.int64())})

    views_per = rng.poisson(rng.choice([0.0, 2.0, 6.0, 12.0], N_CUSTOMERS))
    view_rows = list(_events(rng, views_per, GENRE_POOL))
    minutes = [MINUTES_POOL[i] for i in rng.integers(0, len(MINUTES_POOL), len(view_rows))]
    views = pa.table(
        {
            "customer_id": pa.array([r[0] for r in view_rows], pa.int64()),
            "genre": pa.array([r[1] for r in view_rows], pa.string()),
            "minutes": pa.array(minutes, pa.float64()),
            "ts": pa.array(_timestamps(rng, len(view_rows), 120), pa.timestamp("us")),
        }
    )
    # Sessions in 100 days at 0 .. 30 per 4 weeks.
    sessions_per = rng.poisson(rng.choice([0.0, 1.0, 3.0, 6.0, 15.0, 30.0], N_CUSTOMERS) * 100 / 28)
    session_rows = list(_events(rng, sessions_per, DEVICE_POOL))
    sessions = pa.table(
        {
            "customer_id": pa.array([r[0] for r in session_rows], pa.int64()),
            "device": pa.array([r[1] for r in session_rows], pa.string()),
            "ts": pa.array(_timestamps(rng, len(session_rows), 100), pa.timestamp("us")),
        }
    )
    return {"customers": customers, "views": views, "sessions": sessions}
