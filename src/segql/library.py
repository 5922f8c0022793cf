"""Ready-made segments and features written in segql, and the names packs expect.

A pack registers segql source through :class:`Library` (hook
``segql_register_library``).  Its segments and features become
``<pack>.<name>`` and can be used by name in any segment file::

    segment loyal_pl = ecommerce.champions and country = "PL"

Inside a pack's source, the pack's own declarations are written bare (they are
qualified at registration) and functions by their full name.

A pack declares *conventions* (hook ``segql_register_conventions``): the related
tables and columns its expressions read, with their default names.  A host
whose data uses other names renames them (``PluginHost(conventions=...)``);
the renaming is applied to the pack's parsed expressions — function defaults
and library declarations — never to text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from segql import ast
from segql.aggregates import BUILTIN_AGGREGATES
from segql.errors import PluginError, SegqlError
from segql.parse import parse


@attrs.frozen
class LibraryEntry:
    """One segment or feature provided by a pack."""

    name: str  # qualified: "ecommerce.champions"
    pack: str
    kind: str  # "segment" | "feature"
    description: str | None
    expr: ast.Node
    source: str
    source_name: str


@attrs.frozen
class Convention:
    pack: str
    name: str  # "orders" (a related table), "orders.amount" (its column), "age" (a profile column)
    kind: str  # "table" | "column"
    doc: str


class Library:
    """Where ``segql_register_library`` implementations add segql source."""

    def __init__(self) -> None:
        self._entries: dict[str, LibraryEntry] = {}
        self.current_pack = "segql"

    def add(self, source: str) -> None:
        """Add the segments and features of a segql source (no ``param`` declarations)."""
        pack = self.current_pack
        source_name = f"pack {pack}"
        try:
            tree = parse(source, source_name=source_name)
        except SegqlError as exc:
            raise PluginError(f"pack {pack!r} registers invalid segql: {exc}", pack=pack) from None
        if tree.bare:
            raise PluginError(f"pack {pack!r} must declare named segments or features", pack=pack)
        own = {d.name for d in tree.decls if isinstance(d, (ast.SegmentDecl, ast.FeatureDecl))}
        for decl in tree.decls:
            if isinstance(decl, ast.ParamDecl):
                raise PluginError(f"pack {pack!r}: library sources cannot declare parameters (${decl.name})", pack=pack)
            assert isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl))
            qualified = f"{pack}.{decl.name}"
            if qualified.lower() in {k.lower() for k in self._entries}:
                raise PluginError(f"pack {pack!r} registers {qualified} twice", pack=pack)
            self._entries[qualified] = LibraryEntry(
                name=qualified,
                pack=pack,
                kind="segment" if isinstance(decl, ast.SegmentDecl) else "feature",
                description=decl.description,
                expr=qualify(decl.expr, own, pack),
                source=source,
                source_name=source_name,
            )

    def get(self, name: str) -> LibraryEntry | None:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        matches = [e for k, e in self._entries.items() if k.lower() == name.lower()]
        return matches[0] if len(matches) == 1 else None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def remove_pack(self, pack: str) -> None:
        for name in [n for n, e in self._entries.items() if e.pack == pack]:
            del self._entries[name]

    def rename(self, pack: str, mapping: Mapping[str, str]) -> None:
        """Apply a host's convention renames to one pack's declarations."""
        for name, entry in list(self._entries.items()):
            if entry.pack == pack:
                self._entries[name] = attrs.evolve(entry, expr=rename(entry.expr, mapping))

    def __iter__(self) -> Iterator[LibraryEntry]:
        return iter(self._entries[k] for k in sorted(self._entries))


class Conventions:
    """Where ``segql_register_conventions`` implementations declare names."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Convention] = {}
        self.current_pack = "segql"

    def add(self, name: str, *, kind: str, doc: str = "") -> None:
        """Declare a related table (``kind="table"``, e.g. ``"orders"``) or a column
        (``kind="column"``: ``"orders.amount"`` of a related table, or ``"age"``
        of the profile table) that the pack's expressions read."""
        pack = self.current_pack
        if kind not in ("table", "column"):
            raise PluginError(f"pack {pack!r}: convention kind must be 'table' or 'column', not {kind!r}", pack=pack)
        parts = name.split(".")
        well_formed = all(p.isidentifier() for p in parts) and len(parts) <= (1 if kind == "table" else 2)
        if not well_formed:
            raise PluginError(f"pack {pack!r}: bad convention name {name!r}", pack=pack)
        self._items[(pack, name)] = Convention(pack=pack, name=name, kind=kind, doc=doc)

    def of(self, pack: str) -> list[Convention]:
        return [c for (p, _), c in sorted(self._items.items()) if p == pack]

    def remove_pack(self, pack: str) -> None:
        for key in [k for k in self._items if k[0] == pack]:
            del self._items[key]

    def __iter__(self) -> Iterator[Convention]:
        return iter(self._items[k] for k in sorted(self._items))


