"""Scratch memory kept between evaluations (docs/decisions.md 297).

The related-table pass needs, per evaluation, arrays the size of the profile
table (accumulators, the key index) and of the related table (the records of
several threads): ~100 MB for 2M customers and 8M orders.  glibc hands such
blocks back to the system when they are freed, so every evaluation paid for
fresh pages (the system zeroing them: 10-30 % of a call), where DuckDB's and
Polars' allocators keep freed memory for the next query.  This pool does the
same for these arrays, and only for memory: nothing computed is kept, every
evaluation fills what it takes (zeros, -1) and recomputes everything.

* :func:`take` returns a byte array of at least ``nbytes`` for a use (``use``:
  accumulators, the key index, records, results: a free one given back by
  the same use, whose size is within ``SLACK`` of it, or a new one; arrays
  of one use are written alike, so the pool holds no more resident pages
  than one evaluation touched);
* :func:`give` puts an array back, unless the pool then holds more than
  :data:`LIMIT` bytes (it is then freed, as before);
* :func:`lease` wraps an array handed out in an Arrow buffer (results the
  caller keeps): the array comes back to the pool when Arrow drops the last
  reference to the buffer;
* :func:`release` frees every array the pool holds (``segql.engines.arrow.
  scratch.release()``; ``LIMIT = 0`` turns the pool off).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pyarrow as pa

LIMIT = 256 << 20
"""Bytes of free arrays the pool keeps at most (their size, resident or not)."""
SLACK = 1.25
"""A free array serves a request of at least 1/SLACK its size."""
SMALLEST = 1 << 20
"""Smaller arrays come from NumPy as usual (malloc keeps those itself)."""

_free: list[tuple[str, np.ndarray]] = []
_lock = threading.RLock()
"""(Re-entrant: a result's buffer may be collected, and give its array back,
while its thread holds the lock.)"""


def take(nbytes: int, use: str) -> np.ndarray:
    """A uint8 array of at least ``nbytes`` bytes for ``use``, contents undefined."""
    if nbytes >= SMALLEST:
        with _lock:
            fits = [i for i, (u, a) in enumerate(_free) if u == use and nbytes <= a.nbytes <= SLACK * nbytes]
            if fits:
                return _free.pop(min(fits, key=lambda i: _free[i][1].nbytes))[1]
    return _new(nbytes)


def _new(nbytes: int) -> np.ndarray:
    """A new array (the pool had none that fits)."""
    return np.empty(max(nbytes, 1), dtype=np.uint8)


def array(n: int, dtype: type | np.dtype, use: str) -> np.ndarray:
    """``n`` values of ``dtype`` from the pool (contents undefined); the
    array's ``base`` is the pool's array, to :func:`give` back."""
    size = np.dtype(dtype).itemsize
    return take(n * size, use)[: n * size].view(dtype)


def filled(n: int, dtype: type | np.dtype, byte: int, use: str) -> np.ndarray:
    """``n`` values of ``dtype`` from the pool, every byte ``byte`` (0: zeros,
    0xFF: -1 for signed integers), written by libc's ``memset`` (without the
    GIL; NumPy's ``fill`` copies value by value, ~4x slower)."""
    values = array(n, dtype, use)
    if values.nbytes:
        ctypes.memset(values.ctypes.data, byte, values.nbytes)
    return values


def give(array: np.ndarray | None, use: str) -> None:
    """``array`` (or the pool's array it is a view of) back to the pool."""
    while array is not None and array.base is not None and isinstance(array.base, np.ndarray):
        array = array.base
    if array is None or array.nbytes < SMALLEST or array.dtype != np.uint8 or array.ndim != 1:
        return
    with _lock:
        if any(a is array for _, a in _free):
            return
        if sum(a.nbytes for _, a in _free) + array.nbytes <= LIMIT:
            _free.append((use, array))


class _Lease:
    """Holds a pool array while Arrow buffers use it; gives it back after."""

    def __init__(self, array: np.ndarray, use: str) -> None:
        self.array = array
        self.use = use

    def __del__(self) -> None:
        give(self.array, self.use)


def lease(values: np.ndarray, use: str) -> pa.Buffer:
    """An Arrow buffer over ``values`` (a view of a pool array taken for
    ``use``) that gives the pool array back when the buffer is released."""
    return pa.foreign_buffer(values.ctypes.data, values.nbytes, base=_Lease(values, use))


def held() -> int:
    """Bytes of free arrays in the pool."""
    with _lock:
        return sum(a.nbytes for _, a in _free)


def release() -> None:
    """Free every array the pool holds."""
    with _lock:
        _free.clear()
