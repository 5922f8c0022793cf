"""The ``segql`` command line: its arguments, and the command they name.

    segql demo                                  a bundled example, offline
    segql check FILE [--data PATH]              syntax, names and types (related tables' columns too)
    segql run FILE --data PATH [-o OUT]         every segment and feature
    segql count FILE --data PATH                segment sizes, shares and overlaps (--priority a,b: allocation)
    segql changes FILE --data PATH --since T    who entered and exited each segment (or --previous OLD)
    segql why FILE --data PATH --id ID          why one customer is (not) in a segment
    segql explain FILE [--data PATH]            the optimized plan (--counts: customers passing each clause)
    segql fmt FILE [--check | --diff]           canonical formatting
    segql plugins [PACK …] [--search WORD]      installed packs (--all: everything, --json)
    segql lsp                                   a language server over stdio, for editors
    segql serve FILE --data PATH                the web playground (segql serve --demo: on the demo)

Data files are read by extension: .parquet, .csv, .arrow/.feather/.ipc,
.jsonl/.ndjson; a folder or a glob is a dataset of such files (segql.cliio;
every command and flag: docs/cli.md).  Exit codes: 0 success, 1 a problem with the source, the data
or the parameters (reported with position and caret), 2 a usage or file error.

This module is what every start of the command imports: the standard
library and segql's light foundations only (no pyarrow, no pandas), so
``segql --version`` and ``--help`` answer at once and a mistyped flag costs
nothing (docs/decisions.md 226).  The commands themselves
(segql.commands) are imported once the arguments are parsed.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import io
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from segql import readahead
from segql.engines.sql.dialects import DIALECTS
from segql.errors import SegqlError, UsageError
from segql.suggest import reworded_for_command_line
from segql.version import __version__

__all__ = ["UsageError", "build_parser", "main"]

DEMO_FILE = "segql-demo.segql"
"""``segql serve --demo``'s segment file, in the current folder (docs/decisions.md 178; segql.commands uses it)."""


def add_data_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--data", required=required, metavar="PATH", help="profile table (.parquet .csv .arrow .jsonl)")
    p.add_argument(
        "--related", action="append", metavar="NAME=PATH", help="a related table, e.g. orders=orders.parquet"
    )
    p.add_argument("--key", metavar="COLUMN", help="the key column joining related tables (and naming --id)")
    p.add_argument(
        "--schema",
        action="append",
        metavar="NAME=TYPE",
        help="CSV column types: int float string bool date timestamp, e.g. zip=string (repeatable, or a,b)",
    )


def add_evaluation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", metavar="ISO", help="the instant relative times refer to (default: now, UTC)")
    p.add_argument(
        "--time-zone",
        metavar="ZONE",
        help="IANA time zone of calendar notions: today, days, hours, weekdays (default: UTC), e.g. Europe/Warsaw",
    )
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter value, e.g. min_spend=800")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr (errors and warnings still show)")


