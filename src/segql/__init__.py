"""segql — a customer-segment query language evaluated on Apache Arrow.

    import segql
    program = segql.compile(source)
    out = program.evaluate(customers, as_of=..., params=...)
    mask = segql.evaluate("age > 30 and country in ['PL']", customers)

The path of a segment through the package:
``parse`` (lark grammar -> ``ast``) -> ``check`` (names, types) ->
``optimize`` (passes) -> an engine (``engines/``: Arrow, SQL, Spark);
``program`` ties them together, ``plugins``/``hookspecs``/``registry`` are the extension points.
"""

from segql.engines.sql.dialects import DIALECTS as SQL_DIALECTS
from segql.errors import (
    CancelledError,
    CycleError,
    DataError,
    EvaluationError,
    InternalError,
    LimitError,
    ParameterError,
    PluginError,
    SegqlError,
    SegqlNameError,
    SegqlSyntaxError,
    SegqlTypeError,
    SqlError,
)
from segql.hookspecs import hookimpl
from segql.limits import Limits
from segql.params import Duration
from segql.plugins import PackInfo, PluginHost
from segql.program import ParamInfo, Program, __version__, compile, evaluate

__all__ = [
    "SQL_DIALECTS",
    "CancelledError",
    "CycleError",
    "DataError",
    "Duration",
    "EvaluationError",
    "InternalError",
    "LimitError",
    "Limits",
    "PackInfo",
    "ParamInfo",
    "ParameterError",
    "PluginError",
    "PluginHost",
    "Program",
    "SegqlError",
    "SegqlNameError",
    "SegqlSyntaxError",
    "SegqlTypeError",
    "SqlError",
    "__version__",
    "compile",
    "evaluate",
    "hookimpl",
]
