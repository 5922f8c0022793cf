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
CATEGORIES = ["books", "toys", "garden", "beauty", "tech", "sports"]


def source() -> str:
    return resources.files(__package__).joinpath("customers.segql").read_text(encoding="utf-8")


def customers(n: int = 10_000, seed: int = 7) -> pa.Table:
    """A deterministic synthetic customer table (the same for a given n and seed)."""
    rng = random.Random(seed)
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    span_days = (AS_OF - start).days
    ids, ages, countries, cities, lats, lons, emails, births, signups, subscribed, tags = ([] for _ in range(11))
    for i in range(n):
        country = rng.choices(COUNTRIES, weights=[30, 20, 12, 10, 8, 8, 4, 8])[0]
        city, lat, lon = rng.choice(CITIES[country])
        age = rng.randint(18, 80) if rng.random() > 0.05 else None
        ids.append(100_000 + i)
        ages.append(age)
        countries.append(country)
        cities.append(city)
        lats.append(round(lat + rng.uniform(-0.2, 0.2), 4))
        lons.append(round(lon + rng.uniform(-0.2, 0.2), 4))
        emails.append(f"user{i}@{rng.choice(DOMAINS)}")
        birth_year = AS_OF.year - age if age is not None else 1980
        births.append(dt.date(birth_year, rng.randint(1, 12), rng.randint(1, 28)))
        signups.append((start + dt.timedelta(days=rng.randrange(span_days))).date())
        subscribed.append(rng.random() < 0.4)
        tags.append(rng.sample(TAGS, rng.randint(0, 3)))
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "age": pa.array(ages, pa.int8()),
            "country": pa.array(countries, pa.string()).dictionary_encode(),
            "city": pa.array(cities, pa.string()),
            "lat": pa.array(lats, pa.float64()),
            "lon": pa.array(lons, pa.float64()),
            "email": pa.array(emails, pa.string()),
            "birth_date": pa.array(births, pa.date32()),
            "signup_date": pa.array(signups, pa.date32()),
            "is_subscribed": pa.array(subscribed, pa.bool_()),
            "tags": pa.array(tags, pa.list_(pa.string())),
        }
    )


def orders(customers: pa.Table, seed: int = 8) -> pa.Table:
    """Orders of the demo customers: most buy a few times, some often, some never."""
    rng = random.Random(seed)
    who: list[int] = []
    when: list[dt.datetime] = []
    amounts: list[float] = []
    categories: list[str] = []
    for cid, signup in zip(customers["customer_id"].to_pylist(), customers["signup_date"].to_pylist()):
        if rng.random() < 0.15:
            continue  # never ordered
        first = dt.datetime(signup.year, signup.month, signup.day, tzinfo=dt.UTC)
        seconds = max(1, int((AS_OF - first).total_seconds()))
        for _ in range(int(rng.expovariate(1 / 6)) + 1):
            who.append(cid)
            when.append(first + dt.timedelta(seconds=rng.randrange(seconds)))
            amounts.append(round(rng.uniform(15, 160), 2))
            categories.append(rng.choice(CATEGORIES))
    return pa.table(
        {
            "customer_id": pa.array(who, pa.int64()),
            "ts": pa.array(when, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amounts, pa.float64()),
            "category": pa.array(categories, pa.string()).dictionary_encode(),
        }
    )
