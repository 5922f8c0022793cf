"""One source, analysed for the editor: parsed declaration by declaration,
each checked on its own, every problem kept (not only the first).

* Parsing: the whole source first; if it does not parse, each top-level
  declaration (:func:`segql.editor.text.split`) is parsed alone, with the text
  before it blanked so positions stay those of the source.  A declaration
  that does not parse gives a syntax diagnostic; the others are checked.
* Checking: the declarations that parsed go to the checker's own parts
  (:class:`segql.check.Checker`): duplicates, cycles, every parameter default,
  the ``events`` declarations and each segment and feature are checked
  separately, so an error in one does not hide the errors of another.  A
  declaration that fails (or takes part in a cycle) counts as of type
  ``any`` for the others.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import attrs

from segql import ast, errors
from segql.check import Checker, DataSchema
from segql.check.declarations import check_param_default
from segql.check.model import Decl
from segql.editor.model import Diagnostic, EditorContext, Range
from segql.editor.text import Chunk, Lines, blanked, line_column_range, padded, significant, split, tokens
from segql.errors import CycleError, LimitError, SegqlError, SegqlSyntaxError
from segql.optimize import PassContext
from segql.optimize.fold_constants import fold_constants
from segql.parse import parse
from segql.plugins import PluginHost
from segql.span import Span
from segql.types import ANY

_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'\?")


_CODES: tuple[tuple[type[SegqlError], str], ...] = (
    (errors.SegqlSyntaxError, "syntax"),
    (errors.CycleError, "cycle"),
    (errors.SegqlNameError, "name"),
    (errors.SegqlTypeError, "type"),
    (errors.LimitError, "limit"),
    (errors.PluginError, "plugin"),
    (errors.ParameterError, "param"),
    (errors.DataError, "data"),
)
"""Diagnostic codes of the error classes (subclasses first)."""


def error_code(exc: SegqlError) -> str:
    """The diagnostic code of an error class."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return "error"


def suggestions_of(*texts: str | None) -> tuple[str, ...]:
    """The names proposed by "did you mean 'x'?" in a message or hint."""
    found: list[str] = []
    for text in texts:
        for m in _DID_YOU_MEAN.finditer(text or ""):
            if m.group(1) not in found:
                found.append(m.group(1))
    return tuple(found)


def diagnostic_of(exc: SegqlError, at: Range | None = None) -> Diagnostic:
    """A SegqlError as an error diagnostic (at its own position unless ``at``)."""
    rng = at or line_column_range(exc.line, exc.column, exc.end_line, exc.end_column)
    return Diagnostic(
        range=rng,
        severity="error",
        message=exc.message,
        hint=exc.hint,
        code=error_code(exc),
        suggestions=suggestions_of(exc.message, exc.hint),
    )


@attrs.frozen
class Parsed:
    """A declaration that parsed, and the chunk of text it came from (None
    when the whole source parsed)."""

    node: ast.Node
    chunk: Chunk | None = None


