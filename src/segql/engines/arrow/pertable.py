"""Values kept for a ``pyarrow.Table`` object while it lives (docs/decisions.md 306, 308).

A program compiled for the C kernel over a table, the index of its key
column: derived from that table alone, worth keeping for its next
evaluations, never to be used for another.  :class:`PerTable` keeps each
value with a weak reference to its table: a value is found only for that
very object, still alive, and it is dropped when the table goes (the
reference's callback), so nothing outlives its table and a freed table's id
given to another never finds it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

import pyarrow as pa

V = TypeVar("V")


class PerTable(Generic[V]):
    """Values by key, each for one table object; the oldest dropped first
    beyond the ``limit`` a :meth:`put` gives."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[weakref.ref[pa.Table], V]] = {}
        self._lock = threading.RLock()
        """(Re-entrant: a table collected while its thread holds the lock drops its entries.)"""

    def get(self, key: Hashable, table: pa.Table) -> V | None:
        """The value kept under ``key`` for ``table`` (that object, alive), or None."""
        with self._lock:
            found = self._entries.get(key)
        return found[1] if found is not None and found[0]() is table else None

    def put(self, key: Hashable, table: pa.Table, value: V, limit: int) -> None:
        """Keep ``value`` under ``key`` for ``table`` until the table goes."""
        ref = weakref.ref(table, functools.partial(self._forget, key))
        with self._lock:
            self._entries[key] = (ref, value)
            while len(self._entries) > limit:
                del self._entries[next(iter(self._entries))]

    def _forget(self, key: Hashable, ref: weakref.ref[pa.Table]) -> None:
        """Drop the value kept under ``key`` for the table ``ref`` pointed to, gone now."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] is ref:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        with self._lock:
            return iter(list(self._entries))
