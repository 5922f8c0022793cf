"""The kernel threads of ``parallel.run_pooled`` (docs/decisions.md 312):
results in task order, the first failing task's error, a task no pool
thread has started run on the caller's thread, threads that wait awake for
the next task for a while and then block, and a forked child that starts
its own threads."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time

import pytest

from segql.engines.arrow import kernels, parallel


def test_results_in_order_and_the_first_error() -> None:
    tasks = [lambda i=i: i * i for i in range(7)]
    assert parallel.run_pooled(tasks, 2) == [i * i for i in range(7)]

    def fails(message: str) -> None:
        raise ValueError(message)

    with pytest.raises(ValueError, match="second"):
        parallel.run_pooled([lambda: 1, lambda: fails("second"), lambda: fails("third")], 3)


def test_a_task_not_started_runs_on_the_callers_thread() -> None:
    """Every pool thread held by a long task: the caller, done with its own,
    runs the waiting ones itself instead of waiting for them."""
    release = threading.Event()
    pool = parallel._shared_pool()
    busy = [pool.submit(lambda: release.wait(5)) for _ in pool.threads]  # (taken first: the queue is FIFO)
    caller = threading.get_ident()
    try:
        started = time.perf_counter()
        ran_on = parallel.run_pooled([threading.get_ident] * 3, 2)
        took = time.perf_counter() - started
    finally:
        release.set()
    assert all(future.result(5) for future in busy)
    assert ran_on == [caller] * 3 and took < 1


def test_threads_wait_awake_then_block() -> None:
    """After a task a pool thread waits awake (in C, the GIL released) for
    about SPIN_NANOS, then blocks: tasks submitted while it waits awake, and
    after it blocked, are all taken (how soon is for the benchmarks)."""
    if kernels.library() is None:
        pytest.skip("no C kernels")
    pool = parallel._shared_pool()
    for pause in (0.0, 0.0005, parallel.SPIN_NANOS / 1e9 * 3):
        assert pool.submit(lambda: 1).result(5) == 1
        time.sleep(pause)
        assert pool.submit(lambda: 2).result(5) == 2


def _in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(parallel.run_pooled([lambda: "a", lambda: "b", lambda: "c"], 3))


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_a_forked_child_starts_its_own_threads() -> None:
    parallel.run_pooled([lambda: 0, lambda: 1], 2)  # (the parent's threads are running)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    assert queue.get(timeout=30) == ["a", "b", "c"]
    child.join(30)
    assert child.exitcode == 0
