"""CSV files read with types (docs/decisions.md 126-140, "CSV input and casts").

``read_csv(path, schema={"zip": "string", "age": "int"}, text_columns=("id",))``
reads a CSV file with Arrow's reader in one pass and gives:

* empty cells null for every type (text too: ``""`` is not a value);
* the types given in ``schema`` (segql's names: ``int``, ``float``, ``string``,
  ``bool``, ``date``, ``timestamp``, ``decimal(p,s)``), ``text_columns`` as
  ``string`` (``"02134"`` keeps its leading zero), the others inferred;
* a cell that does not match its column's explicit type, or a **stray value**
  (an inferred column that is text only because a few of its cells are not
  numbers, dates or timestamps like the rest: ``12, 15, n/a, 18``) is a
  ``DataError`` naming the file, the line, the column and the value, with the
  hint ``--schema NAME=string`` (or fix the value).

Explicit ``int``, ``float`` and ``date`` cells are read by the rules of the
casts ``to_int``, ``to_float`` and ``to_date`` (segql.builtins.casts): spaces
around are allowed, ``1.5`` is not an int.  ``bool`` takes true/false/1/0 (any
case); ``timestamp`` ISO 8601, with a zone offset (converted to UTC) or
without (taken as UTC); ``decimal(p,s)`` Arrow's decimal text.

Line numbers count physical lines (a quoted cell may span several): the file
is read a second time only when there is an error to report, and only up to
the bad row.  ``parse_schema_option`` reads the CLI's
``--schema NAME=TYPE[,NAME=TYPE]`` values; ``schema_for`` picks one file's
entries (``orders.amount=float`` is column ``amount`` of related table ``orders``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from segql.builtins.casts import _text_to_date, _text_to_float, _text_to_int
from segql.errors import DataError
from segql.types import TYPE_NAME_ALIASES

SCALAR_NAMES = ("int", "float", "string", "bool", "date", "timestamp")
_DECIMAL = re.compile(r"^\s*decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$", re.IGNORECASE)
_TIMESTAMP_TEXT = r"^ *[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}"
_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_MAY_CONVERT = r"^ *[-+.0-9iInN]"
"""How every text that to_float, a date or a timestamp accepts begins (inf and nan spelled in any case)."""
STRAY_SHARE = 0.1
"""An inferred text column is a column of numbers (dates, timestamps) with
stray values when at most this share of its non-empty cells (or one) do not
look like them, and at least two do."""
TRUE_TEXTS, FALSE_TEXTS = ("true", "1"), ("false", "0")


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type a CSV column of segql type ``name`` is read as; DataError if unknown."""
    key = name.strip().lower()
    key = TYPE_NAME_ALIASES.get(key, key)
    match = _DECIMAL.match(key)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise DataError(
                f"decimal({precision},{scale}): the precision is 1 to 38 and the scale at most the precision"
            )
        return pa.decimal128(precision, scale)
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", "UTC"),
    }
    if key not in types:
        raise DataError(
            f"unknown column type {name!r}",
            hint="use one of " + ", ".join(SCALAR_NAMES) + ", decimal(p,s)",
        )
    return types[key]


