"""segql — a customer-segment query language evaluated on Apache Arrow.

    import segql
    program = segql.compile(source)
    out = program.evaluate(customers, as_of=..., params=...)
    mask = segql.evaluate("age > 30 and country in ['PL']", customers)

The path of a segment through the package:
``parse`` (lark grammar -> ``ast``) -> ``check`` (names, types) ->
``optimize`` (passes) -> an engine (``engines/``: Arrow, SQL, Spark);
``program`` ties them together, ``plugins``/``hookspecs``/``registry`` are the extension points.

``import segql`` loads the errors and the version only; every other public
name (``compile``, ``Program``, ``PluginHost``…) loads its module, and with
it pyarrow, when it is first used (docs/decisions.md 227).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from segql.version import __version__

if TYPE_CHECKING:
    from segql.engines.sql.dialects import DIALECTS as SQL_DIALECTS
    from segql.hookspecs import hookimpl
    from segql.limits import Limits
    from segql.params import Duration
    from segql.plugins import PackInfo, PluginHost
    from segql.program import ParamInfo, Program, compile, evaluate

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


def __getattr__(name: str) -> Any:
    """The public names that need pyarrow (or pluggy), loaded on first use
    and kept (PEP 562); then the package's modules, as ``segql.ast`` was an
    attribute after ``import segql`` when the package loaded everything."""
    value: Any
    if name in ("Program", "ParamInfo", "compile", "evaluate"):
        from segql import program

        value = getattr(program, name)
    elif name in ("PluginHost", "PackInfo"):
        from segql import plugins

        value = getattr(plugins, name)
    elif name == "SQL_DIALECTS":
        from segql.engines.sql import dialects

        value = dialects.DIALECTS
    elif name == "hookimpl":
        from segql import hookspecs

        value = hookspecs.hookimpl
    elif name == "Limits":
        from segql import limits

        value = limits.Limits
    elif name == "Duration":
        from segql import params

        value = params.Duration
    else:
        return _submodule(name)
    globals()[name] = value
    return value


def _submodule(name: str) -> Any:
    import importlib

    if name.startswith("_") or not name.isidentifier():
        raise AttributeError(f"module 'segql' has no attribute {name!r}")
    try:
        return importlib.import_module(f"segql.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"segql.{name}":
            raise
        raise AttributeError(f"module 'segql' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
