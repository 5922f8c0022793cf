"""The built-in functions of LANGUAGE.md §5 and §9, registered through the
same hook (``segql_register_functions``) and the same ``registry.add`` that
industry packs use.  Each function is declared once, in the module of its
topic: its parameters and type rule, its Arrow kernel and its SQL (``sql=``,
called as engines/sql/hooks.py describes).

One module per topic: strings, numeric (with rounding), values (coalesce,
least, greatest, if), dates (calendar parts, trunc, day counts), geo,
bucket (deterministic buckets), casts (to_int, to_float, to_string,
to_date: null where a value does not convert).
"""

from __future__ import annotations

from segql.builtins import bucket, casts, dates, geo, numeric, strings, values
from segql.hookspecs import hookimpl
from segql.registry import FunctionRegistry

TOPICS = (strings, numeric, values, dates, geo, bucket, casts)


@hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    for topic in TOPICS:
        topic.register(registry)