class Analysis:
    """Everything the services need to know about one source."""

    def __init__(self, source: str, ctx: EditorContext | None = None) -> None:
        if not isinstance(source, str):
            raise SegqlSyntaxError(f"source must be a str, got {type(source).__name__}")
        self.source = source
        self.ctx = ctx or EditorContext()
        self.host: PluginHost = self.ctx.host
        self.lines = Lines(source)
        self.chunks = split(source)
        self.diagnostics: list[Diagnostic] = []
        self.decls: list[ast.Node] = []
        """Declarations that parsed, in file order."""
        self.bare = False
        self.syntax_ok = False
        self.bound: dict[str, ast.Node] = {}
        """Bound trees of the user's segments and features that checked."""
        self.failed: set[str] = set()
        self.symbols: Any = None
        """The source's symbols, once computed (``segql.editor.symbols.symbols_of``)."""
        self.broken_chunks: list[Chunk] = []
        """Declarations that do not parse."""
        self.repaired: list[ast.Node] = []
        """Those of them that parse once cut at the error and closed (for
        navigation and hover only: they are not checked)."""
        self._parse()

    # ------------------------------------------------------------- parsing
    def _parse(self) -> None:
        source = self.source
        if not self.chunks:
            return  # nothing but spaces and comments
        try:
            tree = parse(source)
        except SegqlError as exc:
            if isinstance(exc, LimitError) or not self.chunks:
                self.diagnostics.append(diagnostic_of(exc))
                return
            self._parse_chunks(exc)
            return
        self.syntax_ok = True
        self.bare = tree.bare
        self.decls = list(tree.decls)

    def _parse_chunks(self, whole: SegqlError) -> None:
        has_decls = any(c.keyword for c in self.chunks)
        self._blank = blanked(self.source)
        for chunk in self.chunks:
            if not chunk.keyword and has_decls:
                # Text before the first declaration: the whole parse's error if it lies there.
                rng = line_column_range(whole.line, whole.column, whole.end_line, whole.end_column)
                inside = self.lines.offset(rng.start) < chunk.end
                self.diagnostics.append(
                    diagnostic_of(whole)
                    if inside
                    else Diagnostic(
                        range=self.lines.range(chunk.start, _trimmed_end(self.source, chunk)),
                        severity="error",
                        message="expected a declaration (segment, feature, param or events)",
                        hint="a file either is one expression or holds declarations only",
                        code="syntax",
                    )
                )
                continue
            try:
                tree = parse(padded(self.source, chunk.start, chunk.end, self._blank))
            except SegqlError as exc:
                self.diagnostics.append(diagnostic_of(exc))
                self.broken_chunks.append(chunk)
                self._repair(chunk, exc)
                continue
            if not chunk.keyword:
                self.bare = tree.bare
            self.decls.extend(tree.decls)

    def _repair(self, chunk: Chunk, exc: SegqlError) -> None:
        """Parse the declaration cut where the error is, with its open
        brackets and ``case`` closed, so the names before the error can be
        navigated to and hovered."""
        if not chunk.keyword or exc.line is None:
            return
        at = self.lines.offset(line_column_range(exc.line, exc.column, None, None).start)
        cut = min(max(at, chunk.start), chunk.end)
        closers = []
        for tok in significant(tokens(self.source, chunk.start, cut)):
            if tok.text in ("(", "["):
                closers.append(")" if tok.text == "(" else "]")
            elif tok.lower == "case":
                closers.append(" when null then null end")
            elif tok.text in (")", "]") and closers and closers[-1] == tok.text:
                closers.pop()
        tail = "".join(reversed(closers))
        text = self.source[:cut]
        for filler in ("", " null", " = null", " null = null"):
            try:
                tree = parse(padded(text + filler + tail, chunk.start, cut + len(filler) + len(tail), self._blank))
            except SegqlError:
                continue
            self.repaired.extend(tree.decls)
            return

    # ------------------------------------------------------------ checking
    def check(self) -> None:
        """Check the declarations that parsed, collecting every problem."""
        if not self.decls:
            return
        try:
            schema = self.ctx.data_schema()
        except SegqlError as exc:
            self.diagnostics.append(diagnostic_of(exc, Range(self.lines.position(0), self.lines.position(0))))
            schema = DataSchema()
        decls = self._unique_decls()
        source_file = ast.SourceFile(decls=tuple(decls), bare=self.bare)
        broken: dict[str, Span] = {}
        checker: Checker | None = None
        for _ in range(len(decls) + 1):
            checker = self._checker(source_file, schema, broken)
            if checker is None:
                return
            try:
                order = checker.evaluation_order()
                break
            except CycleError as exc:
                self.diagnostics.append(diagnostic_of(exc))
                culprit = self._containing_decl(decls, exc)
                if culprit is None or culprit in broken:
                    return
                broken[culprit] = Span()
        else:  # pragma: no cover - each round breaks one more declaration
            return
        assert checker is not None
        self._check_rest(checker, order, set(broken))

    def _checker(self, source_file: ast.SourceFile, schema: DataSchema, broken: dict[str, Span]) -> Checker | None:
        if broken:
            decls = []
            for d in source_file.decls:
                if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl)) and d.name in broken:
                    d = attrs.evolve(d, expr=ast.Column(name=d.name, type=ANY, span=d.expr.span))
                decls.append(d)
            source_file = attrs.evolve(source_file, decls=tuple(decls))
        try:
            return Checker(
                source_file,
                self.host,
                fold=self._fold,
                source=self.source,
                schema=schema,
                max_aggregates=10**9,
            )
        except SegqlError as exc:  # pragma: no cover - duplicates are removed before
            self.diagnostics.append(diagnostic_of(exc))
            return None

    def _fold(self, node: ast.Node) -> ast.Node:
        return fold_constants(node, PassContext(functions=self.host.functions))

    def _unique_decls(self) -> list[ast.Node]:
        """The declarations without repeated names (each repeat is a diagnostic,
        worded as the checker words it)."""
        seen: dict[tuple[str, str], ast.Node] = {}
        out: list[ast.Node] = []
        for decl in self.decls:
            key, span, message, hint = _identity(self.source, decl)
            previous = seen.get(key)
            if previous is None:
                seen[key] = decl
                out.append(decl)
                continue
            if (
                isinstance(previous, (ast.SegmentDecl, ast.FeatureDecl))
                and isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
                and previous.name != decl.name
            ):
                message = message.replace("is already declared", f"differs from '{previous.name}' only in case")
            self.diagnostics.append(
                Diagnostic(
                    range=self.lines.span(span),
                    severity="error",
                    message=f"{message} (line {previous.span.line})",
                    hint=hint,
                    code="name",
                )
            )
        return out

    def _containing_decl(self, decls: list[ast.Node], exc: SegqlError) -> str | None:
        """The segment or feature whose text holds the error's position."""
        if exc.line is None or exc.column is None:
            return None
        offset = self.lines.offset(line_column_range(exc.line, exc.column, None, None).start)
        for d in decls:
            if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl)) and d.span.start <= offset <= d.span.end:
                return d.name
        return None

    def _check_rest(self, ck: Checker, order: list[str], broken: set[str]) -> None:
        decls = ck.declarations
        tables = ck.names.related_tables
        try:
            ck.events.check(ck, sorted(tables.names) if tables is not None else None, ck.top)
        except SegqlError as exc:
            self.diagnostics.append(diagnostic_of(exc))
        for name, pdecl in decls.param_decls.items():
            ck.names.param_types[name] = pdecl.declared
            if pdecl.default is not None:
                try:
                    check_param_default(ck, pdecl, ck.top)
                except SegqlError as exc:
                    self.diagnostics.append(diagnostic_of(exc))
        for name in order:
            d = decls.get(name)
            if name in broken:
                self.failed.add(name)
                decls.types[name] = ANY
                continue
            try:
                expr = ck.bind_declaration(d)
            except SegqlError as exc:
                self.failed.add(name)
                decls.types[name] = ANY
                if d.source is None:
                    self.diagnostics.append(diagnostic_of(exc))
                else:
                    self._pack_error(ck, d, exc)
                continue
            decls.types[name] = expr.type or ANY
            if d.source is None:
                self.bound[name] = expr

    def _pack_error(self, ck: Checker, d: Decl, exc: SegqlError) -> None:
        """A pack declaration that fails against this data: reported where the source uses it."""
        use = ck.declarations.library_uses.get(d.name)
        if use is None:  # used by another pack declaration: where the source uses a pack's
            uses = [span for decl in ck.declarations.decls.values() for dep, span in decl.deps if dep == d.name]
            uses += list(ck.declarations.library_uses.values())
            use = uses[0] if uses else None
        start = Range(self.lines.position(0), self.lines.position(0))
        where = self.lines.span(use) if use is not None and use.known else start
        self.diagnostics.append(
            Diagnostic(
                range=where,
                severity="error",
                message=exc.message,
                hint=exc.hint,
                code=error_code(exc),
            )
        )

    # ------------------------------------------------------------- queries
    def user_decls(self, repaired: bool = False) -> Iterator[ast.SegmentDecl | ast.FeatureDecl]:
        """The segments and features that parsed (with ``repaired``, and those that parse once repaired)."""
        for d in self.all_decls() if repaired else self.decls:
            if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl)):
                yield d

    def all_decls(self) -> list[ast.Node]:
        """The declarations that parsed and the repaired ones, in file order."""
        return sorted([*self.decls, *self.repaired], key=lambda d: d.span.start)

    def param_decls(self) -> Iterator[ast.ParamDecl]:
        for d in self.all_decls():
            if isinstance(d, ast.ParamDecl):
                yield d