def _is_aggregate(node: ast.Node) -> bool:
    return isinstance(node, ast.Call) and len(node.name) == 1 and node.name[0].lower() in BUILTIN_AGGREGATES


def qualify(expr: ast.Node, own: set[str], pack: str) -> ast.Node:
    """Bare references to the pack's own declarations become ``pack.name``."""

    def visit(node: ast.Node) -> ast.Node:
        if _is_aggregate(node):
            return node  # inside aggregates, names are related-table columns
        if isinstance(node, ast.Name) and not node.quoted and len(node.parts) == 1 and node.parts[0] in own:
            return attrs.evolve(node, parts=(pack, node.parts[0]))
        return ast.map_children(node, visit)

    return visit(expr)


def rename(expr: ast.Node, mapping: Mapping[str, str]) -> ast.Node:
    """Rename related tables, their columns and profile columns in a pack's
    expression.  ``mapping`` keys are convention names (``"orders"``,
    ``"orders.amount"``, ``"age"``); values are the host's names (for a column
    of a related table, just the column name)."""

    def column(table: str | None, col: str) -> str:
        return mapping.get(f"{table}.{col}" if table is not None else col, col)

    def inside(node: ast.Node, table: str) -> ast.Node:
        """Within an aggregate over ``table``: bare and qualified column names."""
        if isinstance(node, ast.Name) and not node.quoted:
            if len(node.parts) == 2 and node.parts[0] == table:
                return attrs.evolve(node, parts=(mapping.get(table, table), column(table, node.parts[1])))
            if len(node.parts) == 1:
                return attrs.evolve(node, parts=(column(table, node.parts[0]),))
        return ast.map_children(node, lambda child: inside(child, table))

    def visit(node: ast.Node) -> ast.Node:
        if isinstance(node, ast.Call) and _is_aggregate(node):
            table = _aggregate_table(node)
            if table is None:
                return node
            args = tuple(
                # count(orders …) / exists(orders …): the table itself
                attrs.evolve(a, parts=(mapping.get(table, table),))
                if isinstance(a, ast.Name) and a.parts == (table,)
                else inside(a, table)
                for a in node.args
            )
            by = inside(node.by, table) if node.by is not None else None
            where = inside(node.where, table) if node.where is not None else None
            return attrs.evolve(node, args=args, by=by, where=where)
        if isinstance(node, ast.Name) and not node.quoted and len(node.parts) == 1:
            return attrs.evolve(node, parts=(column(None, node.parts[0]),))
        return ast.map_children(node, visit)

    return visit(expr)


def _aggregate_table(call: ast.Call) -> str | None:
    """The related table an aggregate call reads, as written."""
    for arg in call.args:
        if isinstance(arg, ast.Name) and len(arg.parts) == 1:
            return arg.parts[0]
        for node in ast.walk(arg):
            if isinstance(node, ast.Name) and len(node.parts) == 2:
                return node.parts[0]
    return None
