"""The optimizer: a pipeline of pure passes ``tree -> tree`` over checked trees.

Each pass lives in its own module and must keep the meaning of the tree for
every row, null and ``as_of`` (tests compare optimized and unoptimized results
on random nullable data).  The driver runs the passes in order on every
segment and feature of a checked program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import attrs

from segql import ast
from segql.check import CheckedProgram
from segql.optimize.fold_constants import fold_constants
from segql.optimize.inline import inline_references
from segql.optimize.membership import membership
from segql.optimize.order import order_operands
from segql.optimize.ranges import merge_ranges
from segql.optimize.simplify import simplify
from segql.registry import FunctionRegistry


@attrs.frozen
class PassContext:
    functions: FunctionRegistry
    exprs: Mapping[str, ast.Node] = attrs.field(factory=dict)
    """The optimized expressions of the declarations evaluated before this one."""
    max_depth: int | None = None
    """Trees must not grow deeper than this (the program's parsed depth)."""
    kind: str = "feature"
    """Whether the tree is a segment's (only its membership matters) or a feature's."""


Pass = Callable[[ast.Node, PassContext], ast.Node]

DEFAULT_PASSES: tuple[Pass, ...] = (
    fold_constants,
    inline_references,
    membership,
    simplify,
    merge_ranges,
    membership,
    simplify,
    order_operands,
)
EXPLANATION_PASSES: tuple[Pass, ...] = (fold_constants,)
"""For `why` and the like: references stay references, so names stay visible."""


def optimize(tree: ast.Node, ctx: PassContext, passes: Sequence[Pass] = DEFAULT_PASSES) -> ast.Node:
    for run in passes:
        tree = run(tree, ctx)
    return tree


def optimize_program(
    program: CheckedProgram,
    functions: FunctionRegistry,
    passes: Sequence[Pass] = DEFAULT_PASSES,
    max_depth: int | None = None,
) -> CheckedProgram:
    """Optimize every declaration, in evaluation order (references first, so
    inlining sees optimized targets)."""
    exprs: dict[str, ast.Node] = {}
    for name in program.order:
        ctx = PassContext(functions=functions, exprs=exprs, max_depth=max_depth, kind=program.kinds[name])
        exprs[name] = optimize(program.exprs[name], ctx, passes)
    return attrs.evolve(program, exprs=exprs)


__all__ = ["DEFAULT_PASSES", "EXPLANATION_PASSES", "Pass", "PassContext", "optimize", "optimize_program"]
