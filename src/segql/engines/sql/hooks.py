"""The SQL side of a function's declaration: how the writer calls a
function's ``sql=`` implementation, and the typed interface that
implementation sees (``SqlContext``).  Built-in functions and packs use the
same hook (docs/plugins.md, "SQL").

A ``sql=`` implementation is called with the SQL text of each argument
(positionally) and, as keywords, whichever of these it declares as
parameters:

``writer``
    the :class:`SqlContext` (dialect, evaluation instant, NaN helpers, the
    population's rows);
``constants``
    each argument's Python value when it is a constant (a literal, a
    parameter's value, a list of them, a :class:`Duration` for a duration
    literal), else :data:`NOT_CONSTANT`;
``kinds``
    each argument's type kind (``"int"``, ``"float"``, ``"string"``,
    ``"date"``, …; ``None`` when unknown);
``result_kind``
    the type kind of the call's result;
``spans``
    each argument's position in the source: a refusal about one argument
    raises ``SqlError(..., span=spans[i])`` to point at it (an error without a
    position points at the whole call).

A hook refuses a call it cannot translate by raising :class:`SqlError`.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any, Protocol

import attrs

from segql import ast
from segql.errors import PluginError, SegqlError, SqlError, describe_exception
from segql.registry import Function


class SqlContext(Protocol):
    """What a function's SQL implementation may ask of the writer (declare a
    ``writer`` parameter to receive it)."""

    @property
    def dialect(self) -> str:
        """The target dialect (``duckdb``, ``spark``, ``postgres``, ``bigquery``,
        ``snowflake``); the SQL returned is DuckDB SQL either way (sqlglot
        translates it), this is for dialects whose semantics differ."""
        ...

    @property
    def as_of(self) -> dt.datetime:
        """The evaluation instant (UTC): what ``now`` is in the query.  A
        function that reads it is not pure (``registry.add(..., pure=False)``)."""
        ...

    @property
    def time_zone(self) -> str:
        """The evaluation's time zone (an IANA name; ``"UTC"`` by default):
        calendar notions are local to it."""
        ...

    @property
    def local_as_of(self) -> dt.datetime:
        """as_of's local wall clock in the time zone (a naive datetime): its
        ``.date()`` is today's local date."""
        ...

    def local_wall_clock(self, t: str) -> str:
        """SQL of a TIMESTAMP (an instant, as its UTC wall clock) as the
        TIMESTAMP of its local wall clock in the time zone, whatever the
        session's zone (``t`` itself in UTC)."""
        ...

    @property
    def rows_from(self) -> str:
        """The query's FROM clause: its rows are the population (for
        population-level functions, in a scalar subquery)."""
        ...

    def is_nan(self, x: str) -> str:
        """SQL that is true where the DOUBLE ``x`` is NaN."""
        ...

    def nan_as_null(self, x: str) -> str:
        """``x`` as a DOUBLE with NaN as null."""
        ...


class HookWriter(SqlContext, Protocol):
    """The writer as ``call_sql_hook`` uses it (its parts packs do not see)."""

    check_hooks: bool

    def constant_of(self, node: ast.Node) -> Any: ...


NOT_CONSTANT: Any = type("NotConstant", (), {"__repr__": lambda self: "NOT_CONSTANT"})()
"""In a hook's ``constants``: the argument depends on the row."""


@attrs.frozen
class Duration:
    """In a hook's ``constants``: a duration literal (``30d``, ``6m``), as
    ``months`` calendar months plus ``micros`` microseconds."""

    months: int
    micros: int


def call_sql_hook(fn: Function, node: ast.Func, args: list[str], writer: HookWriter) -> str:
    """A function's ``sql=`` implementation on the arguments' SQL, with the
    keywords it declares (the module docstring lists them).  A refusal
    (``SqlError``) points at the position the hook gave, else at the call.
    Any other failure of a pack's hook is the pack's ``PluginError``; segql's
    own functions raise only ``SegqlError``s, passed on as they are."""
    hook = fn.sql
    span = node.span
    assert hook is not None
    try:
        declared = inspect.signature(hook).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no introspection
        declared = {}  # type: ignore[assignment]
    extra: dict[str, Any] = {}
    if "writer" in declared:
        extra["writer"] = writer
    if "constants" in declared:
        extra["constants"] = tuple(writer.constant_of(a) for a in node.args)
    if "kinds" in declared:
        extra["kinds"] = tuple(a.type.kind if a.type is not None else None for a in node.args)
    if "result_kind" in declared:
        extra["result_kind"] = node.type.kind if node.type is not None else None
    if "spans" in declared:
        extra["spans"] = tuple(a.span for a in node.args)
    try:
        text = hook(*args, **extra)
    except SqlError as exc:  # the hook refuses this call: where it says, else at the call
        if exc.line is not None:
            raise
        raise SqlError(exc.message, span=span, hint=exc.hint) from None
    except SegqlError as exc:
        if fn.pack == BUILTIN_PACK:  # segql's own argument checks (trunc's unit)
            if exc.line is not None:
                raise
            raise type(exc)(exc.message, span=span, hint=exc.hint) from None
        # e.g. the pack's own argument check, as in evaluate
        where = f"{fn.name} (pack {fn.pack})"
        raise PluginError(f"{where} failed: {exc.message}", pack=fn.pack, function=fn.name, span=span) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # also sys.exit() and other BaseExceptions of the pack's code
        raise PluginError(
            f"the SQL implementation of {fn.name}() (pack {fn.pack!r}) raised {describe_exception(exc)}",
            pack=fn.pack,
            function=fn.name,
            span=span,
        ) from None
    problem = None if isinstance(text, str) else f"returned {type(text).__name__}, not SQL text"
    if problem is None and writer.check_hooks:
        problem = sql_problem(text)
    if problem is not None:
        raise PluginError(
            f"the SQL implementation of {fn.name}() (pack {fn.pack!r}) {problem}",
            pack=fn.pack,
            function=fn.name,
            span=span,
        )
    return text


BUILTIN_PACK = "segql"
"""The pack name of segql's own functions (``Function.pack``)."""


def sql_problem(text: str) -> str | None:
    """Why a hook's SQL expression does not parse (as DuckDB SQL), or None."""
    try:
        import sqlglot
    except ImportError:  # pragma: no cover - the sql extra is missing: to_dialect says so
        return None
    try:
        sqlglot.parse_one(f"SELECT ({text})", read="duckdb")
    except sqlglot.errors.ParseError as exc:
        return "returned SQL that does not parse: " + str(exc).strip().splitlines()[0]
    return None
