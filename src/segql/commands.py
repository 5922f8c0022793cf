"""The ``segql`` command line's commands: segql.cli parses the arguments
(importing nothing heavy), then calls :func:`run`, which runs the command
they name (``cmd_<name>``).  What each does: segql.cli, docs/cli.md."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import io
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

import segql
from segql import ast
from segql.changes import segment_names
from segql.cliio import (
    READERS,
    SMALL_INPUT_ROWS,
    Progress,
    Stdout,
    UsageError,
    cell,
    check_utf8,
    count_rows,
    csv_rows_text,
    discover,
    file_format,
    not_utf8,
    parse_schema,
    write_file,
    write_rows,
)
from segql.csvinput import schema_for
from segql.errors import DataError, SegqlError
from segql.output import atomic_output, same_path_error
from segql.params import Duration, bind_params
from segql.parse import calendar_hint, parse
from segql.program import resolve_as_of
from segql.report import Counts, plot_format, render_table, require_matplotlib
from segql.span import NO_SPAN
from segql.suggest import did_you_mean, reworded_for_command_line, suggest
from segql.timezones import check_time_zone

__all__ = ["READERS", "UsageError", "cell", "check_utf8", "file_format", "not_utf8", "render_table", "run"]
"""(Names that moved to segql.cliio, kept importable from here and from segql.cli.)"""


def run(args: argparse.Namespace) -> int:
    """The command ``args`` name (parsed by segql.cli.build_parser), its
    exit code; errors propagate to segql.cli.main, which reports them."""
    global QUIET, SCHEMA
    QUIET = bool(getattr(args, "quiet", False))
    SCHEMA = parse_schema(getattr(args, "schema", None))
    command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    return command(args)


# ---------------------------------------------------------------- data files
SCHEMA: dict[str, str] = {}
"""``--schema``: CSV column types, ``NAME`` for the profile's columns and
``TABLE.NAME`` for a related table's (set by main; segql.csvinput)."""


def read_table(path: str, table: str | None = None) -> pa.Table:
    """A data file, folder or glob, read whole (segql.cliio); CSV columns
    typed by ``--schema`` (those of related table ``table``, or the profile's)."""
    return discover(path).read(schema_for(SCHEMA, table))


def write_table(table: pa.Table, path: str, key: str | None = None) -> None:
    """Write the whole file or nothing (segql.output): a temporary beside
    ``path``, renamed onto it once complete.  CSV in segql's one rendering
    (segql.cliio.csv_bytes), the same bytes as ``--format csv`` on stdout.
    ``key``: the column of customer ids (segql.cliio.write_file)."""
    write_file(table.to_batches(), table.schema, path, key=key)


def refuse_output_over_input(output: str, inputs: Sequence[tuple[str, Any]]) -> None:
    """A usage error when writing ``output`` would overwrite an input."""
    clash = same_path_error(output, inputs)
    if clash is not None:
        raise UsageError(f"{clash}; writing it would destroy the input (choose another -o)")


def check_output(args: argparse.Namespace, more: Sequence[tuple[str, Any]] = ()) -> None:
    """Before any work: ``-o``'s extension is known and the file is none of
    the inputs (the segment file, --data, the related tables, ``more``)."""
    if not args.output:
        return
    file_format(args.output)
    refuse_output_over_input(args.output, [*named_inputs(args), *more])


def named_inputs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The segment file, --data and the related tables, as given, named for messages."""
    related = [spec.partition("=") for spec in args.related or []]
    return [
        ("the segment file", args.file),
        ("--data", args.data),
        *((f"related table '{name}'", path) for name, _, path in related if path),
    ]


def related_sources(specs: Sequence[str]) -> dict[str, Any]:
    """``name=path`` pairs; Parquet and Arrow inputs (files, folders, globs) are
    read lazily (needed columns only)."""
    out: dict[str, Any] = {}
    for spec in specs:
        name, path = _related_spec(spec)
        out[name] = lazy_table(path, what=f"--related {name}", table=name)
    return out


def parse_param(spec: str) -> tuple[str, Any]:
    """``name=value``: the value is read as a segql constant (42, 2.5, "x", true,
    2024-12-24, 30d, ["PL", "DE"]); anything else is taken as text."""
    name, sep, text = spec.partition("=")
    if not sep or not name:
        raise UsageError(f"--param takes NAME=VALUE, got {spec!r}")
    return name, constant_value(text)


def constant_value(text: str) -> Any:
    try:
        tree = parse(text)
    except SegqlError:
        return text
    expr = tree.decls[0].expr if tree.bare else None  # type: ignore[attr-defined]

    def value(node: Any) -> Any:
        if isinstance(node, ast.Literal):
            return node.value
        if isinstance(node, ast.DurationLiteral):
            return Duration(node.months, node.micros)
        if isinstance(node, ast.ListLiteral):
            return [value(i) for i in node.items]
        raise ValueError

    try:
        return value(expr)
    except ValueError:
        return text


# ------------------------------------------------------------------- output
def emit_rows(header: list[str], rows: list[list[Any]], fmt: str, out: io.TextIOBase | Any) -> None:
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(header, row)), default=str, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        out.write(csv_rows_text(header, rows))
    else:
        numeric = {i for i, v in enumerate(rows[0]) if isinstance(v, (int, float))} if rows else set()
        out.write(render_table([[cell(v) for v in row] for row in rows], header, fmt == "pretty", numeric))


def output_format(requested: str | None) -> str:
    if requested:
        return requested
    return "pretty" if sys.stdout.isatty() else "plain"


QUIET = False
"""``--quiet``: no progress on stderr (set by main)."""


PHASE_DELAY = 10.0
"""Off a terminal, a phase without row counts is reported once it has run this long."""


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A phase on stderr while it runs (segql.cliio.Progress): on a terminal
    one line with the seconds so far, erased at the end; off a terminal a
    line only when the phase runs long; nothing with ``--quiet``."""
    with Progress(quiet=QUIET, delay=PHASE_DELAY, interval=PHASE_DELAY) as shown:
        shown.set_phase(message)
        yield


