"""Logical types of segql values and their mapping from Arrow types.

The checker works with these logical types only; physical details (integer
width, time unit, time zone, dictionary encoding, large offsets) are the
executor's business.  ``NULL`` is the type of the ``null`` literal and fits
everywhere; ``ANY`` is used when a column's type is not known yet (a program
compiled without a schema).
"""

from __future__ import annotations

import attrs
import pyarrow as pa


@attrs.frozen(slots=True)
class SType:
    kind: str
    elem: SType | None = None

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list<{self.elem}>"
        return self.kind

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("int", "float", "decimal")

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "timestamp")

    @property
    def is_list(self) -> bool:
        return self.kind == "list"

    @property
    def is_null(self) -> bool:
        return self.kind == "null"

    @property
    def is_any(self) -> bool:
        return self.kind == "any"


INT = SType("int")
FLOAT = SType("float")
DECIMAL = SType("decimal")
STRING = SType("string")
BOOL = SType("bool")
DATE = SType("date")
TIMESTAMP = SType("timestamp")
DURATION = SType("duration")
NULL = SType("null")
ANY = SType("any")


def list_of(elem: SType) -> SType:
    return SType("list", elem)


LIST_STRING = list_of(STRING)

SCALAR_TYPES = {t.kind: t for t in (INT, FLOAT, DECIMAL, STRING, BOOL, DATE, TIMESTAMP, DURATION)}
TYPE_NAME_ALIASES = {
    "integer": "int",
    "int64": "int",
    "double": "float",
    "float64": "float",
    "number": "float",
    "str": "string",
    "text": "string",
    "boolean": "bool",
    "datetime": "timestamp",
    "interval": "duration",
}


def parse_type_name(name: str, elem: SType | None = None) -> SType | None:
    """The type named in a ``param`` declaration (``float``, ``list<string>``), or None."""
    key = name.lower()
    key = TYPE_NAME_ALIASES.get(key, key)
    if key == "list":
        if elem is None or elem.is_list:
            return None
        return list_of(elem)
    if elem is not None:
        return None
    return SCALAR_TYPES.get(key)


def from_arrow(dtype: pa.DataType) -> SType | None:
    """The logical type of an Arrow type, or None when segql cannot use it."""
    if pa.types.is_dictionary(dtype):
        return from_arrow(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return BOOL
    if pa.types.is_integer(dtype):
        return INT
    if pa.types.is_floating(dtype):
        return FLOAT
    if pa.types.is_decimal(dtype):
        return DECIMAL
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return STRING
    if pa.types.is_date(dtype):
        return DATE
    if pa.types.is_timestamp(dtype):
        return TIMESTAMP
    if pa.types.is_duration(dtype):
        return DURATION
    if pa.types.is_null(dtype):
        return NULL
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    ):
        elem = from_arrow(dtype.value_type)
        if elem is None or elem.is_list or elem.is_null:
            return None
        return list_of(elem)
    return None


def common_numeric(a: SType, b: SType) -> SType:
    """The type two numeric operands are brought to (int < decimal < float)."""
    if a == FLOAT or b == FLOAT:
        return FLOAT
    if a == DECIMAL or b == DECIMAL:
        return DECIMAL
    return INT


def unify(a: SType, b: SType) -> SType | None:
    """The common type of two values that must share a type (case branches,
    coalesce, list items), or None when there is none."""
    if a == b:
        return a
    # null fits every type; an unknown type (no schema yet) absorbs everything.
    if a.is_null:
        return b
    if b.is_null:
        return a
    if a.is_any or b.is_any:
        return ANY
    if a.is_numeric and b.is_numeric:
        return common_numeric(a, b)
    if a.is_temporal and b.is_temporal:
        return TIMESTAMP
    if a.is_list and b.is_list and a.elem is not None and b.elem is not None:
        elem = unify(a.elem, b.elem)
        return list_of(elem) if elem is not None else None
    return None


def comparable(a: SType, b: SType) -> bool:
    """Whether ``a = b`` / ``a < b`` type-check.  Lists never compare, not
    even with null (``tags = null`` is a type error, not a null)."""
    if a.is_list or b.is_list:
        return False
    if a.is_null or b.is_null or a.is_any or b.is_any:
        return True
    if a.is_numeric and b.is_numeric:
        return True
    if a.is_temporal and b.is_temporal:
        return True
    return a == b and not a.is_list
