"""The project file ``segql.toml``: what a segment file is checked against in an editor.

``segql lsp`` looks for ``segql.toml`` in the directory of each document and
in every directory above it; the first one found applies.  It names the data
(a profile table and related tables, read for their schemas only) or gives
the column types directly::

    [data]
    profiles = "data/customers.parquet"   # paths are relative to segql.toml
    key = "customer_id"

    [data.related]
    orders = "data/orders.parquet"

    [schema]                                # instead of (or besides) files
    age = "int"
    country = "string"

    [schema.returns]                        # a table inside [schema]: a related table
    customer_id = "string"
    amount = "float"

A table's columns come from its file or from ``[schema]``, not both.  Every
problem is a :class:`ProjectProblem` with the 1-based line and column of the
key (or of the TOML syntax error); the rest of the file still applies.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pyarrow as pa

from segql.editor import EditorContext, read_schema
from segql.errors import SegqlError
from segql.plugins import PluginHost
from segql.suggest import did_you_mean, suggest
from segql.types import SType, parse_type_name

PROJECT_FILE = "segql.toml"

V = TypeVar("V")

SECTIONS = {"data": ("profiles", "key", "related"), "schema": ()}
"""The top-level tables and the keys each allows (``schema`` allows any column)."""


@attrs.frozen
class ProjectProblem:
    """A mistake in the project file: a message at a 1-based line and column
    (``end_column`` one past the end; 0 when only the line is known)."""

    message: str
    line: int = 1
    column: int = 1
    end_column: int = 0

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@attrs.frozen
class Project:
    """A read project file: resolved paths and declared schemas, plus the problems found."""

    path: Path
    profiles: Path | None = None
    key: str | None = None
    related_files: Mapping[str, Path] = attrs.field(factory=dict)
    schema: pa.Schema | None = None
    related_schemas: Mapping[str, pa.Schema] = attrs.field(factory=dict)
    problems: tuple[ProjectProblem, ...] = ()
    text: str = attrs.field(default="", repr=False)

    def locate(self, message: str, section: str | None, key: str | None) -> ProjectProblem:
        """A problem placed on ``key`` of ``[section]`` in this file's text."""
        return _Reader(self.text, self.path.parent).locate(message, section, key)


@attrs.frozen
class LoadedProject:
    """A project file made into an editor context (the data files' schemas
    read), with every problem found on the way."""

    path: Path
    context: EditorContext
    problems: tuple[ProjectProblem, ...]
    files: tuple[Path, ...] = ()
    """The data files read (a change to one reloads the project)."""


def find_project_file(start: str | os.PathLike[str]) -> Path | None:
    """The ``segql.toml`` in ``start`` (a file's directory, or the directory
    itself) or in the nearest directory above it, or None."""
    here = Path(start).absolute()
    if not here.is_dir():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def read_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file; problems are collected, never raised."""
    path = Path(path).absolute()
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return Project(path, problems=(ProjectProblem(f"cannot read {path.name}: {exc.strerror or exc}"),))
    except UnicodeDecodeError as exc:
        return Project(path, problems=(_at_offset(path.read_bytes(), exc.start, "not UTF-8 text"),))
    return parse_project(text, path)


def parse_project(text: str, path: Path) -> Project:
    """A project from the text of ``path`` (which is only used to resolve the data paths)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Project(path, problems=(_toml_problem(exc),))
    reader = _Reader(text, path.parent)
    for name in doc:
        if name not in SECTIONS:
            reader.problem(
                f"unknown table [{name}] (the project file has [data] and [schema])",
                None,
                name,
                hint=suggest(name, SECTIONS),
            )
    data = reader.table(doc, "data", None)
    profiles = key = None
    related_files: dict[str, Path] = {}
    if data is not None:
        for name in data:
            if name not in SECTIONS["data"]:
                reader.problem(
                    f"unknown key '{name}' in [data] (profiles, key, related)",
                    "data",
                    name,
                    hint=suggest(name, SECTIONS["data"]),
                )
        profiles = reader.file(data, "data", "profiles")
        key = reader.string(data, "data", "key")
        related = reader.table(data, "related", "data")
        for name in related or {}:
            found = reader.file(related or {}, "data.related", name)
            if found is not None:
                related_files[name] = found
    schema, related_schemas = reader.schemas(doc)
    if profiles is not None and schema is not None:
        reader.problem("the profile table has both a file ([data] profiles) and [schema] columns", "schema", None)
        schema = None
    for name in set(related_files) & set(related_schemas):
        reader.problem(
            f"the related table '{name}' has both a file ([data.related]) and [schema.{name}] columns",
            f"schema.{name}",
            None,
        )
        del related_schemas[name]
    problems = tuple(sorted(reader.problems, key=lambda p: (p.line, p.column)))
    return Project(path, profiles, key, related_files, schema, related_schemas, problems, text)


