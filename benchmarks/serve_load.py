"""Load test of ``segql serve``: concurrent clients typing against a big table.

    python benchmarks/serve_load.py                          # 2M customers, 20 clients, 60 s
    python benchmarks/serve_load.py --customers 20000 --clients 3 --seconds 3 --json

Generates (once, cached as Parquet under ``--data-dir``) a customer table and
an orders table (benchmarks/generate.py), starts the real command line
(``python -m segql.cli serve … --port 0``) as a subprocess, reads the URL it
prints, then runs ``--clients`` clients for ``--seconds`` seconds.  Each client
is a marketer typing in the page: it edits a numeric threshold and a country
code of its own copy of the segment file one character at a time (every
intermediate text is a valid program), in bursts of keystrokes 80-250 ms apart
followed by a pause; every keystroke sends ``/api/diagnostics``; once a
burst has been left alone for the debounce (300 ms) one ``/api/counts`` goes
out with the client's own ``client`` id, without waiting for the one before
(the server cancels the one it supersedes, as for the page).

Reported: requests sent and answered, errors (anything but a 200 or a
cancelled answer: a timeout, a 5xx, a refused connection; must be 0),
cancelled (superseded) counts, answered counts checked against DuckDB SQL
written by hand (``--check`` of them; none may differ), the latency of answered counts (p50, p95,
max) and of diagnostics, throughput, and the server's resident memory (after
loading, the largest seen during the run, and its high-water mark VmHWM from
/proc), and the server's exit code after SIGINT (must be 0).  Figures on a
loaded machine say little; the run says where they were taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

DEBOUNCE = 0.3
AS_OF = "2026-11-01"
TEMPLATE = """\
# A marketer's segments: the thresholds and the country are being edited.
segment adults "Adults over a chosen age" = age >= {age}
segment big_spenders = amount_spent > {spend} and country = "{country}"
segment recent = last_login >= 2026-10-01 and city = "Berlin"
segment buyers = count(orders) >= {orders}
"""
LETTERS = "PLDEFRUSGBCZNIT"


# ------------------------------------------------------------------ the data
def data_files(folder: Path, customers: int) -> tuple[Path, Path]:
    """customers-N.parquet and orders-N.parquet (as many orders as customers), made once."""
    folder.mkdir(parents=True, exist_ok=True)
    people, orders = folder / f"customers-{customers}.parquet", folder / f"orders-{customers}.parquet"
    if not (people.exists() and orders.exists()):
        table = generate.customers(customers)
        for path, data in ((people, table), (orders, generate.orders(table.column("customer_id"), n=customers))):
            part = path.with_suffix(".partial")
            pq.write_table(data, part)
            part.replace(path)
    return people, orders


# ---------------------------------------------------------------- the server
def start_server(args: argparse.Namespace, people: Path, orders: Path, segments: Path) -> tuple[Any, str]:
    """``segql serve`` as a subprocess; its URL, read from its stdout."""
    command = [
        sys.executable,
        "-m",
        "segql.cli",
        "serve",
        str(segments),
        *generate.cli_data_args(people, orders, AS_OF),
        "--port",
        "0",
        "--timeout",
        str(args.timeout),
        "-q",
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(server.stdout.readline() if server.stdout else ""))
    reader.start()
    reader.join(args.start_timeout)
    if not lines or not lines[0].startswith("http"):
        server.kill()
        _, err = server.communicate()
        raise SystemExit(f"segql serve did not start: {err.strip()[-2000:]}")
    return server, lines[0].strip()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes (Linux /proc)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


# ---------------------------------------------------------------- the clients
class Document:
    """A client's segment file, edited one keystroke at a time."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.fields = {
            "age": str(rng.randint(2, 6)),
            "spend": str(rng.randint(1, 9) * 100),
            "country": rng.choice(["PL", "DE", "FR"]),
            "orders": str(rng.randint(1, 4)),
        }

    def text(self) -> str:
        return TEMPLATE.format(**self.fields)

    def keystroke(self, field: str) -> None:
        value = self.fields[field]
        if field == "country":
            erase = len(value) == 2 or (value != "" and self.rng.random() < 0.5)
            self.fields[field] = value[:-1] if erase else value + self.rng.choice(LETTERS)
        else:
            erase = len(value) >= 4 or (len(value) > 1 and self.rng.random() < 0.5)
            self.fields[field] = value[:-1] if erase else value + str(self.rng.randint(0, 9))


