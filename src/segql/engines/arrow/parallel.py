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
import ctypes
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from segql.engines.arrow import kernels
from segql.engines.base import Deadline, resolve_threads
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


SPIN_NANOS = 2_000_000
"""How long a kernel thread stays awake after a task for the next one (2 ms)."""


class _KernelPool:
    """The process's kernel threads: daemon threads started once, taking
    tasks from one queue.  After each task a thread waits for the next awake
    for :data:`SPIN_NANOS` in C (``segql_spin``, the GIL released), watching
    a counter every submission bumps, before it blocks on the queue again: a
    blocked thread took 50-600 µs to wake on the 2-core virtual machine, as
    long as half a kernel call, and calls come in runs (a count, then member
    ids, a serve session).  The queue decides who runs what; the counter
    only ends a wait early (an increment two submitters race on is lost at
    worst, and that thread then waits its time out)."""

    def __init__(self, workers: int) -> None:
        self.queue: queue.SimpleQueue[tuple[concurrent.futures.Future[object], Callable[[], object]] | None] = (
            queue.SimpleQueue()
        )
        self.flag = ctypes.c_int64(0)
        self.threads = [
            threading.Thread(target=self._work, name=f"segql-kernel_{i}", daemon=True) for i in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.queue.put((future, fn))  # type: ignore[arg-type]
        self.flag.value += 1
        return future

    def _work(self) -> None:
        lib = kernels.library()
        spin = getattr(lib, "segql_spin", None) if lib is not None else None
        if spin is not None:
            spin.restype, spin.argtypes = ctypes.c_int64, [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
        address = ctypes.addressof(self.flag)
        while True:
            item = self.queue.get()
            if item is None:  # pragma: no cover - the pool lives as long as the process
                return
            future, fn = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:  # handed to the caller, which raises it
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn
            if spin is not None:
                seen = self.flag.value
                if self.queue.empty():  # (a task put before `seen` was read is taken at once)
                    spin(address, seen, SPIN_NANOS)


_pool: list[_KernelPool] = []
_pool_lock = threading.Lock()


def _shared_pool() -> _KernelPool:
    if not _pool:
        with _pool_lock:
            if not _pool:
                # One thread fewer than cores: the caller's thread runs a task of
                # every call, and a thread waiting awake for nothing took a core
                # from it (two on two cores made the calls 2-4x slower).
                _pool.append(_KernelPool(max(1, resolve_threads(None) - 1)))
    return _pool[0]


def _forget_pool() -> None:
    """In a forked child: the parent's threads are not there (a new pool starts when needed)."""
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_pooled(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Every task's result, in order: the first on the calling thread, the
    others on the process's pool of kernel threads (started once; a thread's
    start and join cost 50-100 µs, as much as a millisecond task gains).  A
    task no pool thread has started by the time the caller's is done runs
    on the caller's thread too (a pool thread woke 1-10 ms late at times on
    the virtual machine: the call then takes what one thread takes, not
    that).  For tasks that wait on nothing (they never submit to the pool
    themselves).  An error is the first failing task's (in order), raised
    once all ended."""
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    futures = [_shared_pool().submit(task) for task in tasks[1:]]
    results: list[Callable[[], T]] = []
    try:
        first = tasks[0]()
        for task, future in zip(tasks[1:], futures, strict=True):
            if future.cancel():  # not started: run here (its thread skips it)
                results.append(_outcome(task))
            else:
                results.append(future.result)
    finally:  # (a future cancelled here is done once its thread skips it: not waited for)
        concurrent.futures.wait([future for future in futures if not future.cancelled()])
    return [first, *(result() for result in results)]


def _outcome(task: Callable[[], T]) -> Callable[[], T]:
    """``task`` run now; its result (or error) given when asked, as a future's."""
    try:
        value = task()
    except BaseException as exc:  # raised in task order by the caller
        error = exc

        def raised() -> T:
            raise error

        return raised
    return lambda: value


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
