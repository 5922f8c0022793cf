"""The import graph of segql and its packs has no cycle (docs/architecture.md).

The graph is read from the source (the AST of every module), not from
``sys.modules``: an import counts wherever it is written -- at the top of the
module or inside a function -- so a function-level import cannot hide a
cycle.  Only imports under ``if TYPE_CHECKING:`` are left out (they never run).
Importing ``segql.a.b`` also runs the package ``segql.a`` (its ``__init__``),
so that edge counts too -- except from a module inside ``segql.a``, for which
the package is already being imported.

Function-level imports are allowed only where listed below, each with its
reason (lazy loading of optional or heavy dependencies, the CLI's
subcommands); a new one fails the test until it is listed or moved to the top.
"""

from __future__ import annotations

import ast
import itertools
import types
from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest

import segql
from segql import ast as tree
from segql.check import DataSchema, check_program
from segql.optimize import PassContext
from segql.optimize.fold_constants import fold_constants
from segql.parse import parse
from segql.types import FLOAT

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = (ROOT / "src", *sorted((ROOT / "plugins").glob("*/src")))

LAZY_DEPENDENCIES = (
    "pyspark",  # optional (segql[spark]); starts a JVM
    "sqlglot",  # only for to_sql in a dialect other than DuckDB's
    "duckdb",  # optional
    "pyarrow.parquet",  # input formats, loaded when a file of that format is read
    "pyarrow.csv",
    "pyarrow.feather",
    "pyarrow.json",
    "pyarrow.dataset",
    "matplotlib",  # optional (segql[plot]): Counts plots and `segql count --plot`, drawn only when asked for
    "polars",  # optional: Counts/Attrition.to_polars, only when asked for
)
"""Optional or heavy dependencies any module may import inside a function."""

ALLOWED_FUNCTION_IMPORTS: dict[tuple[str, str], str] = {
    ("segql", "segql.program"): "`import segql` loads no pyarrow: compile, Program… on first use (decisions 227)",
    ("segql", "segql.plugins"): "`import segql` loads no pyarrow: PluginHost, PackInfo on first use (decisions 227)",
    ("segql", "segql.engines.sql.dialects"): "`import segql`: SQL_DIALECTS on first use (decisions 227)",
    ("segql", "segql.hookspecs"): "`import segql` loads no pluggy: hookimpl on first use (decisions 227)",
    ("segql", "segql.limits"): "`import segql` loads no pyarrow: Limits on first use (decisions 227)",
    ("segql", "segql.params"): "`import segql` loads no pyarrow: Duration on first use (decisions 227)",
    ("segql", "importlib"): "stdlib: `segql.<module>` as an attribute, imported on first use (decisions 227)",
    ("segql.cli", "segql.commands"): "`segql --version`, `--help` and usage errors load no pyarrow (decisions 226)",
    ("segql.cliio", "segql.explain"): "the CLI's value display, loaded when rows are shown (startup time)",
    ("segql.commands", "segql.spark"): "CLI subcommand, lazily (pyspark is optional)",
    ("segql.commands", "segql.format"): "CLI subcommand, lazily",
    ("segql.commands", "segql.demo"): "CLI subcommand, lazily",
    ("segql.commands", "segql.lsp"): "`segql lsp` only: pygls is an optional dependency (segql[lsp])",
    ("segql.commands", "segql.serve.app"): "`segql serve` only: starlette is an optional dependency (segql[serve])",
    ("segql.commands", "segql.serve.server"): "`segql serve` only: uvicorn is an optional dependency (segql[serve])",
    ("segql.engines.spark", "os"): "stdlib, only when a local Spark session starts",
    ("segql.engines.spark", "sys"): "stdlib, only when a local Spark session starts",
    ("segql.engines.arrow.temporal", "calendar"): "stdlib, one month-arithmetic helper",
}
"""Function-level imports of segql's own modules (and the standard library), by
(importing module, imported module)."""


@attrs.frozen
class Import:
    importer: str
    target: str
    path: Path
    line: int
    in_function: bool


