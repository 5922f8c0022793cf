"""Room on the stack for the recursive tree passes.

The checker, the optimizer, the executor and the formatter recurse once per
level of the syntax tree (a few Python frames per level); the limits keep the
depth at most ``limits.HARD_MAX_DEPTH``.  But the host calls segql from its own
stack, which may already be deep.  Python counts recursion per thread, so when
the frames a pass may need do not fit in what is left of the caller's
recursion limit, the pass runs on a fresh thread, which starts with an empty
stack.  Nothing process-wide (``sys.setrecursionlimit``) is changed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FRAMES_PER_LEVEL = 5
"""A generous bound on frames per tree level over all passes (measured: 3-4)."""
MARGIN = 120


def _stack_depth() -> int:
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth


def call_with_stack(tree_depth: int, work: Callable[[], T]) -> T:
    """``work()``, on a fresh thread if the current stack lacks room for a tree
    of ``tree_depth`` levels."""
    needed = tree_depth * FRAMES_PER_LEVEL + MARGIN
    if _stack_depth() + needed < sys.getrecursionlimit():
        return work()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="segql-deep", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