def thread_count(text: str) -> int:
    """``--threads N``: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads ≥ 1, got {value}")
    return value


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=thread_count,
        metavar="N",
        help="evaluate on at most N threads (default: one per core); the results are the same for every N",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segql",
        description="segql: customer segments in a small query language, evaluated on Apache Arrow.",
        epilog="Data: .parquet .csv .arrow/.feather/.ipc .jsonl/.ndjson files, folders or globs of them. "
        "Docs: docs/cli.md (every command and flag), docs/language.md",
    )
    parser.add_argument("--version", action="version", version=f"segql {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run a bundled example over generated customers (offline)")
    p.add_argument(
        "--source", action="store_true", help="print the segment file on stdout (the summary goes to stderr)"
    )

    p = sub.add_parser("check", help="check syntax, names and types (against data when given)")
    p.add_argument("file")
    add_data_options(p, required=False)
    add_evaluation_options(p)

    p = sub.add_parser("run", help="evaluate every segment and feature")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    p.add_argument("-o", "--output", metavar="OUT", help="write the result (.parquet .csv .arrow .jsonl)")
    p.add_argument("--format", choices=["pretty", "plain", "json", "csv"], help="stdout format (not with -o)")
    p.add_argument(
        "--limit", type=int, help="rows to print (default: 20 in the pretty format, all otherwise; not with -o)"
    )
    p.add_argument("--members-of", metavar="SEGMENT", help="only the rows of this segment's members")
    p.add_argument(
        "--engine",
        choices=["arrow", "spark"],
        default="arrow",
        help="arrow (in-process, default) or spark (a local Spark session; pip install 'segql[spark]')",
    )
    add_threads_option(p)

    p = sub.add_parser("count", help="segment sizes, shares and overlaps")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    p.add_argument("--format", choices=["pretty", "plain", "json", "csv"], help="output format")
    p.add_argument(
        "--priority",
        metavar="A,B,…",
        help="also allocate: each customer to the first of these segments it is in (sizes after exclusion)",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw the sizes and the overlap heatmap (.png .svg .pdf; pip install 'segql[plot]')",
    )
    add_threads_option(p)

    p = sub.add_parser("history", help="each segment's size at instants from --start every --every (a chart)")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    p.add_argument("--start", required=True, metavar="ISO", help="the first instant, e.g. 2026-01-01")
    p.add_argument(
        "--every", default="1w", metavar="DURATION", help="the step: 1d, 1w (default), 1m (a calendar month), 1y, 12h"
    )
    p.add_argument("-o", "--output", metavar="OUT", help="write the sizes (.csv .parquet .arrow .jsonl)")
    p.add_argument("--format", choices=["pretty", "plain", "json", "csv"], help="stdout format (pretty: a chart)")
    add_threads_option(p)

    p = sub.add_parser("changes", help="who entered and who exited each segment")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    since = p.add_mutually_exclusive_group(required=True)
    since.add_argument("--since", metavar="ISO", help="compare with the same data evaluated as of this instant")
    since.add_argument("--previous", metavar="OLD", help="compare with a stored result of segql run (.parquet …)")
    p.add_argument("--segments", metavar="A,B,…", help="compare only these segments")
    p.add_argument("-o", "--output", metavar="OUT", help="write the changes (.parquet .csv .arrow .jsonl)")
    p.add_argument("--format", choices=["pretty", "plain", "json", "csv"], help="stdout format")
    p.add_argument("--limit", type=int, help="rows to print (default: 20 on a terminal, all otherwise)")
    add_threads_option(p)

    p = sub.add_parser("why", help="why one customer is (or is not) in a segment")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    p.add_argument("--id", required=True, help="the customer's key value")
    p.add_argument("--segment", help="only this segment (default: all)")

    p = sub.add_parser("explain", help="the checked, optimized plan (--counts: customers passing each clause)")
    p.add_argument("file")
    add_data_options(p, required=False)
    add_evaluation_options(p)
    p.add_argument(
        "--counts",
        action="store_true",
        help="attrition: customers passing each clause of each segment's top-level and, cumulatively (needs --data)",
    )
    p.add_argument("--segment", metavar="NAME", help="with --counts: only this segment")
    p.add_argument("--format", choices=["pretty", "plain", "json", "csv"], help="with --counts: output format")

    p = sub.add_parser("sql", help="the program as one SQL query (duckdb, spark, postgres, bigquery, snowflake)")
    p.add_argument("file")
    add_data_options(p, required=True)
    add_evaluation_options(p)
    p.add_argument("--dialect", default="duckdb", choices=DIALECTS, help="SQL dialect (default: duckdb)")
    p.add_argument("--table", default="profiles", metavar="NAME", help="the profile table's name in SQL")
    p.add_argument(
        "--row-order",
        action="append",
        metavar="TABLE=COLUMN",
        help="deprecated and ignored: first/last … by break ties by the value, not by row order",
    )

    p = sub.add_parser("fmt", help="canonical formatting (rewrites the file)")
    p.add_argument("file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if the file is not formatted; change nothing")
    group.add_argument("--diff", action="store_true", help="print the changes as a diff; change nothing")

    p = sub.add_parser("plugins", help="installed packs: functions, segments, conventions")
    p.add_argument("packs", nargs="*", metavar="PACK", help="list everything of these packs (e.g. ecommerce)")
    p.add_argument("-s", "--search", metavar="WORD", help="only functions, segments, features, conventions naming WORD")
    p.add_argument("--all", action="store_true", help="list everything of every pack")
    p.add_argument("--json", action="store_true", help="machine-readable output (every pack unless filtered)")

    p = sub.add_parser(
        "serve", help="the web playground: edit segments, see counts as you type (pip install 'segql[serve]')"
    )
    p.add_argument("file", nargs="?", help="the segment file the page edits (and saves to)")
    add_data_options(p, required=False)
    add_evaluation_options(p)
    p.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8765, help="the port (default: 8765; 0: a free one)")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long one evaluation may run before it is stopped (default: 10)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help=f"the bundled demo: its customers and orders, its segment file copied to ./{DEMO_FILE}",
    )

    p = sub.add_parser("lsp", help="a language server for editors, over stdin/stdout (docs/editors.md)")
    p.add_argument(
        "--stdio", action="store_true", help="accepted for editors that pass it; stdio is the only transport"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the console script: the process is the command's
        freeze_at_exit()
        prefer_jemalloc()
        one_blas_thread()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    # A termination request (kill, a scheduler's timeout) unwinds like Ctrl-C,
    # so a half-written output's temporary file is removed (segql.output).
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        read_ahead(args)
        commands = load_commands(freeze=argv is None)
        result: int = commands.run(args)
        return result
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except SegqlError as exc:
        print(f"error: {reworded_for_command_line(exc)}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.  Whatever is
        # still buffered for stdout goes nowhere (no "Exception ignored" at exit).
        _discard_stdout()
        return 0
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        readahead.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


READ_AHEAD_COMMANDS = frozenset({"count", "run", "changes"})
"""The commands whose Parquet files are read ahead while they start (segql.readahead)."""


def read_ahead(args: argparse.Namespace) -> None:
    """Start reading ahead the Parquet files of a command that evaluates
    them in process on more than one thread (segql.readahead), before the
    commands and pyarrow load: the other core decodes while this one loads
    and compiles."""
    if args.command not in READ_AHEAD_COMMANDS or getattr(args, "engine", "arrow") != "arrow":
        return
    threads = getattr(args, "threads", None)
    if (threads if threads is not None else os.cpu_count() or 1) < 2:
        return
    related = [item.partition("=")[2] for item in args.related or [] if "=" in item]
    readahead.start(args.data, args.key, related, args.file)


_FREEZING: list[bool] = []


def freeze_at_exit() -> None:
    """At the interpreter's exit, before its last collections, move every
    object to the collector's permanent generation (``gc.freeze``, once per
    process): the exit then does not walk the ~100,000 objects of pyarrow,
    pandas and the engine to find no garbage, 70 ms of a 1 s ``segql count``
    (docs/decisions.md 284).  Only for the console script (``main()`` without
    arguments): a program calling ``main`` with arguments keeps Python's exit."""
    if not _FREEZING:
        _FREEZING.append(True)
        atexit.register(gc.freeze)


