"""The bundled demo: an example segment file and a generated customer table."""

from __future__ import annotations

import datetime as dt
import random
from importlib import resources

import pyarrow as pa

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
"""The demo evaluates at a fixed instant so its output never changes."""

COUNTRIES = ["PL", "DE", "FR", "ES", "IT", "NL", "SE", "US"]
CITIES = {
    "PL": [("Warszawa", 52.23, 21.01), ("Kraków", 50.06, 19.94), ("Gdańsk", 54.35, 18.65)],
    "DE": [("Berlin", 52.52, 13.40), ("Potsdam", 52.39, 13.06), ("München", 48.14, 11.58)],
    "FR": [("Paris", 48.86, 2.35), ("Lyon", 45.76, 4.84)],
    "ES": [("Madrid", 40.42, -3.70), ("Barcelona", 41.39, 2.17)],
    "IT": [("Roma", 41.90, 12.50), ("Milano", 45.46, 9.19)],
    "NL": [("Amsterdam", 52.37, 4.90)],
    "SE": [("Stockholm", 59.33, 18.07)],
    "US": [("New York", 40.71, -74.01), ("Chicago", 41.88, -87.63)],
}
DOMAINS = ["gmail.com", "outlook.com", "wp.pl", "web.de", "yahoo.com", "icloud.com"]
TAGS = ["vip", "newsletter", "outdoor", "books", "kids", "tech", "beauty"]


def source() -> str:
    return resources.files(__package__).joinpath("customers.segql").read_text(encoding="utf-8")


def customers(n: int = 10_000, seed: int = 7) -> pa.Table:
    """A deterministic synthetic customer table (the same for a given n and seed)."""
    rng = random.Random(seed)
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "customer_id",
            "age",
            "country",
            "city",
            "lat",
            "lon",
            "email",
            "birth_date",
            "signup_date",
            "last_order_ts",
            "amount_spent",
            "orders_count",
            "is_subscribed",
            "tags",
        )
    }
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    span_seconds = int((AS_OF - start).total_seconds())
    for i in range(n):
        country = rng.choices(COUNTRIES, weights=[30, 20, 12, 10, 8, 8, 4, 8])[0]
        city, lat, lon = rng.choice(CITIES[country])
        age = rng.randint(18, 80) if rng.random() > 0.05 else None
        signup = start + dt.timedelta(seconds=rng.randrange(span_seconds))
        orders = 0 if rng.random() < 0.15 else int(rng.expovariate(1 / 6)) + 1
        last_order = None
        if orders:
            last_order = signup + dt.timedelta(seconds=rng.randrange(max(1, int((AS_OF - signup).total_seconds()))))
        rows["customer_id"].append(100_000 + i)
        rows["age"].append(age)
        rows["country"].append(country)
        rows["city"].append(city)
        rows["lat"].append(round(lat + rng.uniform(-0.2, 0.2), 4))
        rows["lon"].append(round(lon + rng.uniform(-0.2, 0.2), 4))
        rows["email"].append(f"user{i}@{rng.choice(DOMAINS)}")
        birth_year = AS_OF.year - age if age is not None else 1980
        rows["birth_date"].append(dt.date(birth_year, rng.randint(1, 12), rng.randint(1, 28)))
        rows["signup_date"].append(signup.date())
        rows["last_order_ts"].append(last_order)
        rows["amount_spent"].append(round(orders * rng.uniform(15, 120), 2))
        rows["orders_count"].append(orders)
        rows["is_subscribed"].append(rng.random() < 0.4)
        rows["tags"].append(rng.sample(TAGS, rng.randint(0, 3)))
    return pa.table(
        {
            "customer_id": pa.array(rows["customer_id"], pa.int64()),
            "age": pa.array(rows["age"], pa.int8()),
            "country": pa.array(rows["country"], pa.string()).dictionary_encode(),
            "city": pa.array(rows["city"], pa.string()),
            "lat": pa.array(rows["lat"], pa.float64()),
            "lon": pa.array(rows["lon"], pa.float64()),
            "email": pa.array(rows["email"], pa.string()),
            "birth_date": pa.array(rows["birth_date"], pa.date32()),
            "signup_date": pa.array(rows["signup_date"], pa.date32()),
            "last_order_ts": pa.array(rows["last_order_ts"], pa.timestamp("us", tz="UTC")),
            "amount_spent": pa.array(rows["amount_spent"], pa.float64()),
            "orders_count": pa.array(rows["orders_count"], pa.int32()),
            "is_subscribed": pa.array(rows["is_subscribed"], pa.bool_()),
            "tags": pa.array(rows["tags"], pa.list_(pa.string())),
        }
    )