def load_project(path: str | os.PathLike[str], plugins: PluginHost | None = None) -> LoadedProject:
    """Read a project file and the schemas of the data files it names.  A
    file that cannot be read is a problem (on its key); the context then
    leaves that table's columns unknown (profiles) or out (a related table)."""
    project = read_project(path)
    problems = list(project.problems)
    schema = project.schema
    if project.profiles is not None:
        try:
            schema = read_schema(project.profiles)
        except SegqlError as exc:
            problems.append(project.locate(exc.message, "data", "profiles"))
    related = dict(project.related_schemas)
    for name, file in project.related_files.items():
        try:
            related[name] = read_schema(file)
        except SegqlError as exc:
            problems.append(project.locate(exc.message, "data.related", name))
    if project.key is not None:
        for table, columns in [("the profile table", schema), *((f"related table {n}", s) for n, s in related.items())]:
            if columns is not None and project.key not in columns.names:
                hint = suggest(project.key, columns.names)
                message = f"key '{project.key}' is not a column of {table}"
                problems.append(project.locate(message + (f"; {did_you_mean(hint)}" if hint else ""), "data", "key"))
    context = EditorContext(schema=schema, related=related or None, plugins=plugins, key=project.key)
    files = tuple(f for f in (project.profiles, *project.related_files.values()) if f is not None)
    return LoadedProject(project.path, context, tuple(problems), files)


