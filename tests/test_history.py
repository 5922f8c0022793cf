"""``Program.history`` and ``segql history`` (LANGUAGE.md §10, "History").

The sizes are checked against DuckDB running hand-written SQL (the oracle):
on CDNOW at weekly and monthly steps, and on random tables (null times, keys
without a profile, ties, NaN) at daily steps.  Forms the SQL oracle does not
cover here (sequences, ``days_since`` inside an aggregate, a pack-free
population function) are checked against ``evaluate`` at every instant,
itself checked against DuckDB by the rest of the suite.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cdnow import load_customers, load_orders

import segql
from segql.history import instants, parse_every

U = dt.UTC

CDNOW_SOURCE = """\
events orders by ts
segment active "ordered in the last 90 days" = exists(orders where ts >= -90d)
segment loyal = count(orders) >= 3
segment big = sum(orders.amount where ts >= -365d) > 100
segment lapsed = count(orders) > 0 and last(orders.ts) < -180d
segment varied = count_distinct(orders.cds) >= 3
segment cheap_first = first(orders.amount) < 15
segment new_customer = first_order_date >= -60d
"""

CDNOW_ORACLE = """
WITH inst AS (SELECT UNNEST(?::TIMESTAMP[]) AS t),
o AS (SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, cds, amount FROM orders),
agg AS (
    SELECT i.t, o.customer_id,
        COUNT(*) FILTER (WHERE o.ts >= i.t - INTERVAL 90 DAY) AS c90,
        COUNT(*) AS n,
        FSUM(o.amount) FILTER (WHERE o.ts >= i.t - INTERVAL 365 DAY) AS s365,
        MAX(o.ts) AS last_ts,
        COUNT(DISTINCT o.cds) AS kinds,
        MIN({'ts': o.ts, 'amount': o.amount}).amount AS first_amount
    FROM inst i JOIN o ON o.ts <= i.t
    GROUP BY i.t, o.customer_id
),
per AS (
    SELECT i.t, c.customer_id, c.first_order_date, a.c90, a.n, a.s365, a.last_ts, a.kinds, a.first_amount
    FROM inst i CROSS JOIN customers c
    LEFT JOIN agg a ON a.t = i.t AND a.customer_id = c.customer_id
)
SELECT t,
    COUNT(*) FILTER (WHERE c90 > 0) AS active,
    COUNT(*) FILTER (WHERE n >= 3) AS loyal,
    COUNT(*) FILTER (WHERE s365 > 100) AS big,
    COUNT(*) FILTER (WHERE n > 0 AND last_ts < t - INTERVAL 180 DAY) AS lapsed,
    COUNT(*) FILTER (WHERE kinds >= 3) AS varied,
    COUNT(*) FILTER (WHERE first_amount < 15) AS cheap_first,
    COUNT(*) FILTER (WHERE first_order_date >= CAST(t - INTERVAL 60 DAY AS DATE)) AS new_customer