# ------------------------------------------------------------------ commands
def read_source(path: str) -> str:
    """A segment file's text (UTF-8)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, data, exc.start) from None


def load_program(path: str, host: segql.PluginHost | None = None) -> segql.Program:
    return segql.compile(read_source(path), source_name=path, plugins=host)


def evaluation_options(args: argparse.Namespace, program: segql.Program) -> dict[str, Any]:
    """The evaluation keywords of the command line's options; ``--param``
    values read for ``program``'s declared types (_check_params)."""
    options: dict[str, Any] = {}
    related = related_sources(args.related or [])
    if related:
        if not args.key:
            raise UsageError("--key is needed with --related (the column joining the tables)")
        options["related"] = related
    if args.key:
        options["key"] = args.key
    if args.as_of:
        options["as_of"] = args.as_of
    if args.time_zone:
        options["time_zone"] = args.time_zone
    params = _check_params(args.param or [], program.params)
    if params:
        options["params"] = params
    if getattr(args, "threads", None) is not None:
        options["threads"] = args.threads
    return options


def cmd_check(args: argparse.Namespace) -> int:
    """Syntax, names and types; against ``--data`` (and the related tables:
    ``--related``, or a file named after the table beside ``--data``) when
    given; ``--param``, ``--as-of``, ``--time-zone`` and ``--key`` checked too.
    What could not be checked is said (docs/decisions.md 150–151)."""
    try:
        return _check_command(args)
    except SegqlError as exc:
        raise reworded_for_command_line(exc) from None


