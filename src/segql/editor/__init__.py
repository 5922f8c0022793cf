"""Editor services: what an editor needs to help while a segment file is written.

Host applications (a language server, a web playground, a notebook widget)
call these functions directly with the text being edited::

    from segql.editor import EditorContext, Position, complete, diagnostics

    ctx = EditorContext.from_files(data="customers.parquet", related={"orders": "orders.parquet"})
    for d in diagnostics(text, ctx):
        print(d.range.start.line, d.severity, d.message)
    items = complete(text, Position(3, 17), ctx)

* :func:`diagnostics` -- every error and warning of a source, not only the
  first: the source is split into its top-level declarations so that one
  syntax error does not hide the others, and each declaration is checked on
  its own;
* :func:`complete` -- columns (from the context's schema), related tables and
  their columns inside aggregates (``sum(orders.|``), segments, features and
  parameters of the file, the packs' segments and features, built-in and pack
  functions with their signatures, keywords, duration units;
* :func:`hover`, :func:`signature_help`;
* :func:`definition`, :func:`references`, :func:`rename` for segments,
  features and parameters;
* :func:`format_edits` (``segql fmt`` as edits), :func:`code_actions`
  (the checker's "did you mean" suggestions as replacements).

Positions are 0-based lines and 0-based columns counted in Unicode code
points (Python ``str`` indices within a line); lines end at ``"\\n"``.  A
position past the end of its line is the end of the line, a line past the
end of the text is the end of the text.

Every function accepts any text -- half-typed, invalid, empty -- and raises
nothing but :class:`segql.SegqlError` (``rename`` and ``format_edits`` raise
it on purpose: an invalid new name, a source that does not parse).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from segql.editor import actions, navigate
from segql.editor import complete as _complete
from segql.editor.model import (
    COMPLETION_KINDS,
    SEVERITIES,
    CodeAction,
    CompletionItem,
    Diagnostic,
    EditorContext,
    Hover,
    Position,
    Range,
    SignatureHelp,
    TextEdit,
    read_schema,
)
from segql.program import only_segql_errors

T = TypeVar("T")
P = ParamSpec("P")


def _guarded(fn: Callable[P, T]) -> Callable[P, T]:
    """The public promise: only SegqlError escapes (anything else is a bug,
    reported as InternalError with the original as its cause)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with only_segql_errors(None, None):
            return fn(*args, **kwargs)

    return wrapper


diagnostics = _guarded(actions.diagnostics)
complete = _guarded(_complete.complete)
hover = _guarded(navigate.hover)
signature_help = _guarded(navigate.signature_help)
definition = _guarded(navigate.definition)
references = _guarded(navigate.references)
rename = _guarded(navigate.rename)
format_edits = _guarded(actions.format_edits)
code_actions = _guarded(actions.code_actions)

__all__ = [
    "COMPLETION_KINDS",
    "SEVERITIES",
    "CodeAction",
    "CompletionItem",
    "Diagnostic",
    "EditorContext",
    "Hover",
    "Position",
    "Range",
    "SignatureHelp",
    "TextEdit",
    "code_actions",
    "complete",
    "definition",
    "diagnostics",
    "format_edits",
    "hover",
    "read_schema",
    "references",
    "rename",
    "signature_help",
]
