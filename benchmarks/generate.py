"""Deterministic benchmark data: customers and their orders, as Arrow tables.

The same ``seed`` and sizes always give the same tables.  Generated with NumPy
(a benchmark dependency, not a runtime one) so 8M rows take about a second.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
COUNTRIES = ["PL", "DE", "FR", "ES", "IT", "NL", "SE", "US", "GB", "CZ"]
CATEGORIES = ["books", "toys", "garden", "beauty", "tech", "food", "sports", "fashion"]
DOMAINS = ["gmail.com", "outlook.com", "wp.pl", "web.de", "yahoo.com", "icloud.com", "proton.me"]
CITIES = ["Warszawa", "Berlin", "Paris", "Madrid", "Roma", "Amsterdam", "Stockholm", "New York", "London", "Praha"]


def cli_data_args(customers_file: object, orders_file: object, as_of: str) -> list[str]:
    """The CLI's flags for a customers file and its orders (joined on
    customer_id) evaluated at ``as_of``: what every CLI benchmark passes."""
    return [
        *("--data", str(customers_file), "--related", f"orders={orders_file}"),
        *("--key", "customer_id", "--as-of", as_of),
    ]


def customers(n: int = 2_000_000, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n).astype(np.int64) + 1_000_000
    age = rng.integers(18, 90, n).astype(np.int64)
    age_valid = rng.random(n) > 0.03
    country = rng.choice(len(COUNTRIES), n, p=[0.25, 0.2, 0.12, 0.1, 0.08, 0.07, 0.05, 0.06, 0.04, 0.03])
    city = rng.integers(0, len(CITIES), n)
    spent = np.round(rng.gamma(2.0, 250.0, n), 2)
    signup_days = rng.integers(0, 5 * 365, n)
    signup = np.datetime64("2021-11-01") + signup_days.astype("timedelta64[D]")
    last_login = np.datetime64("2026-11-01T00:00:00") - rng.integers(0, 400 * 86400, n).astype("timedelta64[s]")
    email_user = rng.integers(0, 10**9, n)
    domain = rng.integers(0, len(DOMAINS), n)
    emails = [f"u{u}@{DOMAINS[d]}" for u, d in zip(email_user.tolist(), domain.tolist())]
    return pa.table(
        {
            "customer_id": pa.array(ids),
            "age": pa.array(age, mask=~age_valid),
            "country": pa.DictionaryArray.from_arrays(pa.array(country.astype(np.int32)), pa.array(COUNTRIES)),
            "city": pa.array([CITIES[c] for c in city.tolist()], pa.string()),
            "amount_spent": pa.array(spent),
            "is_subscribed": pa.array(rng.random(n) < 0.4),
            "signup_date": pa.array(signup.astype("datetime64[D]"), pa.date32()),
            "last_login": pa.array(last_login.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "email": pa.array(emails, pa.string()),
        }
    )


def orders(customer_ids: pa.Array, n: int = 8_000_000, seed: int = 2) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.asarray(customer_ids)
    # Skewed: a minority of customers place most orders.
    weights = rng.pareto(1.5, len(ids)) + 0.05
    weights /= weights.sum()
    who = rng.choice(ids, n, p=weights)
    age_seconds = rng.integers(0, 2 * 365 * 86400, n)
    ts = np.datetime64("2026-11-01T00:00:00") - age_seconds.astype("timedelta64[s]")
    amount = np.round(rng.lognormal(3.5, 0.8, n), 2)
    category = rng.integers(0, len(CATEGORIES), n).astype(np.int32)
    return pa.table(
        {
            "customer_id": pa.array(who.astype(np.int64)),
            "ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount),
            "category": pa.DictionaryArray.from_arrays(pa.array(category), pa.array(CATEGORIES)),
        }
    )