def prefer_jemalloc() -> None:
    """Arrow's jemalloc allocator for the console script's process, on Linux
    x86-64 (where pyarrow's wheels carry it), unless ``ARROW_DEFAULT_MEMORY_POOL``
    is set already or pyarrow is loaded (Arrow reads that variable when
    pyarrow loads, and so do the commands' child processes).
    Arrow's default, mimalloc, keeps the pages of the buffers a command
    decodes and frees: ``segql count`` over 2M customers and 8M orders peaked
    at 405-430 MB with it and 350 MB with jemalloc, as fast (docs/decisions.md 283).

    jemalloc then keeps one arena per core (``narenas``, unless
    ``JE_ARROW_MALLOC_CONF`` is set): its default, four per core, gave the
    threads that decode a pass's row groups (started per row group, docs/decisions.md
    325) other arenas than those whose pages the previous pass freed, and the
    2M-customer ``count`` peaked at 300 MB instead of 269 MB."""
    if (
        sys.platform == "linux"
        and os.uname().machine == "x86_64"
        and "pyarrow" not in sys.modules
        and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ
    ):
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
        os.environ.setdefault("JE_ARROW_MALLOC_CONF", f"narenas:{os.cpu_count() or 1}")


def one_blas_thread() -> None:
    """One thread for the BLAS library NumPy loads, in the console script's
    process, unless ``OPENBLAS_NUM_THREADS`` is set already or NumPy is
    loaded.  segql and its packs make no BLAS call; OpenBLAS still starts a
    thread per core when NumPy loads, and those threads spent ~0.1 s of CPU
    of each ``segql count`` beside the imports (docs/decisions.md 317)."""
    if "numpy" not in sys.modules and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def load_commands(freeze: bool = False) -> Any:
    """segql.commands, imported only now that the arguments are good (with it
    pyarrow, pandas and the engine: docs/decisions.md 226), without Python's
    cyclic garbage collector: the imports leave some 70,000 objects it
    tracks, none of them garbage, and collecting while they are made cost
    40 ms of the 0.4 s of CPU they take (docs/decisions.md 234).

    With ``freeze`` (the console script, whose process is the command's)
    those objects then go to the collector's permanent generation
    (``gc.freeze``): left in its youngest generation, the first two
    collections after the imports walked all of them, 37-46 ms on the
    command's critical path (docs/decisions.md 323).  A host that calls
    :func:`main` itself keeps its collector as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        from segql import commands
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
    return commands


def _discard_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def __getattr__(name: str) -> Any:
    """The commands' names (``segql.cli.read_table``, ``render_table``…), as
    before they moved to segql.commands, loaded when first asked for."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(load_commands(), name)
    except AttributeError:
        raise AttributeError(f"module 'segql.cli' has no attribute {name!r}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
