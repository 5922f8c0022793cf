"""The engine boundary: what every engine receives, and what it implements.

``Program`` (the facade) checks and plans a program for the data's schema and
binds everything an evaluation needs ONCE into a frozen :class:`Bindings`: the
plan, the function registry, the instant, the parameters' values and types,
the key, the related sources and their schemas, the deadline and the time
zone.  An engine reads nothing else: it never sees ``Program``.

An engine implements the :class:`Engine` protocol: ``evaluate`` (data in,
result out), ``stream`` (batch by batch) and ``compile`` (one query text).
An engine that cannot do one of them says so with :func:`unsupported` (a
``SegqlError``), as sqlglot's generators do for what a dialect lacks.

The engines (docs/architecture.md, "Engines"):

* ``engines.arrow.engine.ArrowEngine``: vectorised evaluation with
  ``pyarrow.compute``, in memory (row slices in parallel) or streamed;
* ``engines.sql.engine.SqlEngine``: the plan as one SELECT in a SQL dialect;
* ``engines.spark.SparkEngine``: the SQL engine's Spark SQL over DataFrames.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import os
import reprlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs
import pyarrow as pa

from segql import ast
from segql.errors import CancelledError, DataError, ParameterError, SegqlError

if TYPE_CHECKING:
    from segql.check import CheckedProgram
    from segql.registry import FunctionRegistry
    from segql.types import SType

R_co = TypeVar("R_co", covariant=True)
"""How an engine holds a related table (an Arrow source, a schema, a Spark DataFrame)."""
R_contra = TypeVar("R_contra", contravariant=True)
D_contra = TypeVar("D_contra", contravariant=True)
"""The profile data an engine reads."""
O_co = TypeVar("O_co", covariant=True)
"""What an engine's ``evaluate`` returns."""

DEFAULT_BATCH_ROWS = 131_072
"""Rows per batch of a streamed evaluation, unless the caller says otherwise."""

DEFAULT_TIME_ZONE = "UTC"
"""segql's calendar when no ``time_zone=`` is given (LANGUAGE.md §9)."""


class Deadline:
    """Cooperative cancellation: engines call ``check()`` between operations."""

    def __init__(self, seconds: float | None = None, cancel: threading.Event | None = None) -> None:
        self.until = time.monotonic() + seconds if seconds is not None else None
        self.cancel = cancel

    def check(self) -> None:
        if self.cancel is not None:
            try:
                cancelled = bool(self.cancel.is_set())
            except Exception as exc:  # the host's cancel object failed
                raise ParameterError(f"cancel.is_set() raised {type(exc).__name__}: {exc}") from None
            if cancelled:
                raise CancelledError("evaluation was cancelled")
        if self.until is not None and time.monotonic() > self.until:
            raise CancelledError("evaluation ran past its deadline")


def check_threads(threads: Any) -> int | None:
    """``threads`` as the API takes it: an int ≥ 1, or None (one per core);
    anything else is a ParameterError."""
    if threads is None:
        return None
    try:
        if isinstance(threads, bool):
            raise TypeError
        count: int = operator.index(threads)
    except TypeError:
        raise ParameterError(
            f"threads must be a whole number ≥ 1 (or None: one per core), "
            f"not {type(threads).__name__} {reprlib.repr(threads)}",
            hint="e.g. threads=4; threads=1 evaluates on one thread",
        ) from None
    if count < 1:
        raise ParameterError(
            f"threads must be ≥ 1, not {count}", hint="threads=None uses every core; threads=1 one thread"
        )
    return count


def resolve_threads(threads: int | None) -> int:
    """The number of threads ``threads`` stands for (None: one per core)."""
    return threads if threads is not None else _cores()


@functools.cache
def _cores() -> int:
    """The machine's cores (``os.cpu_count``, 2 µs a call: asked once)."""
    return max(1, os.cpu_count() or 1)


