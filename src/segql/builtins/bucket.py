"""Deterministic buckets: ``bucket(value, n [, salt])`` (LANGUAGE.md §10,
docs/decisions.md "Deterministic buckets (issue 18)", rules 70-74).

The bucket of a value is ``h mod n``, where ``h`` is the first 15 hex digits
(60 bits) of the MD5 digest of the UTF-8 bytes of the message: the value's
text (an integer in plain decimal, ``-12``; a string as it is), preceded by
``salt + ":"`` when the salt is not empty.  MD5 is a digest every engine has,
so the same value, n and salt give the same bucket in the Arrow engine and in
the SQL of every dialect:

==========  =====================================================================
Arrow       the vectorised MD5 of :mod:`segql.engines.arrow.md5`
DuckDB      ``CAST('0x' || SUBSTRING(MD5(m), 1, 15) AS BIGINT) % n``
PostgreSQL  ``CAST(CAST('x0' || SUBSTRING(MD5(CONVERT_TO(m, 'UTF8')), 1, 15) AS BIT(64)) AS BIGINT) % n``
Spark       ``CAST(CONV(SUBSTRING(MD5(m), 1, 15), 16, 10) AS BIGINT) % n``
BigQuery    ``MOD(CAST('0x' || SUBSTRING(TO_HEX(MD5(m)), 1, 15) AS INT64), n)``
Snowflake   ``TO_NUMBER(UPPER(SUBSTRING(MD5(m), 1, 15)), 'XXXXXXXXXXXXXXX') % n``
==========  =====================================================================
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow.md5 import digest_words, first_60_bits
from segql.engines.arrow.values import Value
from segql.engines.sql.hooks import NOT_CONSTANT, SqlContext
from segql.engines.sql.literals import string_literal
from segql.errors import SegqlTypeError, SqlError
from segql.registry import CallContext, FunctionRegistry, Parameter, TypeSpec, parse_spec
from segql.span import Span
from segql.types import SType

MAX_BUCKETS = 2**31 - 1
"""The largest n: the bucket then fits a 32-bit integer in every engine."""

EXAMPLE = "e.g. bucket(customer_id, 100) < 10 for a 10% holdout"


@attrs.frozen
class IntOrString(TypeSpec):
    """The type spec of ``bucket``'s value: an int or a string (null and
    not-yet-known types pass, as for every spec)."""

    def accepts(self, t: SType) -> bool:
        return t.is_null or t.is_any or t.kind in ("int", "string")


VALUE_SPEC = IntOrString(text="int or string", constraint="any")


# --------------------------------------------------------------- arguments
def bucket_count(value: object, span: Span | None = None) -> int:
    """``n``, checked: an integer from 1 to 2**31 - 1, else a SegqlTypeError at ``span``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUCKETS:
        raise SegqlTypeError(
            f"bucket() needs a number of buckets n from 1 to {MAX_BUCKETS:,}, not {value!r}",
            span=span,
            hint=EXAMPLE,
        )
    return value


def message_prefix(salt: object) -> str:
    """What precedes the value's text in the hashed message: ``salt + ":"``,
    nothing for the empty salt (or none)."""
    if not isinstance(salt, str):  # pragma: no cover - the checker types the salt
        raise SegqlTypeError(f"bucket()'s salt must be a string, not {salt!r}")
    return f"{salt}:" if salt else ""


# ------------------------------------------------------------------- Arrow
def _bucket(ctx: CallContext, value: Value, n: Value, salt: Value) -> Value:
    count = bucket_count(n.as_py(), ctx.arg_spans[1] if len(ctx.arg_spans) > 1 else None)
    prefix = message_prefix(salt.as_py()).encode("utf-8")
    if isinstance(value, pa.Scalar):
        return _buckets(pa.array([value.as_py()], value.type), count, prefix)[0]
    return pa.chunked_array([_buckets(chunk, count, prefix) for chunk in value.chunks], type=pa.int64())


def _buckets(array: pa.Array, n: int, prefix: bytes) -> pa.Array:
    """The bucket of every value of an int or string array (dictionaries:
    once per dictionary entry); null stays null."""
    if pa.types.is_dictionary(array.type):
        return pc.take(_buckets(array.dictionary, n, prefix), array.indices)
    if pa.types.is_integer(array.type):
        text = pc.cast(array, pa.string())  # plain decimal: -12, 0, 12345678901234
    elif pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        text = array
    else:  # pragma: no cover - the checker admits ints and strings only
        raise SegqlTypeError(f"bucket() takes an int or a string, not {array.type}")
    buckets = first_60_bits(digest_words(text, prefix)) % np.uint64(n)
    mask = np.asarray(array.is_null()) if array.null_count else None
    return pa.array(buckets.astype(np.int64), type=pa.int64(), mask=mask)


# --------------------------------------------------------------------- SQL
def hex15_sql(dialect: str, message: str) -> str:
    """The first 15 hex digits of the MD5 of ``message`` (SQL text) as an integer."""
    if dialect == "postgres":  # PostgreSQL 15 reads no '0x' integers; the text's UTF-8 bytes whatever the encoding
        return f"CAST(CAST('x0' || SUBSTRING(MD5(CONVERT_TO({message}, 'UTF8')), 1, 15) AS BIT(64)) AS BIGINT)"
    if dialect == "spark":
        return f"CAST(CONV(SUBSTRING(MD5({message}), 1, 15), 16, 10) AS BIGINT)"
    if dialect == "snowflake":
        return f"TO_NUMBER(UPPER(SUBSTRING(MD5({message}), 1, 15)), 'XXXXXXXXXXXXXXX')"
    # DuckDB, and BigQuery (sqlglot writes its MD5 as TO_HEX(MD5(…)); it casts '0x…' to INT64)
    return f"CAST('0x' || SUBSTRING(MD5({message}), 1, 15) AS BIGINT)"


def _bucket_sql(
    value: str,
    n: str,
    salt: str,
    *,
    writer: SqlContext,
    constants: tuple[Any, ...],
    kinds: tuple[str | None, ...],
    spans: tuple[Span, ...],
) -> str:
    for i, what in ((1, "n"), (2, "the salt")):
        if constants[i] is NOT_CONSTANT:
            raise SqlError(f"bucket()'s {what} must be a literal or a $parameter in SQL", span=spans[i])
    if constants[1] is None or constants[2] is None or kinds[0] == "null":
        return "CAST(NULL AS BIGINT)"  # a null argument: null, as in the Arrow engine
    count = bucket_count(constants[1], spans[1])
    if kinds[0] == "int":
        text = f"CAST(CAST({value} AS BIGINT) AS VARCHAR)"  # plain decimal for every integer type
    elif kinds[0] == "string":
        text = value
    else:  # pragma: no cover - the checker admits ints and strings only
        raise SqlError(f"bucket() takes an int or a string, not {kinds[0]}", span=spans[0])
    prefix = message_prefix(constants[2])
    message = f"({string_literal(prefix)} || {text})" if prefix else text
    return f"CAST({hex15_sql(writer.dialect, message)} % {count} AS BIGINT)"


def register(registry: FunctionRegistry) -> None:
    registry.add(
        "bucket",
        _bucket,
        params=[
            Parameter(name="value", type=VALUE_SPEC),
            ("n", "int"),
            Parameter(name="salt", type=parse_spec("string"), default='""'),
        ],
        returns="int",
        constant_args=("n", "salt"),
        doc="A stable bucket 0 … n-1 of an int or string value: MD5 of [salt:]text, first 15 hex digits, mod n.",
        sql=_bucket_sql,
    )