FROM per GROUP BY t ORDER BY t
"""


def oracle(sql: str, at: list[dt.datetime], **tables: pa.Table) -> dict[str, list[int]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    naive = [a.astimezone(U).replace(tzinfo=None) for a in at]
    result = con.execute(sql, [naive]).to_arrow_table()
    con.close()
    assert [t.replace(tzinfo=U) for t in result.column("t").to_pylist()] == at
    return {name: result.column(name).to_pylist() for name in result.column_names if name != "t"}


def sizes(history: pa.Table) -> dict[str, list[int]]:
    return {name: history.column(name).to_pylist() for name in history.column_names if name != "as_of"}


@pytest.mark.parametrize(
    ("start", "every", "as_of"),
    [
        (dt.datetime(1997, 1, 5, tzinfo=U), "1w", dt.datetime(1997, 9, 30, tzinfo=U)),
        (dt.datetime(1997, 1, 31, tzinfo=U), "1m", dt.datetime(1998, 7, 1, tzinfo=U)),
        (dt.datetime(1997, 3, 1, 12, tzinfo=U), "2w", dt.datetime(1998, 6, 30, tzinfo=U)),
    ],
    ids=["weekly", "monthly from the 31st", "fortnightly at noon"],
)
def test_cdnow_sizes_match_duckdb(start: dt.datetime, every: str, as_of: dt.datetime) -> None:
    customers, orders = load_customers(), load_orders()
    program = segql.compile(CDNOW_SOURCE)
    history = program.history(
        customers, key="customer_id", related={"orders": orders}, start=start, every=every, as_of=as_of
    )
    at = history.column("as_of").to_pylist()
    assert at[0] == start and at[-1] <= as_of and len(at) >= 12
    expected = oracle(CDNOW_ORACLE, at, customers=customers, orders=orders)
    assert sizes(history) == expected
    # The sizes move: the incremental steps are exercised, not only the first instant.
    assert sum(len(set(v)) > 3 for v in expected.values()) >= 6


def test_monthly_steps_keep_the_day_of_the_start() -> None:
    at = instants(dt.datetime(1997, 1, 31, tzinfo=U), parse_every("1m"), dt.datetime(1997, 6, 1, tzinfo=U), "UTC")
    assert [a.date() for a in at] == [
        dt.date(1997, 1, 31), dt.date(1997, 2, 28), dt.date(1997, 3, 31), dt.date(1997, 4, 30), dt.date(1997, 5, 31)
    ]  # fmt: skip


def test_weekly_steps_follow_the_local_wall_clock_across_a_dst_change() -> None:
    # Monday 00:00 in Warsaw: 23:00 UTC the day before in winter, 22:00 in summer.
    start = dt.datetime(2026, 3, 15, 23, tzinfo=U)  # Monday 16 March 00:00 CET
    at = instants(start, parse_every("1w"), dt.datetime(2026, 4, 7, tzinfo=U), "Europe/Warsaw")
    assert at == [
        dt.datetime(2026, 3, 15, 23, tzinfo=U),
        dt.datetime(2026, 3, 22, 23, tzinfo=U),
        dt.datetime(2026, 3, 29, 22, tzinfo=U),  # after the change on 29 March: CEST
        dt.datetime(2026, 4, 5, 22, tzinfo=U),
    ]
    hourly = instants(start, parse_every("12h"), start + dt.timedelta(days=1), "Europe/Warsaw")
    assert hourly == [start, start + dt.timedelta(hours=12), start + dt.timedelta(hours=24)]
    assert parse_every(dt.timedelta(days=1)) == parse_every("24h")


def random_tables(seed: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    n, m = 300, 4000
    base = dt.datetime(2025, 1, 1, tzinfo=U)
    ts = [base + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 120, m)]
    ts_mask = rng.random(m) < 0.03
    amount = np.round(rng.gamma(2.0, 20.0, m), 1)
    amount[rng.random(m) < 0.02] = np.nan
    orders = pa.table(
        {
            "id": pa.array(rng.integers(0, n + 20, m)),  # some keys have no profile
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC"), mask=ts_mask),
            "amount": pa.array(amount, mask=rng.random(m) < 0.05),
            "channel": pa.array(rng.choice(["web", "app", "store"], m)),
        }
    )
    people = pa.table({"id": pa.array(np.arange(n)), "tier": pa.array(rng.integers(0, 3, n))})
    return people, orders


RANDOM_SOURCE = """\
events orders by ts
segment week_buyer = count(orders where ts >= -7d) >= 2
segment app_user = exists(orders where channel = "app" and ts >= -30d)
segment spender = sum(orders.amount where ts >= -20d) > 80
segment top_order = max(orders.amount) > 90
segment channels = count_distinct(orders.channel) = 3
segment with_nulls = count(orders.amount) >= 12
segment gold = tier = 2 and count(orders) >= 10
segment recent_max = max(orders.amount where ts >= -15d) > 70
segment recent_kinds = count_distinct(orders.channel where ts >= -10d) >= 2
segment settled = min(orders.ts where ts >= -30d) < -20d
segment late = last(orders.ts where channel = "web") >= -3d
"""

RANDOM_ORACLE = """
WITH inst AS (SELECT UNNEST(?::TIMESTAMP[]) AS t),
o AS (SELECT id, CAST(ts AS TIMESTAMP) AS ts, amount, channel FROM orders),
agg AS (
    SELECT i.t, o.id,
        COUNT(*) FILTER (WHERE o.ts >= i.t - INTERVAL 7 DAY) AS c7,
        COUNT(*) FILTER (WHERE o.channel = 'app' AND o.ts >= i.t - INTERVAL 30 DAY) AS app30,
        FSUM(o.amount) FILTER (WHERE o.ts >= i.t - INTERVAL 20 DAY) AS s20,
        MAX(o.amount) AS top,
        COUNT(DISTINCT o.channel) AS kinds,
        COUNT(o.amount) AS valued,
        COUNT(*) AS n,
        MAX(o.amount) FILTER (WHERE o.ts >= i.t - INTERVAL 15 DAY) AS max15,
        COUNT(DISTINCT o.channel) FILTER (WHERE o.ts >= i.t - INTERVAL 10 DAY) AS kinds10,
        MIN(o.ts) FILTER (WHERE o.ts >= i.t - INTERVAL 30 DAY) AS min30,
        MAX(o.ts) FILTER (WHERE o.channel = 'web') AS web_last
    FROM inst i JOIN o ON o.ts IS NULL OR o.ts <= i.t
    GROUP BY i.t, o.id
),
per AS (
    SELECT i.t, p.tier, a.* EXCLUDE (t, id) FROM inst i CROSS JOIN people p
    LEFT JOIN agg a ON a.t = i.t AND a.id = p.id
)
SELECT t,
    COUNT(*) FILTER (WHERE c7 >= 2) AS week_buyer,
    COUNT(*) FILTER (WHERE app30 > 0) AS app_user,
    COUNT(*) FILTER (WHERE s20 > 80 AND NOT ISNAN(s20)) AS spender,
    COUNT(*) FILTER (WHERE top > 90 AND NOT ISNAN(top)) AS top_order,
    COUNT(*) FILTER (WHERE kinds = 3) AS channels,
    COUNT(*) FILTER (WHERE valued >= 12) AS with_nulls,
    COUNT(*) FILTER (WHERE tier = 2 AND n >= 10) AS gold,
    COUNT(*) FILTER (WHERE max15 > 70 AND NOT ISNAN(max15)) AS recent_max,
    COUNT(*) FILTER (WHERE kinds10 >= 2) AS recent_kinds,
    COUNT(*) FILTER (WHERE min30 < t - INTERVAL 20 DAY) AS settled,
    COUNT(*) FILTER (WHERE web_last >= t - INTERVAL 3 DAY) AS late