class Stats:
    def __init__(self) -> None:
        self.sent = {"counts": 0, "diagnostics": 0}
        self.answered = {"counts": 0, "diagnostics": 0}
        self.latency: dict[str, list[float]] = {"counts": [], "diagnostics": []}
        self.cancelled = 0
        self.counted: list[tuple[dict[str, str], dict[str, int]]] = []
        self.errors = 0
        self.samples: list[str] = []

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(what[:300])


async def post(
    http: httpx.AsyncClient, kind: str, body: dict[str, Any], stats: Stats, fields: dict[str, str] | None = None
) -> None:
    stats.sent[kind] += 1
    started = time.perf_counter()
    try:
        answer = await http.post(f"/api/{kind}", json=body)
    except httpx.HTTPError as exc:
        stats.error(f"{kind}: {type(exc).__name__}: {exc}")
        return
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        stats.error(f"{kind}: HTTP {answer.status_code}: {answer.text}")
        return
    stats.answered[kind] += 1
    if kind == "counts":
        found = answer.json()
        if found.get("cancelled"):
            stats.cancelled += 1
            return
        if not isinstance(found.get("sizes"), dict) or len(found["sizes"]) != 4:
            stats.error(f"counts: unexpected answer {found}")
            return
        stats.counted.append((dict(fields or {}), found["sizes"]))
    stats.latency[kind].append(seconds)


async def typist(number: int, url: str, until: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed * 1000 + number)
    doc = Document(rng)
    tasks: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=6)  # as a browser, per host
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        request = 0
        await asyncio.sleep(rng.uniform(0, 1))
        while time.monotonic() < until:
            field = rng.choice(list(doc.fields))
            for _ in range(rng.randint(1, 5)):
                doc.keystroke(field)
                tasks.add(asyncio.create_task(post(http, "diagnostics", {"source": doc.text()}, stats)))
                await asyncio.sleep(rng.uniform(0.08, 0.25))  # the next key comes before the debounce
            await asyncio.sleep(DEBOUNCE)
            request += 1
            body = {"source": doc.text(), "client": f"typist-{number}", "request_id": request}
            tasks.add(asyncio.create_task(post(http, "counts", body, stats, dict(doc.fields))))
            # Reading the count, thinking (the run's end cuts the pause short).
            await asyncio.sleep(max(0.0, min(rng.uniform(0.2, 2.0), until - time.monotonic())))
            tasks = {t for t in tasks if not t.done()}
        await asyncio.gather(*tasks)


async def load(url: str, args: argparse.Namespace, stats: Stats, pid: int) -> dict[str, int]:
    until = time.monotonic() + args.seconds
    peak = {"rss": 0}

    async def watch() -> None:
        while True:
            peak["rss"] = max(peak["rss"], memory(pid).get("VmRSS", 0))
            await asyncio.sleep(0.25)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(typist(i, url, until, stats, args.seed) for i in range(args.clients)))
    watcher.cancel()
    return peak


REFERENCE = """
select count(*) filter (where age >= {age}),
       count(*) filter (where amount_spent > {spend} and country = '{country}'),
       count(*) filter (where last_login >= timestamptz '2026-10-01 00:00:00+00' and city = 'Berlin'),
       (select count(*) from (select customer_id from read_parquet('{orders_file}')
                              group by customer_id having count(*) >= {orders}))
from read_parquet('{people_file}')
"""
"""The four segments of TEMPLATE, in DuckDB SQL written by hand."""