def _modules(roots: Iterable[Path]) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's __init__)."""
    found: dict[str, tuple[Path, bool]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join(parts)] = (path, is_package)
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, is_package: bool, modules: dict[str, tuple[Path, bool]]) -> list[Import]:
    """Every import statement of a module (outside TYPE_CHECKING blocks), each
    resolved to the module it names: ``from a import b`` names ``a.b`` when
    that is a module, else ``a``."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child.test):
                for other in child.orelse:
                    visit_one(other, in_function)
                continue
            visit_one(child, in_function)

    def visit_one(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, path, node.lineno, in_function))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                if node.level > 1:
                    parts = parts[: -(node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(Import(name, full if full in modules else base, path, node.lineno, in_function))
        visit(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def import_graph(roots: Iterable[Path]) -> tuple[dict[str, dict[str, Import]], list[Import]]:
    """The graph between the modules under ``roots`` (each edge with the
    import that makes it), and every import statement found."""
    modules = _modules(roots)
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    statements: list[Import] = []
    for name, (path, is_package) in modules.items():
        for imp in _imports(name, path, is_package, modules):
            statements.append(imp)
            parts = imp.target.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                implied = i < len(parts)  # a package run because a module inside it is imported
                if target not in modules or target == name:
                    continue
                if implied and name.startswith(target + "."):
                    continue  # the importer's own package: already being imported
                graph[name].setdefault(target, imp)
    return graph, statements


def find_cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) per strongly
    connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        # Tarjan's algorithm, iteratively.
        work: list[tuple[str, list[str]]] = [(start, list(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, list(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, dict[str, Import]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module (by name) of a component."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*paths[node], start]
            if nxt in component and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError("a strongly connected component without a cycle")  # pragma: no cover


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()


def describe_cycle(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    lines = []
    for a, b in itertools.pairwise(cycle):
        imp = graph[a][b]
        where = "inside a function" if imp.in_function else "at top level"
        lines.append(f"  {a} -> {b}   ({_shown(imp.path)}:{imp.line}, {where})")
    return " -> ".join(cycle) + "\n" + "\n".join(lines)


def test_no_import_cycles() -> None:
    graph, _ = import_graph(SOURCE_ROOTS)
    assert "segql.check" in graph and "segql.registry" in graph  # the graph covers segql
    assert any(name.startswith("segql_") for name in graph)  # and the packs
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n\n".join(describe_cycle(graph, c) for c in cycles)


def test_function_level_imports_are_listed() -> None:
    _, statements = import_graph(SOURCE_ROOTS)
    unlisted = sorted(
        f"{_shown(s.path)}:{s.line}: import of {s.target}"
        for s in statements
        if s.in_function
        and (s.importer, s.target) not in ALLOWED_FUNCTION_IMPORTS
        and not any(s.target == dep or s.target.startswith(dep + ".") for dep in LAZY_DEPENDENCIES)
    )
    assert not unlisted, (
        "function-level imports not listed in ALLOWED_FUNCTION_IMPORTS (move them to the top of the module, "
        "or list them with the reason they are lazy):\n" + "\n".join(unlisted)
    )


def test_allowed_function_imports_still_exist() -> None:
    _, statements = import_graph(SOURCE_ROOTS)
    present = {(s.importer, s.target) for s in statements if s.in_function}
    stale = sorted(set(ALLOWED_FUNCTION_IMPORTS) - present)
    assert not stale, f"listed function-level imports that no longer exist (remove them from the list): {stale}"


# --------------------------------------------------------------- the detector
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_detector_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "def f():\n    from pkg.high import g\n    return g\n",
            "pkg/high.py": "from pkg import low\n\ndef g():\n    return low\n",
        },
    )
    graph, statements = import_graph([tmp_path])
    assert find_cycles(graph) == [["pkg.high", "pkg.low", "pkg.high"]]
    assert [(s.importer, s.target) for s in statements if s.in_function] == [("pkg.low", "pkg.high")]
    text = describe_cycle(graph, find_cycles(graph)[0])
    assert "inside a function" in text and "pkg/low.py:2" in text


def test_detector_counts_the_package_init_and_ignores_type_checking(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub.leaf import x\n",
            "pkg/sub/__init__.py": "from pkg.other import y\n",
            "pkg/sub/leaf.py": "x = 1\n",
            # importing pkg.sub.leaf runs pkg/sub/__init__.py, which imports pkg.other
            "pkg/other.py": "y = 2\n\ndef f():\n    import pkg.sub.leaf\n",
            "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.typer import T\n",
            "pkg/typer.py": "from pkg.typed import TYPE_CHECKING\n",
        },
    )
    graph, _ = import_graph([tmp_path])
    assert find_cycles(graph) == [["pkg.other", "pkg.sub", "pkg.other"]]
    assert "pkg.typer" not in graph["pkg.typed"]


# ------------------------------------------------------- the checker's layers
CHECK_LAYERS: tuple[tuple[str, ...], ...] = (
    ("model", "constants", "index", "scope", "coerce"),
    (
        *("aggregates", "comparisons", "strings", "arithmetic", "expressions", "calls", "declarations", "names"),
        *("events", "sequences"),
    ),
    ("checker",),
    ("",),  # segql.check itself: the facade
)
"""The modules of segql.check, lowest layer first (docs/architecture.md): a
module imports only from its own layer (without cycles) or a lower one."""

NOT_BELOW_THE_CHECKER = ("segql.optimize", "segql.program", "segql.engines.arrow.executor", "segql.cost")
"""The checker runs none of these: constant folding is its caller's argument."""


