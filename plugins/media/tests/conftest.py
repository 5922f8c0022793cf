"""Fixtures for the media pack: a host with only this pack, and an evaluator.

No public offline dataset carries per-customer viewing and session events, so
the tests build their tables by hand (expectations derived on paper) or
generate them from a seed (expectations from DuckDB plus a plain-Python rule).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import segql_media
from media_tables import AS_OF, Run, sessions_table, views_table

import segql


@pytest.fixture(scope="session")
def host() -> segql.PluginHost:
    """A host with only segql's built-ins and this pack (other packs cannot interfere)."""
    host = segql.PluginHost(discover=False, packs={"media": segql_media})
    assert host.packs["media"].ok, host.failures
    return host


@pytest.fixture(scope="session")
def run(host: segql.PluginHost) -> Run:
    """Compile a segment file with the pack and evaluate it at AS_OF: column -> values.

    ``views`` and ``sessions`` default to empty tables of the conventional shape.
    """

    def evaluate(
        source: str,
        customers: pa.Table,
        views: pa.Table | None = None,
        sessions: pa.Table | None = None,
        **kwargs: Any,
    ) -> dict[str, list[Any]]:
        kwargs.setdefault("as_of", AS_OF)
        related = {
            "views": views if views is not None else views_table([]),
            "sessions": sessions if sessions is not None else sessions_table([]),
        }
        program = segql.compile(source, plugins=kwargs.pop("plugins", host))
        out = program.evaluate(customers, key="customer_id", related=related, **kwargs)
        assert out["customer_id"].to_pylist() == customers["customer_id"].to_pylist()
        columns: dict[str, list[Any]] = out.to_pydict()
        return columns

    return evaluate
