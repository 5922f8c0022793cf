"""A throwaway PostgreSQL server for the tests, and Arrow tables loaded into it.

``start()`` runs ``initdb`` and ``pg_ctl`` from the PostgreSQL binaries found
on the machine (``/usr/lib/postgresql/<version>/bin``, ``pg_config --bindir``
or ``PATH``) in a fresh temporary directory: no TCP port (a unix socket in
that directory), ``fsync=off``, UTF-8, session time zone UTC.  As root (CI
containers) ``initdb`` refuses to run, so the server runs as the ``postgres``
user (``runuser``).  ``Server.stop()`` stops it and removes the directory.

``load()`` copies an Arrow table into a (temporary) table with the types a
database user would choose: int64 -> bigint, float64 -> double precision (NaN
and infinities kept), string -> text, bool, date, timestamp with a time zone
-> timestamptz, without -> timestamp, decimal -> numeric(p, s), lists ->
arrays.  ``rows()`` reads a query's answer as the values ``plain()`` of
test_sql_backend.py makes of an Arrow column.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import math
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

EPOCH = dt.datetime(1970, 1, 1)
PORT = 5432
"""Only names the socket file: the server listens on no TCP port."""


class Unavailable(Exception):
    """No PostgreSQL server could be started here (the message says why)."""


def find_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0)
    )
    if candidates:
        return Path(candidates[-1]).parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise Unavailable("no PostgreSQL binaries (initdb) found: install PostgreSQL, e.g. apt-get install postgresql")


@dataclass
class Server:
    directory: Path
    bindir: Path
    prefix: list[str]

    @property
    def socket_dir(self) -> str:
        return str(self.directory)

    def connect(self, timezone: str = "UTC") -> Any:
        import psycopg

        con = psycopg.connect(
            host=self.socket_dir, port=PORT, user="postgres", dbname="postgres", autocommit=True, connect_timeout=10
        )
        con.execute(f"SET TimeZone = '{timezone}'")
        con.execute("SET IntervalStyle = 'iso_8601'")  # intervals read back as P1Y2M3DT4H5M6.000007S
        return con

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start() -> Server:
    """A running server, or ``Unavailable`` saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed: pip install 'psycopg[binary]' (in the test extra)") from None
    bindir = find_bindir()
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to run the server as") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root and there is no runuser to run the server as 'postgres'")
        prefix = [runuser, "-u", "postgres", "--"]
    # A short path: a unix socket's path has at most 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="segql-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    os.chmod(directory, 0o700)
    server = Server(directory, bindir, prefix)
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    initdb = [
        *prefix,
        str(bindir / "initdb"),
        "-D",
        str(directory / "data"),
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",  # lower/upper of non-ASCII letters as in Unicode; code point order
        "--no-sync",
    ]
    options = f"-c listen_addresses='' -c unix_socket_directories='{directory}' -p {PORT} -c fsync=off"
    options += " -c full_page_writes=off -c synchronous_commit=off -c max_connections=20"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "log")]
    try:
        for command in (initdb, [*pg_ctl, "-o", options, "-w", "-t", "60", "start"]):
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
            if done.returncode != 0:
                log = (directory / "log").read_text(errors="replace") if (directory / "log").exists() else ""
                raise Unavailable(f"{Path(command[len(prefix)]).name} failed: {done.stderr.strip()} {log.strip()}")
        server.connect().close()
    except (Unavailable, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        if isinstance(exc, Unavailable):
            raise
        raise Unavailable(f"the server did not start: {exc}") from None
    except Exception as exc:  # psycopg.OperationalError: the server does not answer
        server.stop()
        raise Unavailable(f"the server does not answer: {exc}") from None
    return server


# ------------------------------------------------------------------ loading
def pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        return pg_type(arrow_type.value_type)
    if pa.types.is_null(arrow_type):
        return "text"  # only nulls (e.g. pa.array(range(0))): any type holds them
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if arrow_type in (pa.int8(), pa.int16(), pa.uint8()):
        return "smallint"
    if arrow_type in (pa.int32(), pa.uint16()):
        return "integer"
    if arrow_type in (pa.int64(), pa.uint32()):
        return "bigint"
    if arrow_type == pa.uint64():
        return "numeric(20, 0)"
    if arrow_type in (pa.float16(), pa.float32()):
        return "real"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz is not None else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pg_type(arrow_type.value_type) + "[]"
    raise NotImplementedError(f"no PostgreSQL type for {arrow_type}")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _python_values(column: pa.ChunkedArray) -> list[object]:
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = t.value_type
    if pa.types.is_timestamp(t):
        # Microseconds (to_sql refuses nanosecond columns, so their sub-microseconds are never read);
        # an instant column as aware datetimes in UTC, a naive one as naive.
        micros = pc.cast(pc.cast(column, pa.timestamp(t.unit)), pa.timestamp("us"), safe=False)
        values = micros.to_pylist()
        if t.tz is not None:
            values = [None if v is None else v.replace(tzinfo=dt.UTC) for v in values]
        return values
    return column.to_pylist()


def load(con: Any, name: str, table: pa.Table, *, schema: str | None = None) -> None:
    """``table`` as the table ``name``: in ``schema``, or temporary (gone when ``con`` closes)."""
    columns = ", ".join(f"{quote(f.name)} {pg_type(f.type)}" for f in table.schema)
    target = quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"
    con.execute(f"CREATE {'TEMPORARY ' if schema is None else ''}TABLE {target} ({columns})")
    if not table.num_rows:
        return
    values = [_python_values(c) for c in table.columns]
    types = [_copy_type(pg_type(f.type)) for f in table.schema]
    names = ", ".join(quote(f.name) for f in table.schema)
    with con.cursor() as cur, cur.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in zip(*values):
            copy.write_row(row)


_COPY_NAMES = {
    "boolean": "bool",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "real": "float4",
    "double precision": "float8",
}


def _copy_type(name: str) -> str:
    """The name psycopg's binary COPY knows a column type by."""
    array = name.endswith("[]")
    base = re.sub(r"\(.*\)", "", name.removesuffix("[]")).strip()
    return _COPY_NAMES.get(base, base) + ("[]" if array else "")


# ------------------------------------------------------------------ reading
_ISO_INTERVAL = re.compile(
    r"^P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$"
)


def interval_value(text: str) -> tuple[int, int]:
    """An ISO 8601 interval (IntervalStyle iso_8601) as (months, microseconds)."""
    m = _ISO_INTERVAL.match(text)
    if m is None:
        raise ValueError(f"unexpected interval {text!r}")
    g = {k: v or "0" for k, v in m.groupdict().items()}
    months = int(g["y"]) * 12 + int(g["mo"])
    seconds = g["s"]
    sign = -1 if seconds.startswith("-") else 1
    whole, _, frac = seconds.lstrip("-").partition(".")
    micros = sign * (int(whole) * 1_000_000 + int((frac + "000000")[:6]))
    micros += ((int(g["d"]) * 24 + int(g["h"])) * 60 + int(g["mi"])) * 60_000_000
    return months, micros


def plain_value(value: object, type_name: str) -> object:
    """A value read from PostgreSQL as test_sql_backend.plain() writes Arrow's."""
    if value is None:
        return None
    if type_name == "interval":
        assert isinstance(value, str)
        return interval_value(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        delta = naive - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return value


def query(con: Any, sql: str) -> tuple[list[str], list[list[object]]]:
    """The column names and the columns (plain values) of ``sql``'s answer."""
    from psycopg.adapt import Loader

    class IntervalText(Loader):  # intervals as text: psycopg's timedelta folds months into days
        def load(self, data: Any) -> str:
            return bytes(data).decode()

    with con.cursor() as cur:
        cur.adapters.register_loader("interval", IntervalText)
        cur.execute(sql)
        assert cur.description is not None
        names = [d.name for d in cur.description]
        types = []
        for d in cur.description:
            info = con.adapters.types.get(d.type_code)
            types.append(info.name if info is not None else str(d.type_code))
        rows = cur.fetchall()
    columns = [[plain_value(row[i], types[i]) for row in rows] for i in range(len(names))]
    return names, columns


@contextlib.contextmanager
def session(server: Server, tables: dict[str, pa.Table], timezone: str = "UTC") -> Iterator[Any]:
    """A connection with ``tables`` loaded (temporary tables, gone afterwards)."""
    con = server.connect(timezone)
    try:
        for name, table in tables.items():
            load(con, name, table)
        yield con
    finally:
        con.close()
