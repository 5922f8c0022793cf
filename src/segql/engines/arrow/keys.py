"""Mapping related rows to profile rows by key.

:class:`KeyIndex` is built once per evaluation from the profile table's key
column.  It checks that keys are unique and answers, for any array of related
keys, the position of the matching profile row (or -1).

Two strategies:

* **dense**: integer keys whose range is at most a few times the number of
  profiles (the usual auto-increment customer ids) use a direct-address table:
  one scatter to build, one gather to look up, no hashing at all;
* **hashed**: every other key (strings, sparse integers, dates) uses Arrow's
  hash-based ``index_in``.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql.engines.arrow import kernels, scratch
from segql.engines.arrow.parallel import run_all
from segql.errors import DataError

if TYPE_CHECKING:
    from segql.engines.arrow.parquetfiles import FileStates

# A direct-address table may be this many times larger than the profile count
# (plus a constant for small tables): 4 bytes per slot.
DENSE_FACTOR = 4
DENSE_SLACK = 1 << 20
BUILD_BLOCK = 1 << 16
"""Profile keys scattered into the direct-address table at a time."""
PARALLEL_LOOKUP_ROWS = 1 << 20
"""Related keys per part when looked up on several threads."""

PARALLEL_BUILD_KEYS = 1 << 20
"""Keys per thread, at least, when a dense index is built on several."""


class Column(ctypes.Structure):
    """A column as the C kernels read it (csrc/groups.c, ``segql_column``):
    its values buffer, validity bitmap (None: no nulls), first row, type code."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("valid", ctypes.c_void_p),
        ("offset", ctypes.c_int64),
        ("type", ctypes.c_int32),
        ("pad", ctypes.c_int32),
    ]


INT_CODES = {
    pa.int8(): 1,
    pa.int16(): 2,
    pa.int32(): 3,
    pa.int64(): 4,
    pa.uint8(): 5,
    pa.uint16(): 6,
    pa.uint32(): 7,
}
"""The kernels' codes of the integer types they read (csrc/groups.c)."""


def kernel_column(chunk: pa.Array, code: int, local: int = 0) -> Column:
    """The kernels' view of ``chunk`` from its row ``local`` on, read as ``code``."""
    buffers = chunk.buffers()
    valid = buffers[0].address if chunk.null_count and buffers[0] is not None else None
    data = buffers[1].address if len(buffers) > 1 and buffers[1] is not None else None
    return Column(data, valid, chunk.offset + local, code, 0)


def _build_fn() -> Any:
    return kernels.function(
        "segql_dense_build",
        None,
        [ctypes.POINTER(Column), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64],
    )


def _filled_fn() -> Any:
    return kernels.function("segql_dense_filled", ctypes.c_int64, [ctypes.c_void_p, ctypes.c_int64])


