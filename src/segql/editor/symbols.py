"""Segments, features and parameters of a source, and every place each is
written: what go-to-definition, find-references, rename and hover use.

A bare name outside an aggregate or a sequence that matches a segment or
feature of the file (exactly, else case-insensitively when that is
unambiguous -- the checker's rule) is a reference to it; ``$name`` is a
reference to the parameter of that name (declared or not).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from segql import ast
from segql.check import NameIndex, is_aggregate_call
from segql.editor.analysis import Analysis, param_name_span
from segql.registry import FunctionRegistry


@attrs.frozen
class Occurrence:
    """One place a symbol is written: ``start``/``end`` are offsets of its
    name (for a parameter, without the ``$``)."""

    key: tuple[str, str]
    """(kind, name): kind is "decl" for segments and features, "param" for parameters."""
    start: int
    end: int
    declaration: bool


@attrs.frozen
class Symbol:
    key: tuple[str, str]
    name: str
    kind: str  # segment | feature | param
    node: ast.Node | None
    """The declaration (None for a parameter used without a declaration)."""


class Symbols:
    """The symbols of an analysed source and their occurrences."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        functions = analysis.host.functions
        self.symbols: dict[tuple[str, str], Symbol] = {}
        self.occurrences: list[Occurrence] = []
        decls: dict[str, ast.SegmentDecl | ast.FeatureDecl] = {}
        lowered: set[str] = set()
        for d in analysis.user_decls(repaired=True):
            if d.name.lower() not in lowered and not analysis.bare:
                decls[d.name] = d
                lowered.add(d.name.lower())
        self.decl_index = NameIndex(decls)
        params: dict[str, ast.ParamDecl] = {}
        for p in analysis.param_decls():
            if p.name.lower() not in {n.lower() for n in params}:
                params[p.name] = p
        self.param_index = NameIndex(params)
        for name, d in decls.items():
            kind = "segment" if isinstance(d, ast.SegmentDecl) else "feature"
            key = ("decl", name)
            self.symbols[key] = Symbol(key, name, kind, d)
        for name, p in params.items():
            key = ("param", name)
            self.symbols[key] = Symbol(key, name, "param", p)
        for node in analysis.all_decls():
            if isinstance(node, (ast.SegmentDecl, ast.FeatureDecl)):
                if decls.get(node.name) is node and node.name_span.known:
                    name_span = node.name_span
                    self.occurrences.append(Occurrence(("decl", node.name), name_span.start, name_span.end, True))
                self._scan(node.expr, functions)
            elif isinstance(node, ast.ParamDecl):
                if params.get(node.name) is node:
                    span = param_name_span(analysis.source, node)
                    self.occurrences.append(Occurrence(("param", node.name), span.start, span.end, True))
                if node.default is not None:
                    self._scan(node.default, functions)
        self.occurrences.sort(key=lambda o: o.start)

    def _scan(self, root: ast.Node, functions: FunctionRegistry) -> None:
        stack: list[tuple[ast.Node, bool]] = [(root, False)]
        while stack:
            node, inside = stack.pop()
            if isinstance(node, ast.Param):
                self._param(node)
            elif isinstance(node, ast.Name) and not inside and not node.quoted and len(node.parts) == 1:
                found = self.decl_index.find(node.parts[0])
                if isinstance(found, str) and node.span.known:
                    self.occurrences.append(Occurrence(("decl", found), node.span.start, node.span.end, False))
            nested = inside or isinstance(node, ast.Sequence) or is_aggregate_call(node, functions)
            stack.extend((child, nested) for child in ast.children(node))

    def _param(self, node: ast.Param) -> None:
        if not node.span.known:
            return
        found = self.param_index.find(node.name)
        name = found if isinstance(found, str) else node.name
        key = ("param", name)
        if key not in self.symbols:
            self.symbols[key] = Symbol(key, name, "param", None)
        self.occurrences.append(Occurrence(key, node.span.start + 1, node.span.end, False))

    # ------------------------------------------------------------- queries
    def at(self, offset: int) -> Occurrence | None:
        """The occurrence under ``offset`` (its end included)."""
        for occ in self.occurrences:
            if occ.start <= offset <= occ.end:
                return occ
        return None

    def of(self, key: tuple[str, str]) -> Iterator[Occurrence]:
        return (o for o in self.occurrences if o.key == key)

    def declaration(self, key: tuple[str, str]) -> Occurrence | None:
        return next((o for o in self.of(key) if o.declaration), None)

    def names(self) -> set[str]:
        return {s.name.lower() for s in self.symbols.values() if s.key[0] == "decl"}


def symbols_of(analysis: Analysis) -> Symbols:
    """The symbols of an analysis (computed once)."""
    if not isinstance(analysis.symbols, Symbols):
        analysis.symbols = Symbols(analysis)
    return analysis.symbols
