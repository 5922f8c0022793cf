"""The pluggy hooks an industry pack (or segql itself) implements.

A pack is an ordinary Python distribution that declares an entry point in the
group ``segql`` pointing at a module or object with ``@segql.hookimpl``
functions.  Each hook receives a registry object to register into.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
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
