"""The plain values the editor services take and give.

Every class is a frozen ``attrs`` class with plain fields, so a host (a
language server, a web playground) can turn them into its own protocol's
objects field by field.  Positions are 0-based lines and 0-based columns
counted in Unicode code points (Python ``str`` indices within the line); a
line ends at ``"\\n"`` (a ``"\\r"`` before it belongs to the line's text).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa

from segql.check import DataSchema
from segql.errors import DataError, SegqlError, describe_exception
from segql.inputs import logical_schema
from segql.plugins import PluginHost, default_host

SEVERITIES = ("error", "warning", "information", "hint")
COMPLETION_KINDS = (
    "column",
    "table",
    "segment",
    "feature",
    "param",
    "function",
    "aggregate",
    "keyword",
    "unit",
    "snippet",
)


@attrs.frozen(order=True)
class Position:
    """A place between two characters: 0-based ``line``, 0-based ``column`` in code points."""

    line: int
    column: int


@attrs.frozen
class Range:
    """From ``start`` (inclusive) to ``end`` (exclusive)."""

    start: Position
    end: Position

    def contains(self, pos: Position) -> bool:
        """Whether ``pos`` lies in the range, its end included (a cursor just after a name is "on" it)."""
        return self.start <= pos <= self.end

    def overlaps(self, other: Range) -> bool:
        """Whether the two ranges share a position (touching ends count)."""
        return self.start <= other.end and other.start <= self.end


@attrs.frozen
class Diagnostic:
    """One problem of a source.  ``code`` names its kind (``syntax``, ``name``,
    ``type``, ``cycle``, ``limit``, ``plugin``, ``param``, ``data`` for errors;
    ``unused-param``, ``null-comparison``, ``undeclared-param`` for warnings and
    hints); ``suggestions`` are the replacements the checker proposes for the
    text of ``range`` ("did you mean 'age'?" gives ``("age",)``)."""

    range: Range
    severity: str
    message: str
    hint: str | None = None
    code: str = "error"
    suggestions: tuple[str, ...] = ()


@attrs.frozen
class CompletionItem:
    """A proposal: ``label`` is what the list shows, ``insert_text`` what is
    inserted in place of the word being typed (``kind`` is one of
    :data:`COMPLETION_KINDS`)."""

    label: str
    kind: str
    detail: str = ""
    documentation: str = ""
    insert_text: str = ""


@attrs.frozen
class Hover:
    """What to show for the thing under the cursor (Markdown), and its range."""

    range: Range
    markdown: str


@attrs.frozen
class SignatureHelp:
    """The signature of the call around the cursor.  ``parameters`` are the
    parameters as shown in ``label``; ``active_parameter`` indexes them."""

    label: str
    documentation: str
    parameters: tuple[str, ...]
    active_parameter: int


@attrs.frozen
class TextEdit:
    """Replace the text of ``range`` with ``new_text``."""

    range: Range
    new_text: str


@attrs.frozen
class CodeAction:
    """A fix: ``edits`` applied together; ``diagnostic`` is the problem it fixes."""

    title: str
    edits: tuple[TextEdit, ...]
    diagnostic: Diagnostic | None = None
    preferred: bool = False


def _schema(value: Any, what: str) -> pa.Schema | None:
    """A schema (or None) from a schema or anything with a ``.schema``."""
    if value is None or isinstance(value, pa.Schema):
        return value
    schema = getattr(value, "schema", None)
    if isinstance(schema, pa.Schema):
        return schema
    raise DataError(f"{what} must be a pyarrow Schema (or a table), not {type(value).__name__}")


def _profile_schema(value: Any) -> pa.Schema | None:
    return _schema(value, "schema")


def _related_schemas(value: Any) -> dict[str, pa.Schema] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise DataError(f"related must map table names to schemas, not {type(value).__name__}")
    return {str(name): _related_schema(name, s) for name, s in value.items()}


@attrs.frozen
class EditorContext:
    """What the services know besides the text: the profile table's schema,
    the related tables' schemas, the plugin host (functions and packs) and the
    key column.

    ``schema=None``: columns are not known (any bare name that is not a
    segment or feature is taken as a column, as ``segql.compile`` does).
    ``related=None``: related tables are not known; ``{}``: there are none.
    Tables (pyarrow, or anything with a ``.schema``) are accepted in place of
    schemas; only their schemas are kept.
    """

    schema: pa.Schema | None = attrs.field(default=None, converter=_profile_schema)
    related: Mapping[str, pa.Schema] | None = attrs.field(default=None, converter=_related_schemas)
    plugins: PluginHost | None = None
    key: str | None = None

    @classmethod
    def from_files(
        cls,
        data: str | Path | None = None,
        *,
        related: Mapping[str, str | Path] | None = None,
        key: str | None = None,
        plugins: PluginHost | None = None,
    ) -> EditorContext:
        """A context from data files: reads their schemas only (a Parquet
        file's footer, a Parquet folder's first file, a CSV file's first
        block, an Arrow/Feather file's schema).  Raises DataError naming the
        file when one cannot be read."""
        schema = read_schema(data) if data is not None else None
        tables = {name: read_schema(path) for name, path in (related or {}).items()} if related is not None else None
        return cls(schema=schema, related=tables, plugins=plugins, key=key)

    @property
    def host(self) -> PluginHost:
        """The plugin host: the one given, or segql's default (installed packs)."""
        return self.plugins if self.plugins is not None else default_host()

    def data_schema(self) -> DataSchema:
        """What the checker is told about the data."""
        if self.schema is None and self.related is None:
            return DataSchema()
        columns = unsupported = None
        if self.schema is not None:
            columns, unsupported = logical_schema(self.schema, "the data")
        related = None
        if self.related is not None:
            related = {name: logical_schema(s, f"related table {name}")[0] for name, s in self.related.items()}
        return DataSchema(columns=columns, related=related, unsupported=unsupported or {})


def _related_schema(name: Any, value: Any) -> pa.Schema:
    schema = _schema(value, f"related table {name}")
    if schema is None:
        raise DataError(f"related table {name} has no schema (None)")
    return schema


def read_schema(path: str | Path) -> pa.Schema:
    """The schema of a data file without reading its rows (Parquet file or
    folder, CSV, Arrow IPC/Feather, newline-delimited JSON)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if p.is_dir() or suffix in (".parquet", ".pq"):
            import pyarrow.dataset as ds

            return ds.dataset(str(p), format="parquet").schema
        if suffix in (".csv", ".tsv", ".txt"):
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            with pcsv.open_csv(str(p), parse_options=parse) as reader:
                return reader.schema
        if suffix in (".arrow", ".feather", ".ipc"):
            import pyarrow.feather as feather

            return feather.read_table(str(p), memory_map=True).schema
        if suffix in (".json", ".jsonl", ".ndjson"):
            import pyarrow.json as pjson

            return pjson.read_json(str(p)).schema
    except SegqlError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataError(f"cannot read the schema of {p}: {describe_exception(exc)}") from None
    raise DataError(
        f"cannot read the schema of {p}: unknown file type ({suffix or 'none'})",
        hint="use a .parquet file or folder, .csv, .tsv, .arrow/.feather or .jsonl file",
    )
