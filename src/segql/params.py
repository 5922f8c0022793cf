"""Parameter values supplied at evaluation: type inference and validation.

Values are bound as Arrow scalars, never pasted into source text.  A declared
parameter accepts values of its type (an int where a float is declared, a
date where a timestamp is declared); an undeclared ``$param`` takes its type
from the value.  Durations are ``datetime.timedelta`` or segql duration text
such as ``"30d"`` / ``"6m"``.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import pyarrow as pa

from segql.engines.arrow.executor import duration_scalar
from segql.engines.arrow.values import MAX_DECIMAL_DIGITS, decimal_precision, python_to_scalar
from segql.errors import ParameterError
from segql.span import Span
from segql.suggest import suggest
from segql.types import (
    BOOL,
    DATE,
    DECIMAL,
    DURATION,
    FLOAT,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    SType,
    from_arrow,
    list_of,
    unify,
)

_DURATION_RE = re.compile(r"^\s*([+-]?)\s*(\d(?:_?\d)*)\s*([dwmyh])\s*$")
MICROS = {"h": 3_600_000_000, "d": 86_400_000_000, "w": 7 * 86_400_000_000}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Bad(Exception):
    pass


LIST_TYPES = (list, tuple, set, frozenset)
"""What a list parameter accepts: other iterables (dicts, strings, bytes,
bytearrays, ranges, generators) are refused rather than silently iterated."""


def show(value: Any) -> str:
    """``repr(value)`` for a message, shortened; never raises (a value whose
    ``__repr__`` raises, or a self-containing list, is named by its type)."""
    try:
        text = repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"
    if not isinstance(text, str):  # pragma: no cover - repr() checks this itself
        return f"<unprintable {type(value).__name__} object>"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: str) -> str:
    """A str parameter must be valid Unicode (it becomes UTF-8 in Arrow)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(
            f"the text has a lone surrogate (\\u{ord(value[exc.start]):04x} at position {exc.start}), "
            "which is not valid Unicode"
        ) from None
    return value


class Duration(NamedTuple):
    """A duration parameter value with calendar months (which ``timedelta``
    cannot hold): ``Duration(months=6)``, ``Duration(micros=30 * 86_400_000_000)``,
    or ``Duration.parse("-30d")``."""

    months: int = 0
    micros: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """A duration written as in segql: ``30d``, ``2w``, ``6m``, ``1y``, ``12h``, signed or not."""
        try:
            months, micros = parse_duration_text(text)
        except _Bad as exc:
            raise ParameterError(str(exc)) from None
        return cls(months, micros)


def infer_type(value: Any) -> SType:
    """The segql type of a Python value (for undeclared parameters)."""
    if isinstance(value, pa.Scalar):
        t = from_arrow(value.type)
        if t is None:
            raise _Bad(f"Arrow type {value.type} is not supported")
        return t
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT
    if isinstance(value, Decimal):
        return DECIMAL
    if isinstance(value, str):
        _text(value)
        return STRING
    if isinstance(value, dt.datetime):
        return TIMESTAMP
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, (dt.timedelta, Duration)):
        return DURATION
    if isinstance(value, LIST_TYPES):
        elem: SType = NULL
        for item in value:
            if item is None:
                continue
            if isinstance(item, LIST_TYPES):  # before looking inside: a list may contain itself
                raise _Bad(f"lists of lists are not supported; {show(item)} is a list item")
            t = infer_type(item)
            merged = unify(elem, t)
            if merged is None:
                raise _Bad(f"list items must have one type; {show(item)} does not match {elem}")
            elem = merged
        return list_of(elem)
    if hasattr(value, "__index__") and not isinstance(value, (bytes, bytearray, memoryview)):
        return INT
    raise _Bad(f"values of type {type(value).__name__} cannot be parameters")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad("expected an integer, got a bool")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise _Bad(f"expected an integer, got {type(value).__name__} {show(value)}")
    try:
        result = operator.index(value)
    except TypeError:
        raise _Bad(f"expected an integer, got {type(value).__name__} {show(value)}") from None
    if not INT64_MIN <= result <= INT64_MAX:
        raise _Bad(f"{result} does not fit in 64 bits")
    return result


def _float(value: Any) -> float:
    if isinstance(value, bool) or (not isinstance(value, (int, float, Decimal)) and not hasattr(value, "__float__")):
        raise _Bad(f"expected a number, got {type(value).__name__} {show(value)}")
    if isinstance(value, (str, bytes, bytearray)):
        raise _Bad(f"expected a number, got {type(value).__name__} {show(value)}")
    try:
        return float(value)
    except (ValueError, OverflowError, TypeError) as exc:  # Decimal('sNaN'), ints beyond float
        raise _Bad(f"{show(value)} is not a float: {exc}") from None


def _decimal(value: int | Decimal) -> Decimal:
    value = Decimal(value)
    if not value.is_finite():
        raise _Bad(f"decimal values must be finite, got {value!r}")
    if decimal_precision(value) > MAX_DECIMAL_DIGITS:
        raise _Bad(f"{value!r} needs more than {MAX_DECIMAL_DIGITS} decimal digits")
    return value


def parse_duration_text(text: str) -> tuple[int, int]:
    m = _DURATION_RE.match(text)
    if not m:
        raise _Bad(f"expected a duration such as '30d', '2w', '6m', '1y' or '12h', got {text!r}")
    sign = -1 if m.group(1) == "-" else 1
    amount = int(m.group(2).replace("_", ""))
    unit = m.group(3)
    if unit == "m":
        return sign * amount, 0
    if unit == "y":
        return sign * 12 * amount, 0
    return 0, sign * amount * MICROS[unit]


