"""The declarations of a file: parameters, features and segments (and the
pack declarations it uses, loaded on first use); duplicates, the evaluation
order (references first, any declaration order allowed) and cycles."""

from __future__ import annotations

from collections.abc import Iterator

from segql import ast
from segql.check.aggregates import is_aggregate_call
from segql.check.index import NameIndex
from segql.check.model import Catalog, Decl
from segql.check.scope import Binder, Scope
from segql.errors import CycleError, SegqlNameError, SegqlTypeError
from segql.span import Span
from segql.types import ANY, SType


class Declarations:
    """The file's declarations, and the pack declarations it uses."""

    def __init__(self, source_file: ast.SourceFile, catalog: Catalog, scope: Scope) -> None:
        self.catalog = catalog
        self.source = scope.text
        self.decls: dict[str, Decl] = {}
        self.library_decls: dict[str, Decl] = {}
        self.library_uses: dict[str, Span] = {}
        """Where the user's source first uses each pack declaration."""
        self.param_decls: dict[str, ast.ParamDecl] = {}
        self.events: list[ast.EventsDecl] = []
        """The ``events … by`` declarations, in file order."""
        self.types: dict[str, SType] = {}
        """The type of each declaration bound so far."""
        self._collect(source_file, scope)
        self.index = NameIndex(self.decls)
        self.param_index = NameIndex(self.param_decls)

    def _collect(self, source_file: ast.SourceFile, scope: Scope) -> None:
        seen_lower: dict[str, tuple[str, ast.Node]] = {}
        seen_params: dict[str, ast.ParamDecl] = {}
        for decl in source_file.decls:
            if isinstance(decl, ast.ParamDecl):
                other = seen_params.get(decl.name.lower())
                if other is not None:
                    raise scope.error(
                        SegqlNameError,
                        f"parameter ${decl.name} is already declared (line {other.span.line})",
                        decl,
                    )
                seen_params[decl.name.lower()] = decl
                self.param_decls[decl.name] = decl
                continue
            if isinstance(decl, ast.EventsDecl):
                self.events.append(decl)
                continue
            assert isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
            kind = "segment" if isinstance(decl, ast.SegmentDecl) else "feature"
            previous = seen_lower.get(decl.name.lower())
            if previous is not None:
                prev_name, prev_node = previous
                same = "is already declared" if prev_name == decl.name else f"differs from '{prev_name}' only in case"
                raise SegqlNameError(
                    f"{kind} '{decl.name}' {same} (line {prev_node.span.line})",
                    span=decl.name_span,
                    source=self.source,
                    hint="names of segments and features must be unique",
                )
            seen_lower[decl.name.lower()] = (decl.name, decl)
            self.decls[decl.name] = Decl(decl.name, kind, decl.expr)

    def get(self, name: str) -> Decl:
        """The file's or a loaded pack's declaration ``name``."""
        return self.decls[name] if name in self.decls else self.library_decls[name]

    def library_decl(self, dotted: str) -> Decl | None:
        """The pack declaration ``dotted`` names (loaded on first use), if any."""
        entry = self.catalog.library.get(dotted)
        if entry is None:
            return None
        decl = self.library_decls.get(entry.name)
        if decl is None:
            decl = Decl(entry.name, entry.kind, entry.expr, source=entry.source, source_name=entry.source_name)
            self.library_decls[entry.name] = decl
            decl.deps = self._dependencies(decl)
        return decl

    def _dependencies(self, decl: Decl) -> list[tuple[str, Span]]:
        """Declarations referenced by ``decl`` (outside aggregates)."""
        deps: list[tuple[str, Span]] = []
        stack: list[ast.Node] = [decl.expr]
        while stack:
            node = stack.pop()
            if is_aggregate_call(node, self.catalog.functions) or isinstance(node, ast.Sequence):
                continue  # names inside are columns of related tables
            if isinstance(node, ast.Name) and not node.quoted:
                if len(node.parts) == 1 and decl.source is None:
                    found = self.index.find(node.parts[0])
                    if isinstance(found, str):
                        deps.append((found, node.span))
                elif len(node.parts) == 2:
                    target = self.library_decl(node.dotted)
                    if target is not None:
                        deps.append((target.name, node.span))
                        if decl.source is None:
                            self.library_uses.setdefault(target.name, node.span)
            stack.extend(ast.children(node))
        return deps

    def evaluation_order(self) -> list[str]:
        """Features and segments (the file's and the packs' it uses), references
        first; raises CycleError."""
        for d in self.decls.values():
            d.deps = self._dependencies(d)
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in self.decls:
            if state.get(root):
                continue
            path: list[str] = [root]
            iters: list[Iterator[tuple[str, Span]]] = [iter(self.decls[root].deps)]
            state[root] = 1
            while path:
                nxt = next(iters[-1], None)
                if nxt is None:
                    state[path[-1]] = 2
                    order.append(path.pop())
                    iters.pop()
                    continue
                dep, span = nxt
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep]
                    kinds = {self.get(n).kind for n in cycle}
                    what = " and ".join(sorted(f"{k}s" for k in kinds))
                    raise CycleError(
                        f"{what} refer to each other in a cycle: {' -> '.join(cycle)}",
                        span=span,
                        source=self.source,
                        hint="break the cycle by removing one of these references",
                    )
                if state.get(dep) == 2:
                    continue
                state[dep] = 1
                path.append(dep)
                iters.append(iter(self.get(dep).deps))
        return order


def check_param_default(ck: Binder, decl: ast.ParamDecl, scope: Scope) -> ast.Node:
    """The bound default of a declared parameter: a constant of its declared type."""
    assert decl.default is not None
    for node in ast.walk(decl.default):
        if isinstance(node, (ast.Name, ast.Call, ast.Param, ast.Now, ast.Today)):
            raise scope.error(
                SegqlTypeError,
                f"the default of ${decl.name} must be a constant (a literal or a list of literals)",
                node,
            )
    bound = ck.bind(decl.default, scope)
    t = bound.type or ANY
    target = decl.declared
    ok = (
        t == target
        or t.is_null
        or (target.kind == "float" and t.is_numeric)
        or (target.kind == "decimal" and t.kind in ("int", "decimal"))
        or (target.kind == "timestamp" and t.is_temporal)
        or (target.is_list and t.is_list and (t.elem is None or t.elem.is_null or _elem_ok(target, t)))
    )
    if not ok:
        raise scope.error(
            SegqlTypeError,
            f"the default of ${decl.name} is {t}, but the parameter is declared {target}",
            decl.default,
        )
    return bound


def _elem_ok(target: SType, t: SType) -> bool:
    te, ve = target.elem, t.elem
    if te is None or ve is None:
        return True
    return te == ve or (te.kind == "float" and ve.is_numeric) or (te.kind == "decimal" and ve.kind == "int")