@attrs.frozen(kw_only=True)
class Bindings(Generic[R_co]):
    """One evaluation, bound: everything an engine needs, made once by
    ``Program.bind`` (parameters validated, key checked, plan made for these
    schemas).  ``R_co`` is how the engine holds a related table."""

    plan: CheckedProgram
    """The checked, optimized plan for these schemas (``Program.plan``)."""
    functions: FunctionRegistry
    """The functions the plan calls (built-ins and packs)."""
    as_of: dt.datetime
    """The evaluation instant, an aware UTC datetime."""
    params: Mapping[str, pa.Scalar]
    """Bound parameter values (supplied or defaults), as Arrow scalars."""
    param_types: Mapping[str, SType]
    """The type of every parameter the program declares or uses."""
    key: str | None
    """The profile table's key column (needed with related tables)."""
    schema: pa.Schema
    """The profile table's Arrow schema."""
    related: Mapping[str, R_co]
    """The related tables, as the engine reads them."""
    related_schemas: Mapping[str, pa.Schema]
    """The related tables' Arrow schemas (the plan was checked against them)."""
    deadline: Deadline | None = None
    """Timeout and cancellation (None: neither)."""
    time_zone: str = DEFAULT_TIME_ZONE
    """The calendar's zone, an IANA name zoneinfo knows (checked by
    ``Program.bind``; segql.timezones): today, days, hours, weekdays, a date's
    first instant and timestamp literals without a zone are local to it."""
    depth: int = 0
    """Depth of the program's syntax tree: an engine recursing over the plan
    runs with stack room for it (``segql.stack.call_with_stack``)."""
    audit: Mapping[str, str] = attrs.field(factory=dict)
    """Metadata every result carries (segql.version, segql.as_of,
    segql.program_sha256, segql.packs)."""
    threads: int | None = None
    """How many threads the Arrow engine may use at once (None: one per core,
    ``os.cpu_count()``; 1: the caller's thread only).  Results are
    bit-identical for every value (docs/architecture.md, "Parallelism");
    the SQL and Spark engines ignore it."""

    def check_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.check()

    @property
    def workers(self) -> int:
        """``threads``, with None resolved to the number of cores."""
        return resolve_threads(self.threads)

    @property
    def aggregates(self) -> list[ast.Aggregate]:
        """Every aggregate node of the plan (with repeats), in plan order."""
        return self.plan.aggregates

    @property
    def sequences(self) -> list[ast.Sequence]:
        """Every sequence node of the plan (with repeats), in plan order."""
        return self.plan.sequences


@attrs.frozen(kw_only=True)
class QueryRequest:
    """What ``Engine.compile`` writes: one SELECT in ``dialect`` reading
    ``profile_table`` and each related table by ``related_tables`` (by its
    name in the program when absent)."""

    dialect: str = "duckdb"
    profile_table: str = "profiles"
    related_tables: Mapping[str, str] = attrs.field(factory=dict)
    row_order: Mapping[str, str] = attrs.field(factory=dict)
    """Deprecated and ignored (issue 17): ``first``/``last … by`` no longer
    depend on a row order (LANGUAGE.md §3, "Ties").  Kept for one release."""
    substitutions: Mapping[ast.Node, str] = attrs.field(factory=dict)
    """Sub-expressions the profile table already holds, as SQL (staged queries)."""
    all_profile_columns: bool = False
    """Keep every profile column (``p.*``) instead of the key alone."""


@attrs.frozen(kw_only=True)
class StreamRequest:
    """What ``Engine.stream`` yields: every row, or only ``members_of``'s
    members (an exact segment name of the plan), ``batch_rows`` at a time."""

    members_of: str | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS


@attrs.frozen
class Streamed:
    """A streamed evaluation: the result schema, the result batches (lazy),
    and counts the engine updates as batches are read (``read``,
    ``written``, ``batches``, and the pushed scan ``filter``)."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    counts: dict[str, Any]


def unsupported(engine: str, operation: str, hint: str | None = None) -> SegqlError:
    """The error of an engine asked for what it does not do."""
    return DataError(f"the {engine} engine does not {operation}", hint=hint)


class Engine(Protocol[D_contra, O_co, R_contra]):
    """An engine: a plan plus its bindings in, a result out.

    ``D_contra`` is the profile data it reads, ``O_co`` what ``evaluate``
    returns, ``R_contra`` how it holds a related table (``Bindings.related``).
    Subclass it to inherit the three operations as :func:`unsupported`, and
    override those the engine does."""

    name: str

    def evaluate(self, data: D_contra, bindings: Bindings[R_contra]) -> O_co:
        """Every segment and feature of ``bindings.plan`` over ``data``: the
        key column (if any), one boolean per segment, one column per feature."""
        raise unsupported(self.name, "evaluate programs")

    def stream(self, data: D_contra, bindings: Bindings[R_contra], request: StreamRequest) -> Streamed:
        """The rows of ``evaluate``, batch by batch, with bounded memory."""
        raise unsupported(self.name, "stream")

    def compile(self, bindings: Bindings[R_contra], request: QueryRequest) -> str:
        """The plan as one query a database runs (the text of ``to_sql``)."""
        raise unsupported(self.name, "write queries")