def _check_layer(module: str) -> int:
    short = module.removeprefix("segql.check").removeprefix(".")
    for number, layer in enumerate(CHECK_LAYERS):
        if short in layer:
            return number
    raise AssertionError(f"{module} is in no layer of CHECK_LAYERS")


def test_check_package_layers() -> None:
    graph, _ = import_graph(SOURCE_ROOTS)
    members = [m for m in graph if m == "segql.check" or m.startswith("segql.check.")]
    assert len(members) == sum(len(layer) for layer in CHECK_LAYERS), "a module of segql.check is not in CHECK_LAYERS"
    upward = sorted(
        f"{m} imports {t}" for m in members for t in graph[m] if t in members and _check_layer(t) > _check_layer(m)
    )
    assert not upward, "imports from a higher layer of segql.check:\n" + "\n".join(upward)


def test_checker_imports_no_optimizer_or_executor() -> None:
    graph, _ = import_graph(SOURCE_ROOTS)
    reached: dict[str, str] = {"segql.check": ""}
    todo = ["segql.check"]
    while todo:
        module = todo.pop()
        for target in graph[module]:
            if target not in reached:
                reached[target] = module
                todo.append(target)
    bad = sorted(m for m in reached if any(m == b or m.startswith(b + ".") for b in NOT_BELOW_THE_CHECKER))
    paths = []
    for module in bad:
        path = [module]
        while reached[path[-1]]:
            path.append(reached[path[-1]])
        paths.append(" -> ".join(reversed(path)))
    assert not paths, "segql.check reaches:\n" + "\n".join(paths)


# ------------------------------------------- constant folding is an argument
def test_the_checker_folds_constants_with_the_callable_it_is_given() -> None:
    """In a pack's expression, a ``case`` branch a constant rules out is not
    checked; whether the condition is constant is decided by the ``fold``
    the caller passes (the checker imports no optimizer)."""

    def register_functions(registry):  # type: ignore[no-untyped-def]
        registry.add(
            "shop.pick",
            lambda ctx, mode, x: x,
            params=[("mode", "string", '"a"'), ("x", "float", 'case when $mode = "a" then a else no_such_column end')],
            returns="float",
        )

    shop = types.SimpleNamespace(segql_register_functions=segql.hookimpl(register_functions))
    host = segql.PluginHost(discover=False, packs={"shop": shop})
    source = "feature f = shop.pick()"
    schema = DataSchema(columns={"a": FLOAT}, related={})
    folded: list[tree.Node] = []

    def fold(node: tree.Node) -> tree.Node:
        folded.append(node)
        return fold_constants(node, PassContext(functions=host.functions))

    checked = check_program(parse(source), host, fold=fold, source=source, schema=schema)
    assert checked.columns == {"a"}
    assert len(folded) == 1 and isinstance(folded[0], tree.Compare)

    def no_folding(node: tree.Node) -> tree.Node:
        return node

    with pytest.raises(segql.SegqlNameError, match="unknown column 'no_such_column'"):
        check_program(parse(source), host, fold=no_folding, source=source, schema=schema)
