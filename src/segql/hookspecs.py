"""The pluggy hooks an industry pack (or segql itself) implements.

A pack is an ordinary Python distribution that declares an entry point in the
group ``segql`` pointing at a module or object with ``@segql.hookimpl``
functions; the entry point's name is the pack's name and namespace.  Each hook
receives an object to register into.  The host calls the hooks of each pack in
this order: conventions, functions, library.  If any of them raises, the pack
is rolled back and recorded as failed; other packs are not affected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from segql.library import Conventions, Library
    from segql.registry import FunctionRegistry

PROJECT = "segql"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def segql_register_functions(registry: FunctionRegistry) -> None:
    """Register functions callable from segql sources.

    Call ``registry.add(name, impl, params=[...], returns=..., ...)`` once per
    function.  ``name`` carries the pack's namespace (``"ecommerce.rfm_scores"``);
    ``impl(ctx, *args)`` receives Arrow values (a ``pa.ChunkedArray`` per
    row-dependent argument, a ``pa.Scalar`` per constant) and returns an Arrow
    array of ``ctx.num_rows`` values or a scalar.  See
    :class:`segql.registry.FunctionRegistry` for the parameters.
    """


@hookspec
def segql_register_library(library: Library) -> None:
    """Register ready-made segments and features written in segql.

    Call ``library.add(source)`` with a segment file (``segment`` and ``feature``
    declarations, no ``param``).  Each declaration becomes ``<pack>.<name>`` and
    can be used by name in any source, e.g. ``ecommerce.champions``.  Inside the
    source, the pack's own declarations are referenced bare, functions by full
    name, and bare names are columns of the profile table.
    """


@hookspec
def segql_register_conventions(conventions: Conventions) -> None:
    """Declare the data names the pack's expressions read.

    Call ``conventions.add(name, kind=..., doc=...)`` for each related table
    (``kind="table"``, e.g. ``"orders"``) and column (``kind="column"``:
    ``"orders.amount"`` of a related table or ``"age"`` of the profile) that the
    pack's function defaults and library declarations use.  Hosts whose data
    names differ rename them with ``PluginHost(conventions={pack: {name: new}})``.
    """