def convert(value: Any, t: SType) -> pa.Scalar:
    """``value`` as an Arrow scalar of type ``t``; raises _Bad with a reason."""
    try:
        return _convert(value, t)
    except _Bad:
        raise
    except (pa.ArrowException, OverflowError) as exc:  # e.g. a datetime outside the unit's range
        raise _Bad(f"{show(value)} cannot be stored as {t}: {exc}") from None
    except Exception as exc:  # the value's own methods raised (__index__, __float__, __iter__, …)
        raise _Bad(f"reading {show(value)} raised {_raised(exc)}") from None


def _raised(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _convert(value: Any, t: SType) -> pa.Scalar:
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if value is None:
        return python_to_scalar(None, t)
    kind = t.kind
    if kind == "int":
        return python_to_scalar(_int(value), t)
    if kind == "float":
        return python_to_scalar(_float(value), t)
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise _Bad(f"expected a Decimal or an int, got {type(value).__name__} {show(value)}")
        return python_to_scalar(_decimal(value), t)
    if kind == "string":
        if not isinstance(value, str):
            raise _Bad(f"expected a str, got {type(value).__name__} {show(value)}")
        return python_to_scalar(_text(value), t)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Bad(f"expected a bool, got {type(value).__name__} {show(value)}")
        return python_to_scalar(value, t)
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise _Bad(f"expected a datetime.date, got {type(value).__name__} {show(value)}")
        return python_to_scalar(value, t)
    if kind == "timestamp":
        if not isinstance(value, dt.date):
            raise _Bad(f"expected a datetime, got {type(value).__name__} {show(value)}")
        return python_to_scalar(value, t)
    if kind == "duration":
        if isinstance(value, dt.timedelta):
            micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
            return duration_scalar(0, micros)
        if isinstance(value, Duration):
            return duration_scalar(value.months, value.micros)
        if isinstance(value, str):
            months, micros = parse_duration_text(value)
            return duration_scalar(months, micros)
        raise _Bad(f"expected a timedelta or a duration such as '30d', got {type(value).__name__} {show(value)}")
    if kind == "list":
        assert t.elem is not None
        if not isinstance(value, LIST_TYPES) or isinstance(value, Duration):
            raise _Bad(
                f"expected a list (or a tuple or a set), got {type(value).__name__} {show(value)}",
            )
        if t.elem.kind == "duration":
            raise _Bad("lists of durations are not supported")
        for v in value:
            if isinstance(v, LIST_TYPES):
                raise _Bad(f"lists of lists are not supported; {show(v)} is a list item")
        items = [_convert(v, t.elem).as_py() if v is not None else None for v in value]
        return python_to_scalar(items, t)
    raise _Bad(f"cannot bind a value to type {t}")


def bind_params(
    supplied: Mapping[str, Any] | None,
    declared: dict[str, tuple[SType, Any, Span]],
    used: dict[str, Span],
) -> tuple[dict[str, pa.Scalar], dict[str, SType]]:
    """Validate supplied values against declarations and uses.

    ``declared``: name -> (type, default scalar or None, span of the declaration);
    ``used``: undeclared parameter names -> span of their first use.
    Returns the bound scalars and the type of every parameter.
    """
    try:
        supplied = dict(supplied or {})
    except Exception as exc:  # a host Mapping whose methods raise
        raise ParameterError(f"params could not be read: {_raised(exc)}") from None
    bad_names = [k for k in supplied if not isinstance(k, str)]
    if bad_names:
        raise ParameterError(f"parameter names must be strings, not {type(bad_names[0]).__name__} {show(bad_names[0])}")
    values: dict[str, pa.Scalar] = {}
    types: dict[str, SType] = {}
    known = {**{n: s for n, (_, _, s) in declared.items()}, **used}
    remaining = dict(supplied)
    for name, (t, default, span) in declared.items():
        key = _match(name, remaining)
        if key is not None:
            value = remaining.pop(key)
            try:
                values[name] = convert(value, t)
            except _Bad as exc:
                raise ParameterError(f"parameter ${name} is declared {t}: {exc}", span=span) from None
        elif default is not None:
            values[name] = default
        else:
            raise ParameterError(
                f"parameter ${name} has no value and no default",
                span=span,
                hint=f"pass params={{'{name}': …}}",
            )
        types[name] = t
    for name, span in used.items():
        key = _match(name, remaining)
        if key is None:
            raise ParameterError(
                f"parameter ${name} has no value",
                span=span,
                hint=f"pass params={{'{name}': …}} or declare it with a default: param {name}: <type> = …",
            )
        value = remaining.pop(key)
        try:
            if value is None:
                raise _Bad("None has no type; declare the parameter (param name: type)")
            t = _infer(value)
            values[name] = convert(value, t)
        except _Bad as exc:
            raise ParameterError(f"parameter ${name}: {exc}", span=span) from None
        types[name] = t
    if remaining:
        name = sorted(remaining)[0]
        close = suggest(name, known)
        raise ParameterError(
            f"unknown parameter '{name}'",
            hint=f"did you mean '{close}'?"
            if close
            else (
                f"the program's parameters are {', '.join(sorted(known))}" if known else "the program has no parameters"
            ),
        )
    return values, types


def _infer(value: Any) -> SType:
    """``infer_type``, with the value's own failures (``__index__`` …) as _Bad."""
    try:
        return infer_type(value)
    except _Bad:
        raise
    except Exception as exc:
        raise _Bad(f"reading {show(value)} raised {_raised(exc)}") from None


def _match(name: str, supplied: dict[str, Any]) -> str | None:
    if name in supplied:
        return name
    matches = [k for k in supplied if k.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


__all__ = ["Duration", "bind_params", "convert", "infer_type", "parse_duration_text"]
