"""Syntax tree -> checked program: names resolved, types known, coercions explicit.

The checker runs before any row is touched.  It

* collects the declarations of a file (params, features, segments), rejects
  duplicates, orders features and segments so every reference comes after its
  target (any declaration order is allowed) and reports cycles with the cycle
  (``declarations``);
* resolves every name: a bare name is a segment or feature of the file if one
  exists, otherwise a column of the profile table (``backquoted`` names are
  always columns); inside an aggregate, names are columns of its related table.
  Names match exactly first, then case-insensitively when that is unambiguous;
  unknown names get a "did you mean" suggestion (``names``);
* checks types and makes every implicit conversion an explicit ``Cast`` node,
  so later stages never re-derive them (``calls``, ``aggregates``,
  ``comparisons``, ``strings``, ``arithmetic``, ``expressions``; ``coerce``).

Without a schema (``segql.compile`` of text alone) column types are ``any``:
everything that can be checked without data is checked, and the full check
repeats against the data's schema before evaluation.

The package imports no optimizer and no engine: constant folding (which runs
the Arrow executor) is an argument, ``fold``, given by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping

from segql import ast
from segql.check.aggregates import aggregate_names, is_aggregate_call
from segql.check.checker import Checker
from segql.check.constants import is_constant
from segql.check.index import NameIndex
from segql.check.model import NO_SCHEMA, Catalog, CheckedProgram, DataSchema, Fold
from segql.check.strings import regex_problem
from segql.suggest import did_you_mean, suggest
from segql.types import SType


def check_program(
    source_file: ast.SourceFile,
    catalog: Catalog,
    *,
    fold: Fold,
    source: str = "",
    source_name: str | None = None,
    schema: DataSchema = NO_SCHEMA,
    param_types: Mapping[str, SType] | None = None,
    max_aggregates: int = 1_000,
) -> CheckedProgram:
    """Check a parsed source against what is known of the data.  ``fold`` is
    constant folding (``segql.optimize.fold_constants`` with the host's
    functions): the checker uses it to skip the branches of a pack's ``case``
    that a constant rules out."""
    return Checker(
        source_file,
        catalog,
        fold=fold,
        source=source,
        source_name=source_name,
        schema=schema,
        param_types=param_types,
        max_aggregates=max_aggregates,
    ).check()


__all__ = [
    "Catalog",
    "CheckedProgram",
    "Checker",
    "DataSchema",
    "Fold",
    "NameIndex",
    "aggregate_names",
    "check_program",
    "did_you_mean",
    "is_aggregate_call",
    "is_constant",
    "regex_problem",
    "suggest",
]