_CACHE: OrderedDict[tuple[str, int], tuple[EditorContext | None, Analysis]] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def analyse(source: str, ctx: EditorContext | None) -> Analysis:
    """The checked analysis of ``source`` in ``ctx``, from a small cache: an
    editor asks for diagnostics, then hover, completion or actions on the same
    text (the context is compared by identity)."""
    key = (source, id(ctx))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] is ctx:
            _CACHE.move_to_end(key)
            return hit[1]
    analysis = Analysis(source, ctx)
    analysis.check()
    with _CACHE_LOCK:
        _CACHE[key] = (ctx, analysis)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return analysis


def _identity(source: str, decl: ast.Node) -> tuple[tuple[str, str], Span, str, str | None]:
    """What makes a declaration unique (namespace, lower-case name), where its
    name is written, and the error when it is repeated."""
    if isinstance(decl, ast.ParamDecl):
        return (
            ("param", decl.name.lower()),
            param_name_span(source, decl),
            f"parameter ${decl.name} is already declared",
            None,
        )
    if isinstance(decl, ast.EventsDecl):
        return (
            ("events", decl.table.lower()),
            decl.span,
            f"events of {decl.table} are already declared",
            "a table has one event time",
        )
    assert isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
    kind = "segment" if isinstance(decl, ast.SegmentDecl) else "feature"
    return (
        ("decl", decl.name.lower()),
        decl.name_span,
        f"{kind} '{decl.name}' is already declared",
        "names of segments and features must be unique",
    )


_PARAM_NAME = re.compile(r"param\s+([^\W\d]\w*)", re.I)


def param_name_span(source: str, decl: ast.ParamDecl) -> Span:
    """Where the name of a ``param`` declaration is written (offsets only)."""
    m = _PARAM_NAME.match(source, decl.span.start)
    if m is None:  # pragma: no cover - the grammar puts the name right after the keyword
        return decl.span
    start, end = m.span(1)
    return Span(start, end, decl.span.line, 1, decl.span.line, 1)


def _trimmed_end(source: str, chunk: Chunk) -> int:
    end = chunk.end
    while end > chunk.start and source[end - 1].isspace():
        end -= 1
    return end