def _split_outside_parentheses(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_schema_option(values: str | Iterable[str]) -> dict[str, str]:
    """``--schema`` values (``"zip=string,age=int"``, repeatable) as ``{name: type}``,
    each type checked (``decimal(10,2)`` keeps its comma); DataError on a bad item."""
    items = [values] if isinstance(values, str) else list(values)
    schema: dict[str, str] = {}
    for value in items:
        for part in _split_outside_parentheses(value):
            if not part.strip():
                continue
            name, sep, type_name = part.partition("=")
            if not sep or not name.strip() or not type_name.strip():
                raise DataError(f"--schema {part.strip()!r}: write NAME=TYPE", hint="e.g. --schema zip=string,age=int")
            arrow_type(type_name)
            schema[name.strip()] = re.sub(r"\s+", "", type_name.lower())
    return schema


def schema_for(schema: Mapping[str, str], table: str | None = None) -> dict[str, str]:
    """The ``--schema`` entries of one file: for the profile (``table=None``) the
    unqualified names (``zip=string``), for a related table ``NAME`` those
    written ``NAME.COLUMN`` (``orders.amount=float``), without the prefix."""
    if table is None:
        return {name: t for name, t in schema.items() if "." not in name}
    prefix = table + "."
    return {name[len(prefix) :]: t for name, t in schema.items() if name.startswith(prefix)}


def read_csv(path: str, *, schema: Mapping[str, str] | None = None, text_columns: Sequence[str] = ()) -> pa.Table:
    """The CSV file at ``path`` as an Arrow table (the module docstring says how)."""
    wanted = {name: arrow_type(t) for name, t in (schema or {}).items()}
    for name in text_columns:
        wanted.setdefault(name, pa.string())
    # Explicit columns are read as text, then converted here: a bad cell is found by row.
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(wanted, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not read {path}: {exc}") from None
    missing = [name for name in wanted if name not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: --schema names {', '.join(repr(m) for m in missing)}, not a column of the file",
            hint="the columns are " + ", ".join(table.column_names),
        )
    columns = []
    for index, name in enumerate(table.column_names):
        column = table.column(name)
        if name in wanted:
            column = _convert(path, index, name, column, wanted[name])
        elif pa.types.is_string(column.type):
            _check_stray(path, index, name, column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


# ----------------------------------------------------------------- explicit types
def _convert(path: str, index: int, name: str, column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_string(target):
        return column
    if pa.types.is_integer(target):
        return _by_rule(path, index, name, column, _text_to_int, "int")
    if pa.types.is_floating(target):
        return _by_rule(path, index, name, column, _text_to_float, "float")
    if pa.types.is_date(target):
        return _by_rule(path, index, name, column, _text_to_date, "date")
    if pa.types.is_boolean(target):
        return _by_rule(path, index, name, column, _text_to_bool, "bool")
    if pa.types.is_timestamp(target):
        return _by_cast(path, index, name, column, _text_to_timestamp, "timestamp")
    return _by_cast(path, index, name, column, lambda c: pc.cast(c, target), str(target).replace(" ", ""))


def _text_to_bool(text: pa.Array) -> pa.Array:
    lower = pc.utf8_lower(pc.utf8_trim(text, " "))
    true, false = pc.is_in(lower, pa.array(TRUE_TEXTS)), pc.is_in(lower, pa.array(FALSE_TEXTS))
    return pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))


def _text_to_timestamp(text: pa.Array) -> pa.Array:
    text = pc.utf8_trim(text, " ")
    with_offset = pc.if_else(pc.match_substring_regex(text, _OFFSET), text, pc.binary_join_element_wise(text, "Z", ""))
    return pc.cast(with_offset, pa.timestamp("us", "UTC"))


def _by_rule(
    path: str, index: int, name: str, column: pa.ChunkedArray, rule: Callable[[pa.Array], pa.Array], type_name: str
) -> pa.ChunkedArray:
    """``rule`` gives null where a text does not convert: the first such non-empty cell is the error."""
    chunks, row = [], 0
    for chunk in column.chunks:
        values = rule(chunk)
        bad = pc.and_(chunk.is_valid(), values.is_null())
        if pc.any(bad).as_py():
            at = pc.index(bad, True).as_py()
            _bad_value(path, index, name, row + at, chunk[at].as_py(), f"not {_article(type_name)}")
        chunks.append(values)
        row += len(chunk)
    return pa.chunked_array(chunks, rule(pa.array([], pa.string())).type)


def _by_cast(
    path: str, index: int, name: str, column: pa.ChunkedArray, cast: Callable[[pa.Array], pa.Array], type_name: str
) -> pa.ChunkedArray:
    """``cast`` raises on a bad text: then the first bad cell is found by halving."""
    chunks, row = [], 0
    for chunk in column.chunks:
        try:
            chunks.append(cast(chunk))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            lo, hi = 0, len(chunk)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                try:
                    cast(chunk.slice(lo, mid - lo))
                    lo = mid
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    hi = mid
            _bad_value(path, index, name, row + lo, chunk[lo].as_py(), f"not {_article(type_name)}")
        row += len(chunk)
    return pa.chunked_array(chunks, cast(pa.array([], pa.string())).type)


# ----------------------------------------------------------------- stray values
def _check_stray(path: str, index: int, name: str, column: pa.ChunkedArray) -> None:
    """The rules are applied to the column's distinct texts (a text column
    usually repeats a few: 1M rows of three countries test three texts), and
    the rows counted through the dictionary codes."""
    filled = column.length() - column.null_count
    if filled < 2:
        return
    # Every number, date or timestamp text starts so: a column where too few do
    # (emails, names) is text, found with one cheap pass.
    candidates = pc.sum(pc.match_substring_regex(column, _MAY_CONVERT)).as_py() or 0
    if candidates < max(2, filled - max(1, STRAY_SHARE * filled)):
        return
    encoded = column.combine_chunks().dictionary_encode()
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(encoded.dictionary))
    distinct = pa.chunked_array([encoded.dictionary])
    for kind, looks_like in _LOOKS_LIKE:
        like = np.asarray(looks_like(distinct).to_numpy(zero_copy_only=False), dtype=bool)
        looks = int(counts[like].sum())
        strays = filled - looks
        if 0 < strays <= max(1, STRAY_SHARE * filled) and looks >= 2:
            at = int(np.flatnonzero(present & ~like[np.maximum(codes, 0)])[0])
            _bad_value(
                path,
                index,
                name,
                at,
                column[at].as_py(),
                f"a stray value: {looks:,} of the column's {filled:,} values are {kind}s, "
                "and this one alone makes it a text column",
            )


def _converts(rule: Callable[[pa.Array], pa.Array]) -> Callable[[pa.ChunkedArray], pa.ChunkedArray]:
    def looks_like(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pa.chunked_array([rule(c).is_valid() for c in column.chunks], pa.bool_())

    return looks_like


def _matching(pattern: str) -> Callable[[pa.ChunkedArray], pa.ChunkedArray]:
    def looks_like(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.fill_null(pc.match_substring_regex(column, pattern), False)

    return looks_like


_LOOKS_LIKE = (
    ("number", _converts(_text_to_float)),
    ("date", _converts(_text_to_date)),
    ("timestamp", _matching(_TIMESTAMP_TEXT)),
)


# ----------------------------------------------------------------- errors
def _article(type_name: str) -> str:
    return ("an " if type_name[:1] in "aeiou" else "a ") + type_name


def _bad_value(path: str, index: int, name: str, row: int, value: object, why: str) -> None:
    line = physical_line(path, row)
    raise DataError(
        f"{path}, line {line}, column {name!r} (#{index + 1}): {value!r} is {why}",
        hint=f"fix the value, or read the column as text: --schema {name}=string (then to_int/to_float/to_date)",
    )


def physical_line(path: str, row: int) -> int:
    """The 1-based line of the file where data row ``row`` (0-based, after the
    header) starts; quoted cells spanning lines and empty lines (which Arrow
    skips) counted.  Reads the file up to that row only."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        records = 0  # non-empty records read: the header is the first
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                return start
            if not record:  # an empty line
                continue
            if records == row + 1:
                return start
            records += 1
