"""Coverage-guided fuzzing of segql with atheris (optional; not part of CI).

Every input is one segql source: the bytes, decoded as UTF-8 (invalid bytes
become lone surrogates, as ``surrogateescape`` decodes them), except the
input's last byte, which ``atheris.FuzzedDataProvider`` reads first and which
chooses the evaluation options (``as_of``, parameter values, the table's
layout).  The harness formats the source, compiles it and, when it compiles,
explains it and evaluates it over a fixed small profile table with a related
``orders`` table, then asks ``Program.why`` about one customer.

segql's promise (docs/security.md, guarantee 5): for bad input only
``segql.SegqlError`` escapes, and ``segql.InternalError`` (a SegqlError too)
means a bug.  So an InternalError, or any exception that is not a SegqlError,
escapes ``TestOneInput`` and atheris reports it as a crash, with the input
saved as ``crash-<sha1>``.

    pip install atheris
    python fuzz/atheris_harness.py -max_total_time=60 fuzz/corpus

See fuzz/README.md.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys

import atheris
import pyarrow as pa

with atheris.instrument_imports(include=["segql", "lark"]):
    import segql
    import segql.format

AS_OF = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)

PROFILE = pa.table(
    {
        "customer_id": pa.array([1, 2, 3, 4], pa.int64()),
        "age": pa.array([30, None, 2**31 - 1, 17], pa.int32()),
        "visits": pa.array([2**63 - 1, -(2**63), None, 0], pa.int64()),
        "score": [1.5, None, -0.0, float("nan")],
        "country": ["PL", None, "DE", ""],
        "city": pa.array(["Warszawa", "Kraków", None, "Berlin"]).dictionary_encode(),
        "email": ["ana@gmail.com", None, "bo@web.de", "Łódź@x.pl"],
        "vip": [True, None, False, True],
        "signup": pa.array([dt.date(2024, 2, 29), None, dt.date(1970, 1, 1), dt.date(2026, 11, 1)]),
        "birth_date": pa.array([dt.date(1990, 11, 3), dt.date(2000, 2, 29), None, dt.date(1980, 1, 1)]),
        "last_seen": pa.array(
            [AS_OF, None, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 10, 31, 23, 59, tzinfo=dt.UTC)],
            pa.timestamp("us", "UTC"),
        ),
        "updated at": pa.array([None, dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, 12), None], pa.timestamp("ms")),
        "tags": [["vip", "books"], None, [], ["outdoor", None]],
        "balance": pa.array(
            [decimal.Decimal("1.50"), None, decimal.Decimal("-3.00"), decimal.Decimal("0")], pa.decimal128(12, 2)
        ),
        "lat": [52.23, None, 50.06, 52.52],
        "lon": [21.01, None, 19.94, 13.40],
    }
)
ORDERS = pa.table(
    {
        "customer_id": pa.array([1, 1, 2, None, 7, 3, 3], pa.int64()),
        "amount": [10.0, None, 2.5, 1.0, 3.0, 99.5, -4.0],
        "qty": pa.array([1, 2**62, None, 3, 4, 1, 1], pa.int64()),
        "category": pa.array(["books", "toys", None, "x", "y", "books", "books"]).dictionary_encode(),
        "ts": pa.array(
            [
                AS_OF,
                None,
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                AS_OF,
                AS_OF,
                dt.datetime(2025, 12, 24, tzinfo=dt.UTC),
                dt.datetime(2026, 10, 2, tzinfo=dt.UTC),
            ],
            pa.timestamp("us", "UTC"),
        ),
        "coupon": [None, "A", "B", None, None, "A", None],
        "paid": [True, False, None, True, True, None, False],
    }
)
PARAMS = (
    None,
    {"p": 1, "min_spend": 100.0, "countries": ["PL", "DE"], "since": AS_OF, "x": "PL"},
    {"p": "a", "min_spend": None, "countries": [], "since": dt.date(2026, 1, 1), "x": 2.5},
    {"p": segql.Duration(months=1), "unknown": 1},
)
AS_OFS = (AS_OF, None, "2024-02-29T23:59:59Z", dt.date(2026, 1, 1))


def check(exc: segql.SegqlError) -> None:
    """A SegqlError is an answer, unless it is an InternalError: a bug."""
    if isinstance(exc, segql.InternalError):
        raise exc
    str(exc)  # rendering the message (with its caret line) must not fail either


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    options = fdp.ConsumeIntInRange(0, 255)  # the input's last byte
    source = fdp.ConsumeBytes(fdp.remaining_bytes()).decode("utf-8", "surrogateescape")
    params = PARAMS[options % len(PARAMS)]
    as_of = AS_OFS[(options // len(PARAMS)) % len(AS_OFS)]
    profile = PROFILE if options < 128 else pa.Table.from_batches(PROFILE.to_batches(max_chunksize=1))

    try:
        segql.format.format_source(source)
    except segql.SegqlError as exc:
        check(exc)
    try:
        program = segql.compile(source)
    except segql.SegqlError as exc:
        check(exc)
        return
    for call in (
        program.explain,
        lambda: program.explain(profile, related={"orders": ORDERS}),
        lambda: program.evaluate(profile, key="customer_id", related={"orders": ORDERS}, as_of=as_of, params=params),
        lambda: program.why(profile, key="customer_id", id=1, related={"orders": ORDERS}, as_of=as_of, params=params),
    ):
        try:
            call()
        except segql.SegqlError as exc:
            check(exc)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