Stamp = tuple[int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ProjectCache:
    """Loaded project files, read again when the project file or a data file it names changes."""

    def __init__(self, plugins: PluginHost | None = None) -> None:
        self.plugins = plugins
        self._entries: dict[Path, tuple[tuple[tuple[Path, Stamp], ...], LoadedProject]] = {}

    def load(self, path: Path) -> LoadedProject:
        entry = self._entries.get(path)
        if entry is not None and all(_stamp(file) == stamp for file, stamp in entry[0]):
            return entry[1]
        stamp = _stamp(path)  # before reading: a change while reading is seen next time
        loaded = load_project(path, self.plugins)
        self._entries[path] = (((path, stamp), *((f, _stamp(f)) for f in loaded.files)), loaded)
        return loaded

    def load_for(self, document: Path | None) -> LoadedProject | None:
        """The loaded project file that applies to a document (None: no project file above it)."""
        if document is None:
            return None
        path = find_project_file(document)
        return None if path is None else self.load(path)


class _Reader:
    """Checks values of a parsed project file and places problems on the lines of their keys."""

    def __init__(self, text: str, base: Path) -> None:
        self.lines = text.splitlines()
        self.base = base
        self.problems: list[ProjectProblem] = []

    def problem(self, message: str, section: str | None, key: str | None, hint: str | None = None) -> None:
        if hint:
            message += "; " + (did_you_mean(hint) or "")
        self.problems.append(self.locate(message, section, key))

    def locate(self, message: str, section: str | None, key: str | None) -> ProjectProblem:
        """The problem at ``key =`` inside ``[section]`` (or at the header of ``[section.key]`` /
        ``[key]``), else at the section's header, else at line 1."""
        current: str | None = None
        header_line: tuple[int, int, int] | None = None
        wanted_header = ".".join(part for part in (section, key) if part)
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
            if header:
                current = re.sub(r"\s*\.\s*", ".", header.group(1)).replace('"', "")
                if current == wanted_header:
                    start = line.index("[") + 1
                    return ProjectProblem(message, number, start, len(line.rstrip()) + 1)
                if current == section and header_line is None:
                    header_line = (number, line.index("[") + 1, len(line.rstrip()) + 1)
                continue
            if key is None or current != section:
                continue
            assign = re.match(r'(\s*)("?)' + re.escape(key) + r"\2\s*=", line)
            if assign:
                start = len(assign.group(1)) + 1
                return ProjectProblem(message, number, start, start + len(key) + 2 * len(assign.group(2)))
        if header_line is not None:
            return ProjectProblem(message, *header_line)
        return ProjectProblem(message)

    def typed(self, table: Mapping[str, Any], section: str | None, key: str, kind: type[V], what: str) -> V | None:
        """``table[key]`` if it is absent or of type ``kind``; else a problem ("must be ``what``") and None."""
        value = table.get(key)
        if value is None or isinstance(value, kind):
            return value
        self.problem(f"'{key}' must be {what}", section, key)
        return None

    def table(self, doc: Mapping[str, Any], name: str, section: str | None) -> dict[str, Any] | None:
        return self.typed(doc, section, name, dict, f"a table ([{_join(section, name)}])")

    def string(self, table: Mapping[str, Any], section: str, key: str) -> str | None:
        return self.typed(table, section, key, str, "a string")

    def file(self, table: Mapping[str, Any], section: str, key: str) -> Path | None:
        value = self.string(table, section, key)
        if value is None:
            return None
        path = self.base / value
        if not path.exists():
            self.problem(f"{key}: no such file: {value} (paths are relative to {PROJECT_FILE})", section, key)
            return None
        return path

    def schemas(self, doc: Mapping[str, Any]) -> tuple[pa.Schema | None, dict[str, pa.Schema]]:
        table = self.table(doc, "schema", None)
        if table is None:
            return None, {}
        columns: list[pa.Field] = []
        related: dict[str, pa.Schema] = {}
        for name, value in table.items():
            if isinstance(value, dict):
                fields = [self.field(f"schema.{name}", column, kind) for column, kind in value.items()]
                related[name] = pa.schema([f for f in fields if f is not None])
            else:
                field = self.field("schema", name, value)
                if field is not None:
                    columns.append(field)
        return (pa.schema(columns) if columns else None), related

    def field(self, section: str, column: str, kind: Any) -> pa.Field | None:
        stype = _type_named(kind) if isinstance(kind, str) else None
        if stype is None:
            self.problem(
                f"'{column}': unknown type {kind!r} (int, float, decimal, string, bool, date, timestamp, "
                "duration, list<string> …)",
                section,
                column,
            )
            return None
        return pa.field(column, arrow_type(stype))


def _join(section: str | None, name: str) -> str:
    return f"{section}.{name}" if section else name


def _type_named(text: str) -> SType | None:
    """``int``, ``Float``, ``list<string>`` (the names ``param`` declarations use)."""
    match = re.fullmatch(r"\s*(\w+)\s*(?:<\s*(\w+)\s*>)?\s*", text)
    if not match:
        return None
    elem = None
    if match.group(2):
        elem = parse_type_name(match.group(2))
        if elem is None:
            return None
    return parse_type_name(match.group(1), elem)


_ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.decimal128(38, 9),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "duration": pa.duration("us"),
}


def arrow_type(stype: SType) -> pa.DataType:
    """An Arrow type segql reads as ``stype`` (timestamps in UTC)."""
    if stype.is_list and stype.elem is not None:
        return pa.list_(arrow_type(stype.elem))
    return _ARROW_TYPES[stype.kind]


def _toml_problem(exc: tomllib.TOMLDecodeError) -> ProjectProblem:
    message = str(exc)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if where:
        return ProjectProblem(f"invalid TOML: {message[: where.start()]}", int(where.group(1)), int(where.group(2)))
    where = re.search(r"\s*\(at end of document\)$", message)
    return ProjectProblem(f"invalid TOML: {message[: where.start()] if where else message}")


def _at_offset(data: bytes, offset: int, message: str) -> ProjectProblem:
    before = data[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return ProjectProblem(message, line, column)


__all__ = [
    "PROJECT_FILE",
    "LoadedProject",
    "Project",
    "ProjectCache",
    "ProjectProblem",
    "find_project_file",
    "load_project",
    "parse_project",
    "read_project",
]
