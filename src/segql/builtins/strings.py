"""String functions: lower, upper, trim, length, concat."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow.executor import decode, string_map
from segql.engines.arrow.values import Value
from segql.engines.sql.literals import string_literal
from segql.registry import CallContext, FunctionRegistry

WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""The characters Arrow's utf8_trim_whitespace strips (measured over every code point)."""


def _lower(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_lower)


def _upper(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_upper)


def _trim(ctx: CallContext, s: Value) -> Value:
    return string_map(s, pc.utf8_trim_whitespace)


def _length(ctx: CallContext, s: Value) -> Value:
    return pc.cast(string_map(s, pc.utf8_length), pa.int64())


def _concat(ctx: CallContext, *parts: Value) -> Value:
    values = [pc.cast(decode(p), pa.large_string()) for p in parts]
    separator = pa.scalar("", pa.large_string())
    return pc.cast(pc.binary_join_element_wise(*values, separator, null_handling="emit_null"), pa.string())


def _trim_sql(s: str) -> str:
    return f"TRIM({s}, {string_literal(WHITESPACE)})"


def register(registry: FunctionRegistry) -> None:
    add = registry.add
    add(
        "lower",
        _lower,
        params=[("s", "string")],
        returns="string",
        doc="Lower-case (Unicode).",
        sql=lambda s: f"LOWER({s})",
        raises=False,
    )
    add(
        "upper",
        _upper,
        params=[("s", "string")],
        returns="string",
        doc="Upper-case (Unicode).",
        sql=lambda s: f"UPPER({s})",
        raises=False,
    )
    add(
        "trim",
        _trim,
        params=[("s", "string")],
        returns="string",
        doc="Strip leading and trailing whitespace.",
        sql=_trim_sql,
        raises=False,
    )
    add(
        "length",
        _length,
        params=[("s", "string")],
        returns="int",
        doc="Number of characters (not bytes).",
        sql=lambda s: f"LENGTH({s})",
        raises=False,
    )
    add(
        "concat",
        _concat,
        params=[("s", "string")],
        variadic=True,
        returns="string",
        doc="Join strings; null if any part is null.",
        sql=lambda *parts: "(" + " || ".join(parts) + ")",
        raises=False,
    )
