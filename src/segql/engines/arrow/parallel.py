"""Threads for the Arrow engine (docs/architecture.md, "Parallelism").

Arrow's kernels and most of NumPy's (``take``, comparisons, sorts) release
the GIL, so independent pieces of one evaluation run on several cores from
plain Python threads: row slices of a table in memory, the related tables'
reductions, and the batches of a stream.  Every piece computes exactly what
it computes on one thread, and the pieces are put back in their order, so a
result never depends on the number of threads (``Bindings.threads``).

* :func:`run_all` runs independent tasks and returns their results in order;
  an error is the one the first failing task (in order) raised, as on one
  thread;
* :func:`ordered_map` maps a function over an iterator with a bounded number
  of items in flight, yielding the results in order (a stream's batches);
  no thread outlives the items in flight, and closing it stops them;
* :func:`run_pooled` runs short independent tasks (a C kernel over a range
  of rows, about a millisecond) on a pool of threads kept for the process,
  the first task on the calling thread: no thread is started per call;
* :class:`Stoppable` is a deadline a closed stream can trip, so that workers
  still evaluating a batch nobody will read stop at their next check.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from segql.engines.base import Deadline
from segql.errors import CancelledError

A = TypeVar("A")
T = TypeVar("T")


def run_all(tasks: Sequence[Callable[[], T]], workers: int, name: str = "segql-task") -> list[T]:
    """Every task's result, in order, run on up to ``workers`` threads (on
    the calling thread when ``workers`` is 1 or there is one task)."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix=name) as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after an error: the tasks not started yet never start
                future.cancel()


_pool: list[concurrent.futures.ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def _shared_pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _pool:
        with _pool_lock:
            if not _pool:
                workers = max(2, os.cpu_count() or 2)
                _pool.append(concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="segql-kernel"))
    return _pool[0]


def run_pooled(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Every task's result, in order: the first on the calling thread, the
    others on the process's pool of kernel threads (started once; a thread's
    start and join cost 50-100 µs, as much as a millisecond task gains).  For
    tasks that wait on nothing (they never submit to the pool themselves).
    An error is the first failing task's (in order), raised once all ended."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    futures = [_shared_pool().submit(task) for task in tasks[1:]]
    try:
        first = tasks[0]()
    finally:
        concurrent.futures.wait(futures)
    return [first, *(future.result() for future in futures)]


def ordered_map(
    fn: Callable[[A], T],
    items: Iterable[A],
    workers: int,
    name: str = "segql-batch",
    stop: Stoppable | None = None,
) -> Iterator[T]:
    """``fn(item)`` for each item, in order.  With ``workers`` > 1, up to
    ``workers`` items are evaluated at once, each on a thread of its own that
    ends with it, while the caller's thread reads the next items and
    consumes the results; at most ``workers`` + 1 results are held.  Nothing
    runs ahead of the consumer: once it stops asking, the items in flight
    finish and no thread is left.  When the iterator is closed (or garbage
    collected) before its end, ``stop`` is tripped and the items in flight
    are waited for."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    pending: collections.deque[concurrent.futures.Future[T]] = collections.deque()
    try:
        for item in items:
            pending.append(_started(fn, item, name))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if pending:
            if stop is not None:
                stop.stop()
            concurrent.futures.wait(pending)


def _started(fn: Callable[[A], T], item: A, name: str) -> concurrent.futures.Future[T]:
    """``fn(item)`` running on a new thread, as a future."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = fn(item)
        except BaseException as exc:  # handed to the consumer, which raises it
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class Stoppable(Deadline):
    """The evaluation's deadline (if any), plus a stop a closed stream sets."""

    def __init__(self, inner: Deadline | None) -> None:
        super().__init__(None, None)
        self.inner = inner
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def check(self) -> None:
        if self._stopped.is_set():
            raise CancelledError("the stream was closed")
        if self.inner is not None:
            self.inner.check()