class KeyIndex:
    def __init__(self, key_name: str, keys: pa.ChunkedArray, workers: int = 1) -> None:
        """The index of ``keys``; a dense one is built on up to ``workers``
        threads (chunks of keys scattered at once)."""
        self.workers = workers
        self.key_name = key_name
        self.keys = keys
        self.num_rows = len(keys)
        self._slots: np.ndarray | None = None
        self._value_set: pa.Array | None = None
        self._base = 0
        self._released = False
        self._give: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()
        self.files: FileStates | None = None
        """Set by :meth:`forget_keys`: the files whose order stands for the keys."""
        if pa.types.is_integer(keys.type) and self._try_dense():
            return
        self._check_unique_hashed()

    # ------------------------------------------------------------- building
    def _try_dense(self) -> bool:
        valid = len(self.keys) - self.keys.null_count
        if valid == 0:
            return False
        bounds = pc.min_max(self.keys).as_py()
        low, high = bounds["min"], bounds["max"]
        size = high - low + 1
        if size > DENSE_FACTOR * self.num_rows + DENSE_SLACK or self.num_rows >= 2**31:
            return False
        # From the scratch pool (pages kept between evaluations, docs/decisions.md 297),
        # given back when the index is dropped.
        slots = scratch.filled(size, np.int32, 0xFF, "index")  # (-1: no profile)
        build = _build_fn()
        code = INT_CODES.get(self.keys.type)
        if build is not None and code is not None:
            # The C scatter (csrc/groups.c): one pass per chunk, no temporaries;
            # fewer filled slots than keys: a key repeats.
            starts = np.cumsum([0, *(len(chunk) for chunk in self.keys.chunks)]).tolist()
            address = kernels.address(slots)

            def scatter(first: int, last: int) -> None:
                for i in range(first, last):
                    chunk = self.keys.chunk(i)
                    if len(chunk):
                        column = kernel_column(chunk, code)
                        build(ctypes.byref(column), len(chunk), low, address, starts[i])

            # Keys are unique (else fewer slots fill, and that is reported),
            # so chunks scattered at once write other slots: threads split
            # the chunks, in parts of about equal keys.
            chunks = self.keys.num_chunks
            parts = max(1, min(self.workers, self.num_rows // PARALLEL_BUILD_KEYS, chunks))
            cuts = [0, *(int(np.searchsorted(starts, self.num_rows * j // parts)) for j in range(1, parts)), chunks]
            run_all([functools.partial(scatter, a, b) for a, b in itertools.pairwise(cuts)], parts, "segql-keys")
            if _filled_fn()(address, size) != valid:
                self._report_duplicates(low, size)
            self._keep(slots, low)
            return True
        # The NumPy twin: chunk by chunk, in blocks of BUILD_BLOCK keys: whole-column copies
        # of 20M keys held ~0.5 GB more, and a block's offsets stay in the cache.
        start = 0
        offsets = np.empty(min(BUILD_BLOCK, self.num_rows), dtype=np.int64)
        for chunk in self.keys.chunks:
            if chunk.null_count:
                present = np.asarray(pc.is_valid(chunk).to_numpy(zero_copy_only=False), dtype=bool)
                values = pc.fill_null(chunk, low).to_numpy(zero_copy_only=False)
                rows = np.flatnonzero(present)
                slots[np.subtract(values[rows], low)] = (rows + start).astype(np.int32)
            else:
                values = chunk.to_numpy(zero_copy_only=False)
                for lo in range(0, len(values), BUILD_BLOCK):
                    part = values[lo : lo + BUILD_BLOCK]
                    block = np.subtract(part, low, out=offsets[: len(part)])
                    # (`put` measured ~1.7x faster than an indexed assignment.)
                    np.put(slots, block, np.arange(start + lo, start + lo + len(part), dtype=np.int32))
            start += len(chunk)
        if np.count_nonzero(slots >= 0) != valid:
            self._report_duplicates(low, size)
        self._keep(slots, low)
        return True

    def _keep(self, slots: np.ndarray, base: int) -> None:
        """The direct-address table in use, given back to the pool with the index."""
        self._slots, self._base = slots, base
        self._give = weakref.finalize(self, scratch.give, slots, "index")

    def _report_duplicates(self, low: int, size: int) -> None:
        offsets = pc.subtract(self.keys.drop_null(), low).to_numpy()
        counts = np.bincount(offsets, minlength=size)
        repeated = (np.flatnonzero(counts > 1)[:3] + low).tolist()
        self._duplicates(repeated, int(np.count_nonzero(counts > 1)))

    def _check_unique_hashed(self) -> None:
        valid = len(self.keys) - self.keys.null_count
        distinct = len(pc.unique(self.keys.drop_null()))
        if distinct != valid:
            counts = pc.value_counts(self.keys.drop_null())
            repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
            self._duplicates(repeated.slice(0, 3).to_pylist(), len(repeated))

    def _duplicates(self, examples: list[object], distinct: int) -> None:
        shown = ", ".join(repr(v) for v in examples)
        raise DataError(
            f"the profile table repeats {distinct} value(s) of key column '{self.key_name}' (e.g. {shown})",
            hint="each profile row must have its own key",
        )

    # --------------------------------------------------------------- lookups
    def positions(self, related_keys: pa.ChunkedArray | pa.Array, workers: int = 1) -> np.ndarray:
        """Profile row of each related key (int64; -1 for null or unknown
        keys); many keys are looked up in parts on up to ``workers`` threads
        (the lookups release the GIL), each part exactly as on one thread."""
        rows = len(related_keys)
        # (Dense only: a hashed lookup builds its hash table once per call.)
        parts = min(workers, rows // PARALLEL_LOOKUP_ROWS) if self.dense else 1
        if parts < 2:
            return self._positions(related_keys)
        bounds = [rows * i // parts for i in range(parts + 1)]
        pieces = [related_keys.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(parts)]
        tasks = [functools.partial(self._positions, piece) for piece in pieces]
        return np.concatenate(run_all(tasks, parts, "segql-keys"))

    def forget_keys(self, files: FileStates) -> bool:
        """Drop the keys, keeping the direct-address table (dense indexes
        only; False otherwise, and nothing changes).  For a key pass over
        local Parquet ``files`` whose stream reads them again in the same
        order (docs/decisions.md 324): the stream's batches are then sliced
        by their offset, trusting that order instead of comparing their keys
        with these, and the keys' memory (160 MB for 20M customers) serves
        the related tables' pass; the stream checks ``files`` when it is done.
        No lookup can rebuild the table after :meth:`release` then."""
        with self._lock:
            if self._slots is None:
                return False
            self.keys = pa.chunked_array([], type=self.keys.type)
            self._value_set = None
            self.files = files
            return True

    @property
    def forgotten(self) -> bool:
        """Whether :meth:`forget_keys` dropped the keys."""
        return self.files is not None

    def release(self) -> None:
        """Drop the direct-address table until a lookup needs it again (then
        rebuilt, the same): a stream whose batches line up with the key
        pass's rows looks nothing up, and the 20M-customer count held its
        80 MB through the whole second pass (docs/decisions.md 188)."""
        with self._lock:
            if self._slots is not None:
                if self._give is not None:
                    self._give.detach()  # (freed, not kept: the point is to hold less)
                self._slots, self._released = None, True

    def _restore(self) -> None:
        """The direct-address table built again after :meth:`release`."""
        if self._released:
            with self._lock:
                if self._released:
                    if self.files is not None:  # pragma: no cover - a stream that forgot its keys looks nothing up
                        raise RuntimeError("the key index forgot its keys and released its table")
                    self._try_dense()
                    self._released = False

    def _positions(self, related_keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
        self._restore()
        if self._slots is not None:
            if not pa.types.is_integer(related_keys.type):  # pragma: no cover - key types are checked first
                raise DataError("related keys must have the profile key's type")
            found = self.dense_positions(pc.fill_null(related_keys, self._base).to_numpy())
            if related_keys.null_count:  # (filled with a key of the table: unfound)
                found[~np.asarray(pc.is_valid(related_keys).to_numpy(zero_copy_only=False), dtype=bool)] = -1
            return found
        if self._value_set is None:  # (two threads may both combine: the same array)
            self._value_set = self.keys.combine_chunks()
        found = pc.index_in(related_keys, value_set=self._value_set, skip_nulls=True)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)

    @property
    def dense(self) -> bool:
        """Whether keys are looked up in a direct-address table (:meth:`dense_positions`)."""
        return self._slots is not None or self._released

    def dense_positions(self, values: np.ndarray) -> np.ndarray:
        """Profile row of each of the integer keys ``values`` (none null), -1
        for unknown keys: one gather from the direct-address table (the index
        must be :attr:`dense`).  Meant for blocks of keys that stay in the
        cache: the temporaries are the block's size."""
        self._restore()
        slots = self._slots
        assert slots is not None
        base, last = self._base, self._base + len(slots) - 1
        if len(values) and values.min() >= base and values.max() <= last:
            # The usual case (every key in the table's range): one gather, no masks.
            taken: np.ndarray = slots.take(np.subtract(values, base)).astype(np.int64)
            return taken
        # Compare before subtracting: differences of extreme keys would wrap.
        inside = (values >= base) & (values <= last)
        found = np.full(len(values), -1, dtype=np.int64)
        found[inside] = slots[values[inside] - base]
        return found

    @property
    def strategy(self) -> str:
        return "dense" if self.dense else "hashed"
