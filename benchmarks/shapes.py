"""segql asked the three shapes of the benchmark (run.py, scaling.py, fixed_costs.py).

Every benchmark calls segql through these adapters, so switching them to a
faster public API changes one line each:

- ``segql_count``: the number of members (``Program.count``);
- ``segql_members``: the key values of one segment's members, in data order
  (``Program.members``);
- ``segql_flags``: the full membership table (``Program.evaluate``).

Keyword options (``key``, ``related``, ``as_of``, ``params``, ``time_zone`` …)
are passed through unchanged.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

import segql


def segql_count(program: segql.Program, data: Any, segment: str | None = None, **kw: Any) -> int | dict[str, int]:
    """``segment``'s member count, or every segment's (in program order) when None."""
    return program.count(data, segment, **kw)


def segql_members(program: segql.Program, data: Any, segment: str, **kw: Any) -> pa.Array:
    """The key values (``kw["key"]``) of ``segment``'s members, in data order."""
    return program.members(data, segment, **kw)


def segql_flags(program: segql.Program, data: Any, **kw: Any) -> pa.Table:
    """Every segment's membership flag (and every feature) for every row."""
    return program.evaluate(data, **kw)
