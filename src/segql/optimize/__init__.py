"""The optimizer: a pipeline of pure passes ``tree -> tree`` over checked trees.

Each pass lives in its own module and must keep the meaning of the tree for
every row, null and ``as_of`` (tests compare optimized and unoptimized results
on random nullable data).  The driver runs the passes in order on every
segment and feature of a checked program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from segql import ast
from segql.check import CheckedProgram
from segql.optimize.fold_constants import fold_constants
from segql.registry import FunctionRegistry


@attrs.frozen
class PassContext:
    functions: FunctionRegistry


Pass = Callable[[ast.Node, PassContext], ast.Node]

DEFAULT_PASSES: tuple[Pass, ...] = (fold_constants,)


def optimize(tree: ast.Node, ctx: PassContext, passes: Sequence[Pass] = DEFAULT_PASSES) -> ast.Node:
    for run in passes:
        tree = run(tree, ctx)
    return tree


def optimize_program(
    program: CheckedProgram, functions: FunctionRegistry, passes: Sequence[Pass] = DEFAULT_PASSES
) -> CheckedProgram:
    ctx = PassContext(functions=functions)
    exprs = {name: optimize(expr, ctx, passes) for name, expr in program.exprs.items()}
    return attrs.evolve(program, exprs=exprs)


__all__ = ["DEFAULT_PASSES", "Pass", "PassContext", "optimize", "optimize_program"]