def _check_command(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    infos = program.params
    supplied = _check_params(args.param or [], infos)
    # Only the values given are checked (a parameter without one is no mistake
    # of the file): every declared parameter gets a stand-in default.
    declared = {n: (i.type, True, NO_SPAN) for n, i in infos.items() if i.declared}
    used = {n: NO_SPAN for n, i in infos.items() if not i.declared and n in supplied}
    try:
        _, param_types = bind_params(supplied, declared, used)  # type: ignore[arg-type]
        as_of = resolve_as_of(args.as_of) if args.as_of else None
        if args.time_zone:
            check_time_zone(args.time_zone)
    except SegqlError as exc:
        raise exc.with_source(program.source, args.file) from None
    checked: list[str] = []
    missing: list[str] = []
    if args.data:
        schema = schema_of(args.data)
        checked.append(args.data)
        given = dict(_related_spec(spec) for spec in args.related or [])
        used_tables = sorted(_plan(program, schema, None, param_types).related_columns)
        paths = {name: given.get(name) or _beside(args.data, name) for name in used_tables}
        found = {name: path for name, path in paths.items() if path is not None}
        absent = [name for name in used_tables if name not in found]
        if absent:
            # The checker knows the related tables all or none: none are checked.
            missing += [f"the columns of related table '{n}' (give --related {n}=PATH)" for n in absent]
            missing += [f"the columns of related table '{n}' ({p}): every table is needed" for n, p in found.items()]
            found = {}
        checked += [f"{n}={p}" + ("" if n in given else " (found beside the data)") for n, p in found.items()]
        unused = sorted(set(given) - set(used_tables))
        if unused:
            missing.append(f"--related {', '.join(unused)}: the file uses no such table")
        related_schemas = {name: schema_of(path, name) for name, path in found.items()}
        _plan(program, schema, related_schemas if not absent else None, param_types)
        if args.key:
            if args.key not in schema.names:
                raise DataError(
                    f"key column '{args.key}' is not in {args.data}", hint=did_you_mean(suggest(args.key, schema.names))
                )
            sources = related_sources([f"{n}={p}" for n, p in found.items()])
            program.check(schema, related=sources or None, key=args.key)
        elif used_tables:
            missing.append("the key joining the related tables (give --key COLUMN)")
    else:
        missing.append("column names and types (give --data PATH)")
    for name, info in infos.items():
        if not info.declared and name not in supplied:
            missing.append(f"the type of ${name}, which is not declared (give --param {name}=VALUE, or declare it)")
    what = f"{len(program.segments)} segments, {len(program.features)} features"
    against = f", checked against {', '.join(checked)}" if checked else ""
    when = f", as of {as_of.isoformat()}" if as_of else ""
    values = f", with --param {', '.join(supplied)}" if supplied else ""
    print(f"{args.file}: ok ({what}){against}{when}{values}")
    for item in missing:
        print(f"  not checked: {item}")
    return 0


def _check_params(specs: Sequence[str], infos: dict[str, Any]) -> dict[str, Any]:
    """``--param`` values; a parameter declared string takes the text as
    written (``--param zip=02134``), and a date that does not exist is said so."""
    out: dict[str, Any] = {}
    for spec in specs:
        name, value = parse_param(spec)
        declared = next((i.type for n, i in infos.items() if n.lower() == name.lower() and i.declared), None)
        text = spec.partition("=")[2]
        if declared is not None and declared.kind == "string":
            value = text
        elif declared is not None and declared.kind in ("date", "timestamp") and isinstance(value, str):
            problem = calendar_hint(text, "")
            if problem:
                raise UsageError(f"--param {name}={text}: {problem}")
        out[name] = value
    return out


def _related_spec(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"--related takes NAME=PATH, got {spec!r}")
    return name, path


def _beside(data: str, table: str) -> str | None:
    """A data file named after a related table in the directory of ``data``
    (orders.parquet beside customers.parquet), the first by READERS' order."""
    folder = Path(data).parent
    for suffix in READERS:
        candidate = folder / f"{table}{suffix}"
        if candidate.is_file():
            return str(candidate)
    return None


def _plan(program: segql.Program, schema: pa.Schema, related: dict[str, pa.Schema] | None, types: Any) -> Any:
    try:
        return program.plan(schema, related, types)
    except SegqlError as exc:
        raise exc.with_source(program.source, program.source_name) from None


def refuse_ignored(args: argparse.Namespace, *flags: str) -> None:
    """A usage error for flags that would be ignored: ``--format``/``--limit``
    shape stdout, and with ``-o`` nothing is printed there."""
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit takes a number of rows (0 or more), got {limit}")
    if not getattr(args, "output", None):
        return
    given = [flag for flag in flags if getattr(args, flag.lstrip("-").replace("-", "_"), None) is not None]
    if given:
        raise UsageError(
            f"{' and '.join(given)} {'shape' if len(given) > 1 else 'shapes'} what is printed, and -o {args.output} "
            "prints nothing: drop -o to print, or drop " + " and ".join(given)
        )


def cmd_run(args: argparse.Namespace) -> int:
    refuse_ignored(args, "--format", "--limit")
    check_output(args)
    program = load_program(args.file)
    options = evaluation_options(args, program)
    members_of = None
    if args.members_of is not None:  # checked before any data is read
        members_of = segment_names([args.members_of], program.segments, program.features, "--members-of")[0]
    if args.engine == "spark":
        warn_without_key(options)
        out = run_on_spark(program, args.data, options)
        if members_of is not None:
            out = out.filter(out.column(members_of))
        batches: Any = out.to_batches()
        result_schema, total = out.schema, out.num_rows
        return emit_result(batches, result_schema, args, total, Progress(quiet=True))
    data = lazy_table(args.data)
    if args.output:
        refuse_output_over_input(args.output, discovered_inputs(args))
    warn_without_key(options)
    related_rows = {name: count_rows(table) for name, table in options.get("related", {}).items()}
    size = count_rows(data)
    sizes = [size, *related_rows.values()]
    small = all(n is not None for n in sizes) and sum(n or 0 for n in sizes) <= SMALL_INPUT_ROWS
    total = None if members_of else size
    shown = Progress(total=total, label="members" if members_of else "rows", quiet=QUIET, small=small)
    with shown:
        if related_rows:
            sized = (name if rows is None else f"{name} ({rows:,} rows)" for name, rows in related_rows.items())
            shown.set_phase("reading " + ", ".join(sized))
        else:
            shown.set_phase(f"evaluating {len(program.segments)} segments")
        reader = program.stream(data, members_of=members_of, **options)
        return emit_result(shown.track(reader), reader.schema, args, total, shown)


def discovered_inputs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The files (and folders) behind --data and --related, globs expanded."""
    found = [("--data", discover(args.data))]
    for spec in args.related or []:
        name, _, path = spec.partition("=")
        found.append((f"related table '{name}'", discover(path, f"--related {name}")))
    return [(what, path) for what, i in found for path in (*i.files, *([i.folder] if i.folder else []))]


def warn_without_key(options: dict[str, Any]) -> None:
    """Run without --key writes no id column: say so (once the inputs are found)."""
    if "key" not in options:
        print(
            "warning: no --key: the result has no id column, so it can be joined back to the customers only by "
            "row order; give --key COLUMN (the customers' id) to include it",
            file=sys.stderr,
        )


def emit_result(batches: Any, schema: pa.Schema, args: argparse.Namespace, total: int | None, shown: Progress) -> int:
    """Run's result, batch by batch: to ``-o`` (whole or nothing), or to stdout."""
    if args.output:
        rows = write_file(batches, schema, args.output, key=getattr(args, "key", None))
        shown.close()
        print(f"wrote {rows:,} rows × {len(schema)} columns to {args.output}", file=sys.stderr)
        return 0
    stream_rows(batches, schema, args, total, shown)
    return 0


def stream_rows(batches: Any, schema: pa.Schema, args: argparse.Namespace, total: int | None, shown: Progress) -> None:
    """Rows on stdout as they come, in ``--format``, the first ``--limit``
    (20 in the pretty format by default); how many more there are on stderr.
    Evaluation stops once the limit is reached."""
    fmt = output_format(args.format)
    limit = args.limit if args.limit is not None else (20 if fmt == "pretty" else None)
    before = shown.close if sys.stdout.isatty() else (lambda: None)
    written = write_rows(batches, schema, fmt, Stdout(), limit, before_output=before)
    shown.close()
    if written.more:
        left = f"{total - written.rows:,} more rows" if total is not None else "more rows"
        print(f"… {left} (use -o FILE to save all, or --limit)", file=sys.stderr)


def run_on_spark(program: segql.Program, data: str, options: dict[str, Any]) -> pa.Table:
    """The program on a local Spark session (segql.spark); the result is
    collected, to be printed or written like the Arrow engine's."""
    import segql.spark

    with progress("starting Spark (local)"):
        session = segql.spark.local_session()

    def frame(source: Any) -> Any:
        if isinstance(source, str):
            source = lazy_table(source)
        if isinstance(source, ds.FileSystemDataset) and isinstance(source.format, ds.ParquetFileFormat):
            return session.read.parquet(*source.files)  # Spark reads the files itself
        if not isinstance(source, pa.Table):
            source = source.to_table()  # an Arrow IPC dataset
        return session.createDataFrame(source)

    options.pop("threads", None)  # Spark schedules its own work
    try:
        related = {name: frame(source) for name, source in options.pop("related", {}).items()}
        with progress(f"evaluating {len(program.segments)} segments on Spark"):
            df = segql.spark.evaluate(program, frame(data), related=related or None, **options)
            out = df.toArrow()
    except (SegqlError, UsageError):
        raise
    except Exception as exc:  # Spark's own errors (a missing file, an overflow while computing)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"Spark: {first_line}") from None
    # Spark does not keep the input's row order: rows come sorted by the key.
    return out.sort_by(options["key"]) if options.get("key") else out


def cmd_count(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    priority = None
    if args.priority is not None:
        # Checked before the data is read: a typo costs nothing.
        priority = segment_names(name_list(args.priority, "--priority"), program.segments, program.features, "priority")
    if args.plot:
        check_plot_path(args)
    with progress(f"reading {args.data}"):
        data = lazy_table(args.data)
    options = evaluation_options(args, program)
    with progress(f"counting {len(program.segments)} segments"):
        counts = program.counts(data, priority=priority, **options)
    print_counts(counts, priority, output_format(args.format))
    if args.plot:
        counts.save_plot(args.plot)
        print(f"wrote the plot to {args.plot}", file=sys.stderr)
    return 0


def check_plot_path(args: argparse.Namespace) -> None:
    """Before any work: ``--plot`` names a .png/.svg/.pdf that is none of the
    inputs, and matplotlib is there to draw it."""
    try:
        plot_format(args.plot)
    except SegqlError as exc:
        raise UsageError(f"--plot {exc.message}" + (f"; {exc.hint}" if exc.hint else "")) from None
    clash = same_path_error(args.plot, named_inputs(args))
    if clash is not None:
        raise UsageError(f"{clash}; writing it would destroy the input (choose another --plot)")
    require_matplotlib()


def print_counts(counts: Counts, priority: list[str] | None, fmt: str) -> None:
    """``segql count``'s report: sizes and shares, overlaps, the allocation.
    The pretty format adds descriptions and thousands separators; plain,
    json and csv are for programs (docs/decisions.md 108)."""
    total = counts.rows
    names = counts.segments
    sizes = counts.sizes
    overlap = counts.overlap
    allocated = counts.allocation or {}
    unallocated = counts.unallocated or 0

    def share(count: int) -> str:
        return f"{count / total:.1%}" if total else "-"

    if fmt == "json":
        report: dict[str, Any] = {"rows": total, "segments": sizes, "shares": counts.shares, "overlap": overlap}
        if priority is not None:
            report["allocation"] = {
                "priority": priority,
                "members": allocated,
                "shares": {n: (c / total if total else None) for n, c in allocated.items()},
                "none": unallocated,
                "none_share": unallocated / total if total else None,
            }
        print(json.dumps(report, ensure_ascii=False))
        return
    if fmt == "csv":
        # One table: the allocated columns are empty for segments outside the
        # priority list; the last row (empty segment) counts rows in none.
        header = ["segment", "members", "share"]
        rows: list[list[Any]] = [[n, sizes[n], share(sizes[n])] for n in names]
        if priority is not None:
            header += ["allocated", "allocated_share"]
            rows = [[*r, allocated.get(r[0]), share(allocated[r[0]]) if r[0] in allocated else None] for r in rows]
            rows.append([None, None, None, unallocated, share(unallocated)])
        emit_rows(header, rows, fmt, sys.stdout)
        return

    def table(header: list[str], body: list[list[Any]], numbers: int) -> None:
        """Columns 1..``numbers`` hold counts and shares."""
        if fmt != "pretty":
            emit_rows(header, body, fmt, sys.stdout)
            return
        # Thousands separators; counts and shares right-aligned.
        text = [[f"{v:,}" if isinstance(v, int) else cell(v) for v in row] for row in body]
        sys.stdout.write(render_table(text, header, True, set(range(1, numbers + 1))))

    described = fmt == "pretty" and any(counts.descriptions.get(n) for n in names)
    sizes_header = ["segment", "members", "share", *(["description"] if described else [])]
    sizes_rows = [
        [n, sizes[n], share(sizes[n]), *([" ".join((counts.descriptions.get(n) or "").split())] if described else [])]
        for n in names
    ]
    table(sizes_header, sizes_rows, 2)
    if len(names) >= 2:
        print()
        print(f"overlap (customers in both; {total:,} rows)")
        table(["", *names], [[a, *(overlap[a][b] for b in names)] for a in names], len(names))
    if priority is not None:
        print()
        print(f"allocation (each customer in the first of {', '.join(priority)} it is in; {total:,} rows)")
        body = [[n, allocated[n], share(allocated[n])] for n in priority]
        table(["segment", "members", "share"], [*body, ["(none)", unallocated, share(unallocated)]], 2)


def cmd_history(args: argparse.Namespace) -> int:
    refuse_ignored(args, "--format")
    check_output(args)
    program = load_program(args.file)
    options = evaluation_options(args, program)
    with progress(f"reading {args.data}"):
        data = lazy_table(args.data)
    with progress(f"counting {len(program.segments)} segments from {args.start} every {args.every}"):
        out = program.history(data, start=args.start, every=args.every, **options)
    if args.output:
        write_table(out, args.output)
        print(f"wrote {out.num_rows:,} instants × {len(program.segments)} segments to {args.output}", file=sys.stderr)
        return 0
    fmt = output_format(args.format)
    names = program.segments
    instants = [i.isoformat().replace("+00:00", "Z") for i in out.column("as_of").to_pylist()]
    counts = {name: out.column(name).to_pylist() for name in names}
    rows = [[when, *(counts[n][i] for n in names)] for i, when in enumerate(instants)]
    if fmt == "pretty":
        rows = [[when, *(f"{counts[n][i]:,}" for n in names)] for i, when in enumerate(instants)]
        sys.stdout.write(render_table(rows, ["as_of", *names], True, set(range(1, len(names) + 1))))
        # The chart's labels: days, or days and times when the instants are not all midnights.
        midnights = all(i.endswith("T00:00:00Z") for i in instants)
        labels = [i[:10] if midnights else i[:16].replace("T", " ") for i in instants]
        for name in names:
            sys.stdout.write("\n" + bar_chart(name, labels, counts[name]))
        return 0
    emit_rows(["as_of", *names], rows, fmt, sys.stdout)
    return 0


BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar_chart(title: str, labels: list[str], values: list[int]) -> str:
    """One horizontal bar per value, scaled to the largest (eighths of a character)."""
    largest = max(values, default=0)
    lines = [title]
    for label, value in zip(labels, values, strict=True):
        eighths = round(value * BAR_WIDTH * 8 / largest) if largest else 0
        bar = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
        lines.append(f"  {label}  {bar.ljust(BAR_WIDTH)}  {value:,}")
    return "\n".join(lines) + "\n"


def name_list(text: str, option: str) -> list[str]:
    """``a,b,c`` as names (spaces around commas ignored)."""
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise UsageError(f"{option} takes segment names separated by commas, got {text!r}")
    return names


def cmd_changes(args: argparse.Namespace) -> int:
    data_path = args.data
    refuse_ignored(args, "--format", "--limit")
    check_output(args, [("--previous", args.previous)] if args.previous else [])
    if not args.key:
        raise UsageError("--key is needed: changes name each customer by its key")
    program = load_program(args.file)
    options = evaluation_options(args, program)
    segments = name_list(args.segments, "--segments") if args.segments else None
    data = lazy_table(data_path)
    previous = lazy_table(args.previous, what="--previous") if args.previous else None
    with progress("comparing memberships"):
        out = program.changes(data, since=args.since, previous=previous, segments=segments, **options)
    meta = out.schema.metadata or {}
    earlier = meta.get(b"segql.since", b"").decode("utf-8", "replace")
    since = earlier if args.since else args.previous + (f" (as of {earlier})" if earlier else "")
    as_of = meta.get(b"segql.as_of", b"?").decode("utf-8", "replace")
    summary = out.group_by(["segment", "change"]).aggregate([([], "count_all")]).to_pylist()
    found = {(row["segment"], row["change"]): row["count_all"] for row in summary}
    chosen = program.segments if segments is None else segment_names(segments, program.segments, [], "segments")
    compared = [s for s in program.segments if s in chosen]
    print(f"{out.num_rows:,} changes from {since} to {as_of}", file=sys.stderr)
    table = [[n, found.get((n, "entered"), 0), found.get((n, "exited"), 0)] for n in compared]
    emit_rows(["segment", "entered", "exited"], table, "plain", sys.stderr)
    if args.output:
        write_table(out, args.output, key=args.key)
        print(f"wrote {out.num_rows:,} rows to {args.output}", file=sys.stderr)
        return 0
    print_rows(out, args)
    return 0


def print_rows(out: pa.Table, args: argparse.Namespace) -> None:
    """``out`` on stdout in ``--format``, the first ``--limit`` rows (20 in
    the pretty format by default), and how many more there are on stderr."""
    stream_rows(out.to_batches(), out.schema, args, out.num_rows, Progress(quiet=True))


def lazy_table(path: str, what: str = "--data", table: str | None = None) -> Any:
    """A Parquet or Arrow file, folder or glob as a dataset (read batch by
    batch); another format, read (segql.cliio; CSV typed as read_table says)."""
    return discover(path, what).lazy(schema_for(SCHEMA, table))


def cmd_why(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    data = read_table(args.data)
    options = evaluation_options(args, program)
    if "key" not in options:
        raise UsageError("--key is needed: the column that holds --id")
    text = program.why(
        data,
        key=options.pop("key"),
        id=args.id,
        segment=args.segment,
        related=options.get("related"),
        as_of=options.get("as_of"),
        params=options.get("params"),
        time_zone=options.get("time_zone"),
    )
    sys.stdout.write(text)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    if args.counts:
        return explain_counts(program, args)
    given = {"--segment": args.segment, "--format": args.format, "--as-of": args.as_of}
    given |= {"--time-zone": args.time_zone, "--param": args.param}
    for flag, value in given.items():
        if value:
            raise UsageError(f"{flag} is used only with --counts (the plan does not depend on it)")
    if args.data:
        text = program.explain(schema_of(args.data), related=related_sources(args.related or []) or None)
    else:
        text = program.explain()
    sys.stdout.write(text)
    return 0


def explain_counts(program: segql.Program, args: argparse.Namespace) -> int:
    """``explain --counts``: each segment's attrition, clause by clause (segql.report)."""
    if not args.data:
        raise UsageError("--counts needs --data (the customers to count)")
    with progress(f"reading {args.data}"):
        data = lazy_table(args.data)
    options = evaluation_options(args, program)
    with progress("counting each clause"):
        attrition = program.attrition(data, args.segment, **options)
    fmt = output_format(args.format)
    if fmt in ("json", "csv"):
        table = attrition.to_arrow()
        emit_rows(table.column_names, [list(row.values()) for row in table.to_pylist()], fmt, sys.stdout)
        return 0
    if fmt == "plain":
        sys.stdout.write(attrition.text(separators=False))
        return 0
    for i, name in enumerate(attrition.segments):
        print(("\n" if i else "") + attrition.title(name))
        sys.stdout.write(render_table(attrition.cells(name), list(attrition.HEADER), True, {0, 2, 3, 4}))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    program = load_program(args.file)
    options = evaluation_options(args, program)
    related = {name: schema_of(obj) for name, obj in options.pop("related", {}).items()}
    # --row-order is accepted and ignored (deprecated: first/last … by need no row order).
    text = program.to_sql(
        args.dialect,
        schema=schema_of(args.data),
        related=related or None,
        profile_table=args.table,
        **options,
    )
    print(text)
    return 0


def schema_of(data: Any, table: str | None = None) -> pa.Schema:
    """The schema of a table, or of a data file, folder or glob (Parquet,
    Arrow: from the files' footers, no rows read; CSV typed as read_table says)."""
    if not isinstance(data, str):
        return data.schema  # a table or a dataset
    schema: pa.Schema = lazy_table(data, table=table).schema
    return schema


def cmd_fmt(args: argparse.Namespace) -> int:
    from segql.format import format_source

    source = read_source(args.file)
    try:
        formatted = format_source(source)
    except SegqlError as exc:
        raise exc.with_source(source, args.file) from None
    if formatted == source:
        print(f"{args.file}: already formatted", file=sys.stderr)
        return 0
    if args.diff:
        sys.stdout.writelines(
            difflib.unified_diff(
                source.splitlines(keepends=True), formatted.splitlines(keepends=True), args.file, args.file
            )
        )
    if args.check or args.diff:
        print(f"{args.file}: would be reformatted", file=sys.stderr)
        return 1
    try:
        with atomic_output(args.file) as temporary:
            Path(temporary).write_text(formatted, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{args.file}: could not write: {exc.strerror or exc}") from None
    print(f"{args.file}: reformatted", file=sys.stderr)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """Installed packs.  By default one line per pack; ``PACK …`` or ``--all``
    list every function, declaration and convention; ``--search WORD`` only
    the entries whose name or description holds WORD (docs/decisions.md 153)."""
    host = segql.PluginHost()
    packs: list[dict[str, Any]] = []
    for name, info in sorted(host.packs.items()):
        functions = [f for f in host.functions if f.pack == name]
        packs.append(
            {
                "name": name,
                "version": info.version,
                "origin": info.origin,
                "ok": info.ok,
                "error": info.error.message if info.error else None,
                "functions": [{"name": f.name, "signature": f.signature(), "doc": f.doc} for f in functions],
                "library": [
                    {"name": e.name, "kind": e.kind, "description": e.description}
                    for e in host.library
                    if e.pack == name
                ],
                "conventions": [{"name": c.name, "kind": c.kind, "doc": c.doc} for c in host.conventions.of(name)],
            }
        )
    if args.packs:
        known = {p["name"].lower(): p for p in packs}
        for wanted in args.packs:
            if wanted.lower() not in known:
                close = suggest(wanted, [p["name"] for p in packs])
                raise UsageError(
                    f"no pack '{wanted}'"
                    + (f"; did you mean '{close}'?" if close else f"; installed: {', '.join(p['name'] for p in packs)}")
                )
        packs = [known[w.lower()] for w in dict.fromkeys(args.packs)]
    if args.search is not None:
        packs = [_matching(pack, args.search) for pack in packs]
        packs = [pack for pack in packs if pack["functions"] or pack["library"] or pack["conventions"]]
    if args.json:
        print(json.dumps(packs, indent=2, ensure_ascii=False))
        return 0
    if args.search is not None and not packs:
        print(f"nothing matches '{args.search}'", file=sys.stderr)
        return 1
    full = args.all or bool(args.packs) or args.search is not None
    for pack in packs:
        status = "ok" if pack["ok"] else f"FAILED: {pack['error']}"
        version = f" {pack['version']}" if pack["version"] else ""
        if not full:
            print(f"{pack['name']}{version} ({pack['origin']}): {status}{_pack_summary(pack)}")
            continue
        print(f"{pack['name']}{version} ({pack['origin']}): {status}")
        for fn in pack["functions"]:
            print(f"  {fn['signature']}")
        for entry in pack["library"]:
            desc = f"  — {entry['description']}" if entry["description"] else ""
            print(f"  {entry['kind']} {entry['name']}{desc}")
        for conv in pack["conventions"]:
            print(f"  convention {conv['kind']} {conv['name']}: {conv['doc']}")
        print()
    if not full:
        print()
        print("segql plugins PACK (everything of one pack), --search WORD (functions, segments, conventions), --all")
    return 0


def _pack_summary(pack: dict[str, Any]) -> str:
    """`` — 4 functions, 9 segments, 4 features, 6 conventions`` (the kinds a pack has)."""
    counts = {
        "function": len(pack["functions"]),
        "segment": sum(e["kind"] == "segment" for e in pack["library"]),
        "feature": sum(e["kind"] == "feature" for e in pack["library"]),
        "convention": len(pack["conventions"]),
    }
    parts = [f"{n:,} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items() if n]
    return f" — {', '.join(parts)}" if parts else ""


def _matching(pack: dict[str, Any], word: str) -> dict[str, Any]:
    """``pack`` with only the entries whose name, signature or text holds
    ``word`` (case-insensitive)."""
    needle = word.lower()

    def hit(*texts: str | None) -> bool:
        return any(needle in (t or "").lower() for t in texts)

    return {
        **pack,
        "functions": [f for f in pack["functions"] if hit(f["name"], f["doc"])],
        "library": [e for e in pack["library"] if hit(e["name"], e["description"])],
        "conventions": [c for c in pack["conventions"] if hit(c["name"], c["doc"])],
    }


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo's summary; with ``--source`` the segment file alone goes to
    stdout (``segql demo --source > demo.segql`` is a valid file) and the
    summary to stderr (docs/decisions.md 144)."""
    from segql import demo

    source = demo.source()
    out_stream = sys.stderr if args.source else sys.stdout
    if args.source:
        sys.stdout.write(source)
        sys.stdout.flush()
    program = segql.compile(source, source_name="demo/customers.segql")
    customers = demo.customers()
    orders = demo.orders(customers)
    out = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=demo.AS_OF)
    total = out.num_rows
    print(
        f"segql demo: {total:,} generated customers with {orders.num_rows:,} orders, "
        f"as of {demo.AS_OF.date().isoformat()}",
        file=out_stream,
    )
    print(f"segment file: {len(program.segments)} segments, {len(program.features)} features", file=out_stream)
    print(file=out_stream)
    descriptions = program.descriptions
    rows = []
    for name in program.segments:
        count = int(pc.sum(out.column(name)).as_py() or 0)
        rows.append([name, count, f"{count / total:.1%}", descriptions.get(name) or ""])
    fmt = output_format(None) if not args.source else ("pretty" if sys.stderr.isatty() else "plain")
    emit_rows(["segment", "members", "share", "description"], rows, fmt, out_stream)
    print(file=out_stream)
    if args.source:
        print("The segment file is on stdout: segql demo --source > demo.segql", file=out_stream)
    else:
        print("Next: segql demo --source > demo.segql (the segment file), segql --help (every command)")
    return 0


DEMO_FILE = "segql-demo.segql"
"""``segql serve --demo``'s segment file, in the current folder (docs/decisions.md 178)."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace) -> int:
    """The web playground on a local server (segql.serve.server): the URL on
    stdout once it listens, then serving until Ctrl+C (exit 0).  The data is
    read once; the segment file is the one file the page may write
    (docs/decisions.md 176-185)."""
    try:
        from segql.serve import app, server
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("starlette", "uvicorn", "anyio", "h11"):
            raise UsageError(
                'segql serve needs the web server libraries starlette and uvicorn: pip install "segql[serve]"'
            ) from None
        raise
    timeout = app.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    if not 0 < timeout < float("inf"):
        raise UsageError(f"--timeout takes a number of seconds above 0, got {args.timeout}")
    if args.demo:
        given = {"FILE": args.file, "--data": args.data, "--related": args.related, "--key": args.key}
        extra = [flag for flag, value in {**given, "--schema": args.schema}.items() if value]
        if extra:
            raise UsageError(f"--demo brings its own segment file and data: drop {', '.join(extra)}")
    elif not args.file:
        raise UsageError("serve needs a segment file: segql serve FILE.segql --data PATH (or segql serve --demo)")
    elif not args.data:
        raise UsageError("--data is needed: the customers to count (or segql serve --demo for the bundled demo)")
    if args.related and not args.key:
        raise UsageError("--key is needed with --related (the column joining the tables)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port takes a port number from 0 to 65535 (0: a free one), got {args.port}")
    if args.as_of:
        resolve_as_of(args.as_of)
    if args.time_zone:
        check_time_zone(args.time_zone)
    params = None if args.demo else param_values(args, args.file)
    try:
        sock = server.bind(args.host, args.port)
    except OSError as exc:
        raise UsageError(bind_error(args.host, args.port, exc)) from None
    with sock:
        # The demo's file is written once the address is ours: a refused --port leaves nothing behind.
        path = demo_file() if args.demo else args.file
        if params is None:
            params = param_values(args, path)
        workspace = serve_workspace(args, app.Workspace, path, params, timeout)
        if args.host not in LOOPBACK:
            print(
                f"warning: --host {args.host}: anyone who can reach this machine can read the data and overwrite "
                f"{path}",
                file=sys.stderr,
            )
        if not os.access(path, os.W_OK) or not os.access(Path(path).resolve().parent, os.W_OK):
            print(f"warning: {path} is not writable: saving from the page will fail", file=sys.stderr)
        if workspace.key is None:
            print("warning: no --key: the preview, why and downloads of ids need the key column", file=sys.stderr)

        def ready(url: str) -> None:
            if not QUIET:
                tables = "".join(f", {n} ({t.num_rows:,} rows)" for n, t in workspace.related.items())
                print(
                    f"segql serve: {path} over {workspace.profile.num_rows:,} customers{tables}; Ctrl+C stops",
                    file=sys.stderr,
                )
            print(url, flush=True)

        server.run(workspace, args.host, sock=sock, ready=ready)
    return 0


def param_values(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """``--param`` values, read for the types the segment file declares; a
    file with errors still serves (the page shows them), its values then read
    without declared types.  The file must be there and be UTF-8."""
    source = read_source(path)
    try:
        infos = segql.compile(source, source_name=path).params
    except SegqlError:
        infos = {}
    return _check_params(args.param or [], infos)


def demo_file() -> str:
    """``./segql-demo.segql``: the demo's segment file, written once (whole,
    segql.output) and kept: a later ``segql serve --demo`` opens it with the
    edits saved from the page."""
    from segql import demo

    path = Path(DEMO_FILE)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise UsageError(f"{DEMO_FILE} is in the way (not a file): remove it, or run from another folder")
        print(
            f"segql serve --demo: {DEMO_FILE} exists: opening it as it is (delete it for a fresh copy)", file=sys.stderr
        )
        return DEMO_FILE
    try:
        with atomic_output(path) as temporary:
            Path(temporary).write_text(demo.source(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"could not write {DEMO_FILE} here ({exc.strerror or exc}): run segql serve --demo from a folder you "
            "can write to"
        ) from None
    print(f"segql serve --demo: wrote the demo's segment file to {DEMO_FILE}", file=sys.stderr)
    return DEMO_FILE


def serve_workspace(args: argparse.Namespace, workspace: Any, path: str, params: dict[str, Any], timeout: float) -> Any:
    """The playground's workspace: the demo's data, or --data and the related
    tables read whole, once (CSV typed by --schema)."""
    options = dict(params=params, time_zone=args.time_zone, timeout=timeout)
    if args.demo:
        from segql import demo

        customers = demo.customers()
        orders = demo.orders(customers)
        as_of = args.as_of or demo.AS_OF
        return workspace(path, customers, {"orders": orders}, key="customer_id", as_of=as_of, **options)
    with progress(f"reading {args.data}"):
        profile = read_table(args.data)
        related = {name: read_table(p, name) for name, p in map(_related_spec, args.related or [])}
    if args.key and args.key not in profile.column_names:
        raise DataError(
            f"key column '{args.key}' is not in {args.data}", hint=did_you_mean(suggest(args.key, profile.column_names))
        )
    return workspace(path, profile, related, key=args.key, as_of=args.as_of, **options)


def bind_error(host: str, port: int, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"--host {host}: no such address ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use (another segql serve?): choose another --port, or --port 0 for a free one"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} on {host}: permission denied (ports below 1024 need privileges): choose another --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def cmd_lsp(args: argparse.Namespace) -> int:
    """The language server over stdin/stdout (docs/editors.md); pygls is an optional dependency."""
    try:
        from segql import lsp
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("pygls", "lsprotocol"):
            raise SegqlError(
                "segql lsp needs the language server library pygls", hint='pip install "segql[lsp]"'
            ) from None
        raise
    lsp.serve()
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "check": cmd_check,
    "run": cmd_run,
    "count": cmd_count,
    "history": cmd_history,
    "changes": cmd_changes,
    "why": cmd_why,
    "explain": cmd_explain,
    "sql": cmd_sql,
    "fmt": cmd_fmt,
    "plugins": cmd_plugins,
    "serve": cmd_serve,
    "lsp": cmd_lsp,
}
"""Each subcommand of segql.cli.build_parser, by name."""