FROM per GROUP BY t ORDER BY t
"""


@pytest.mark.parametrize("seed", range(3))
def test_random_tables_match_duckdb(seed: int) -> None:
    """Daily steps: NaN amounts (the greatest float for max, but NaN > 90 is false), null times
    (always visible), keys without a profile, null amounts."""
    people, orders = random_tables(seed)
    if seed == 2:  # string keys
        people = people.set_column(0, "id", people.column("id").cast(pa.string()))
        orders = orders.set_column(0, "id", orders.column("id").cast(pa.string()))
    program = segql.compile(RANDOM_SOURCE)
    start = dt.datetime(2025, 1, 3, 6, tzinfo=U)
    history = program.history(
        people, key="id", related={"orders": orders}, start=start, every="1d", as_of=dt.datetime(2025, 5, 5, tzinfo=U)
    )
    at = history.column("as_of").to_pylist()
    assert len(at) == 122
    assert sizes(history) == oracle(RANDOM_ORACLE, at, people=people, orders=orders)


OTHER_FORMS = """\
events orders by ts
events visits by ts
segment converted = sequence(visits where page = "pricing" then orders within 3d)
segment recent_days = sum(days_since(orders.ts) where ts >= -10d) > 20
segment second_by_amount = last(orders.channel by amount) = "app"
segment early = first(orders.ts) < -60d
segment median_big = median(orders.amount where ts >= -30d) > 40
segment no_cut_table = count(notes) > 1 and count(orders) > 1
"""


def test_other_forms_match_evaluate_at_every_instant() -> None:
    people, orders = random_tables(7)
    rng = np.random.default_rng(8)
    base = dt.datetime(2025, 1, 1, tzinfo=U)
    visits = pa.table(
        {
            "id": pa.array(rng.integers(0, 300, 3000)),
            "ts": pa.array([base + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 120, 3000)]),
            "page": pa.array(rng.choice(["pricing", "home"], 3000)),
        }
    )
    notes = pa.table({"id": pa.array(rng.integers(0, 300, 500))})
    related = {"orders": orders, "visits": visits, "notes": notes}
    program = segql.compile(OTHER_FORMS)
    history = program.history(
        people, key="id", related=related, start=base, every="5d", as_of=dt.datetime(2025, 5, 1, tzinfo=U)
    )
    got = sizes(history)
    for i, instant in enumerate(history.column("as_of").to_pylist()):
        out = program.evaluate(people, key="id", related=related, as_of=instant)
        for name in program.segments:
            assert got[name][i] == sum(out.column(name).to_pylist()), (name, instant)
    assert len(set(got["converted"])) > 3 and len(set(got["recent_days"])) > 3


def test_history_of_a_parquet_file_without_related_tables(tmp_path: Path) -> None:
    people = pa.table(
        {"id": [1, 2, 3], "signup": pa.array([dt.date(2026, 1, 10), dt.date(2026, 2, 10), dt.date(2026, 3, 1)])}
    )
    pq.write_table(people, tmp_path / "people.parquet")
    program = segql.compile("segment signed_up = signup <= today\nsegment new = signup between today - 30d and today")
    history = program.history(
        tmp_path / "people.parquet", start="2026-01-01", every="1m", as_of="2026-04-15", time_zone="Europe/Warsaw"
    )
    assert history.column_names == ["as_of", "signed_up", "new"]
    assert history.schema.field("as_of").type == pa.timestamp("us", tz="UTC")
    # start is 1 January 00:00 UTC, 01:00 in Warsaw; the months step Warsaw's wall clock,
    # so 1 April 01:00 is summer time (CEST): 31 March 23:00 UTC.
    assert history.column("as_of").to_pylist() == [
        dt.datetime(2026, 1, 1, tzinfo=U), dt.datetime(2026, 2, 1, tzinfo=U),
        dt.datetime(2026, 3, 1, tzinfo=U), dt.datetime(2026, 3, 31, 23, tzinfo=U),
    ]  # fmt: skip
    # today - 30d on 1 April (CEST) is 1 March 23:00 CET, whose local day is 1 March.
    assert sizes(history) == {"signed_up": [0, 1, 3, 3], "new": [0, 1, 2, 1]}
    assert history.schema.metadata[b"segql.history.every"] == b"1m"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": "0w"}, "is zero"),
        ({"every": "1 fortnight"}, "is not a duration"),
        ({"every": 7}, "must be a duration"),
        ({"every": dt.timedelta(minutes=90)}, "whole number of hours"),
        ({"start": "2027-01-01"}, "is after as_of"),
        ({"start": "1990-01-01", "every": "1h"}, "more than 10,000 instants"),
        ({"start": "yesterday"}, "not an ISO 8601"),
        ({"time_zone": "Europe/Warsow"}, "Europe/Warsaw"),
    ],
)
def test_bad_options_are_segql_errors(options: dict[str, object], message: str) -> None:
    program = segql.compile("segment a = x > 1")
    arguments: dict[str, object] = {"start": "2026-01-01", "every": "1w", "as_of": "2026-06-01"} | options
    with pytest.raises(segql.SegqlError) as info:
        program.history(pa.table({"x": [1, 2]}), **arguments)  # type: ignore[arg-type]
    text = str(info.value) + (info.value.hint or "")
    assert message in text, text


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "segql.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, encoding="utf-8", timeout=120, check=False)


def test_cli_history_chart_csv_and_files(tmp_path: Path) -> None:
    customers, orders = load_customers(), load_orders()
    pq.write_table(customers, tmp_path / "customers.parquet")
    pq.write_table(orders, tmp_path / "orders.parquet")
    source = tmp_path / "segments.segql"
    source.write_text(
        "events orders by ts\nsegment loyal = count(orders) >= 3\nsegment active = exists(orders where ts >= -90d)\n"
    )
    data = ["--data", str(tmp_path / "customers.parquet"), "--related", f"orders={tmp_path / 'orders.parquet'}"]
    common = [
        str(source),
        *data,
        "--key",
        "customer_id",
        "--start",
        "1997-01-01",
        "--every",
        "1m",
        "--as-of",
        "1998-06-30",
    ]
    expected = segql.compile(source.read_text()).history(
        customers, key="customer_id", related={"orders": orders}, start="1997-01-01", every="1m", as_of="1998-06-30"
    )
    pretty = run_cli("history", *common, "--format", "pretty")
    assert pretty.returncode == 0, pretty.stderr
    assert "loyal\n  1997-01-01" in pretty.stdout and "█" in pretty.stdout and "7,394" in pretty.stdout
    csv = run_cli("history", *common, "--format", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0] == "as_of,loyal,active" and len(lines) == 19
    assert lines[-1] == f"1998-06-01T00:00:00Z,{expected['loyal'][-1]},{expected['active'][-1]}"
    out = tmp_path / "sizes.parquet"
    written = run_cli("history", *common, "-o", str(out))
    assert written.returncode == 0 and "wrote 18 instants" in written.stderr
    assert pq.read_table(out).select(["loyal", "active"]).equals(expected.select(["loyal", "active"]))
    lines_json = run_cli("history", *common, "--format", "json").stdout.splitlines()
    assert json.loads(lines_json[0]) == {
        "as_of": "1997-01-01T00:00:00Z",
        "loyal": 0,
        "active": expected["active"][0].as_py(),
    }
    bad = run_cli("history", *common[:-4], "--every", "1 week", "--as-of", "1998-06-30", "-o", str(tmp_path / "x.csv"))
    assert bad.returncode != 0 and "is not a duration" in bad.stderr and not (tmp_path / "x.csv").exists()