def wrong_answers(counted: list[tuple[dict[str, str], dict[str, int]]], people: Path, orders: Path, sample: int) -> int:
    """How many of (up to ``sample``) answered counts differ from DuckDB's."""
    rng = random.Random(0)
    chosen = rng.sample(counted, min(sample, len(counted)))
    wrong = 0
    with duckdb.connect() as con:
        for fields, sizes in chosen:
            sql = REFERENCE.format(**fields, people_file=people, orders_file=orders)
            expected = dict(zip(["adults", "big_spenders", "recent", "buyers"], con.execute(sql).fetchone() or ()))
            wrong += expected != sizes
    return wrong


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def milliseconds(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="the server's --timeout")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "segql-serve-load")
    parser.add_argument("--start-timeout", type=float, default=120.0, help="seconds to wait for the server's URL")
    parser.add_argument("--check", type=int, default=50, help="answered counts checked against DuckDB SQL")
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    args = parser.parse_args(argv)

    people, orders = data_files(args.data_dir, args.customers)
    segments = args.data_dir / f"load-{os.getpid()}.segql"
    segments.write_text(Document(random.Random(args.seed)).text(), encoding="utf-8")
    started = time.perf_counter()
    server, url = start_server(args, people, orders, segments)
    ready = time.perf_counter() - started
    try:
        loaded = memory(server.pid)
        stats = Stats()
        began = time.perf_counter()
        peak = asyncio.run(load(url, args, stats, server.pid))
        elapsed = time.perf_counter() - began
        final = memory(server.pid)
        wrong = wrong_answers(stats.counted, people, orders, args.check)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
        segments.unlink(missing_ok=True)
    sent = sum(stats.sent.values())
    counts = stats.latency["counts"]
    report = {
        "customers": args.customers,
        "orders": args.customers,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "server_ready_s": round(ready, 2),
        "requests": {"sent": sent, **{k: v for k, v in stats.sent.items()}},
        "answered": stats.answered,
        "errors": stats.errors,
        "error_samples": stats.samples,
        "cancelled_counts": stats.cancelled,
        "checked_counts": min(args.check, len(stats.counted)),
        "wrong_counts": wrong,
        "count_latency_ms": {
            "answered": len(counts),
            "p50": milliseconds(statistics.median(counts) if counts else None),
            "p95": milliseconds(percentile(counts, 0.95)),
            "max": milliseconds(max(counts, default=None)),
        },
        "diagnostics_latency_ms": {
            "p50": milliseconds(percentile(stats.latency["diagnostics"], 0.5)),
            "p95": milliseconds(percentile(stats.latency["diagnostics"], 0.95)),
        },
        "throughput_per_s": {
            "requests": round(sum(stats.answered.values()) / elapsed, 1),
            "counts": round(len(counts) / elapsed, 1),
        },
        "server_memory_mb": {
            "after_loading": round(loaded.get("VmRSS", 0) / 2**20),
            "peak_during_run": round(peak["rss"] / 2**20),
            "at_end": round(final.get("VmRSS", 0) / 2**20),
            "high_water_mark": round(final.get("VmHWM", 0) / 2**20),
        },
        "server_exit_code": server.returncode,
        "server_stderr": err.strip()[-1000:],
    }
    if args.json:
        print(json.dumps(report))
    else:
        lat = report["count_latency_ms"]
        mem = report["server_memory_mb"]
        print(
            f"segql serve under load: {args.customers:,} customers and orders, {args.clients} clients, {elapsed:.0f} s"
        )
        print(f"  machine: {os.cpu_count()} cpus, load average {report['load_average_1m']} (noisy if loaded)")
        print(f"  requests: {sent:,} sent ({stats.sent['counts']:,} counts, {stats.sent['diagnostics']:,} diagnostics)")
        print(f"  errors: {stats.errors}" + (f"  e.g. {stats.samples[0]}" if stats.samples else ""))
        print(f"  counts: {len(counts):,} answered, {stats.cancelled:,} cancelled (superseded)")
        print(f"  checked against DuckDB: {report['checked_counts']} answered counts, {wrong} wrong")
        print(f"  count latency: p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms")
        dl = report["diagnostics_latency_ms"]
        print(f"  diagnostics latency: p50 {dl['p50']} ms, p95 {dl['p95']} ms")
        tp = report["throughput_per_s"]
        print(f"  throughput: {tp['requests']} requests/s, {tp['counts']} counts/s")
        print(
            f"  server memory: {mem['after_loading']} MB after loading, {mem['peak_during_run']} MB peak during the "
            f"run, VmHWM {mem['high_water_mark']} MB"
        )
        print(f"  server exit code after SIGINT: {server.returncode}")
    return 0 if stats.errors == 0 and wrong == 0 and server.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
