"""Read-ahead: a command's Parquet columns decoded on the idle core while
the command starts (docs/decisions.md 322).

A ``segql count`` over Parquet files spends its first ~0.4 s on one core:
the interpreter loads pyarrow and segql, then compiles the segment file.
The other core is idle until the data work starts.  :func:`start` (called
by segql.cli before it loads the commands) spends that time on a thread
that decodes, row group by row group and up to :data:`BUDGET` bytes, the
columns the command will most likely read, in the order it reads them:

1. the profile file's key column (the key pass of related tables);
2. each related file's key column and its other columns named in the
   segment file;
3. the profile file's other columns named in the segment file.

The names are a guess read off the segment file's words, not its checked
plan (checking needs the modules being loaded): a column named nowhere is
not read ahead, one named but not needed is decoded for nothing (on the
core that was idle) and dropped when the command ends.

The readers of local Parquet files (segql.engines.arrow.parquetfiles) ask
:func:`take` for each row group before they decode it, and get the columns
read ahead for it (waiting for one being decoded).  The first request
ends the read-ahead: from then on the command's own readers use every
core, and what was not decoded yet is left to them.  A column is handed
out once, and only when the file is the one that was read (same path,
inode, size and modification time).  Nothing here raises: a file that
cannot be read ahead is read by the command, which reports its errors.
:func:`stop` (segql.cli, when the command ends) waits for the thread and
drops what nobody took.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

BUDGET = 96 << 20
"""Bytes of decoded columns after which the read-ahead stops (docs/decisions.md
322); ``SEGQL_READAHEAD_MB`` sets another (0: none)."""

_WORD = re.compile(r"[^\W\d]\w*")


def words(text: str) -> set[str]:
    """Every word of a segment file (names, keywords, words inside strings
    and comments): a superset of the columns it names."""
    return set(_WORD.findall(text))


def file_state(path: str) -> tuple[int, int, int, int] | None:
    """A file's device, inode, size and modification time (None: no such
    file): the same file, not rewritten, while they are the same (also
    ``parquetfiles.FileStates``)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _identity(path: str) -> tuple[str, int, int, int, int] | None:
    state = file_state(path)
    return None if state is None else (os.path.realpath(path), *state)


class _Item:
    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None  # a one-column pyarrow Table, or None when it could not be read


class ReadAhead:
    """The thread and what it decoded, by (file identity, row group, column)."""

    def __init__(self, profile: str, key: str | None, related: Sequence[str], text: str | None, budget: int) -> None:
        self.profile = profile
        self.key = key
        self.related = list(related)
        self.text = text
        self.budget = budget
        self.held = 0
        """Bytes decoded so far (what was taken included: taking ends the read-ahead)."""
        self.closed = False
        self.lock = threading.Lock()
        self.items: dict[tuple[Any, int, str], _Item] = {}
        self.thread = threading.Thread(target=self._run, name="segql-readahead", daemon=True)

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            self._read_all()
        except Exception:  # a guess that failed costs nothing: the command reads
            pass
        finally:
            with self.lock:
                self.closed = True

    def _read_all(self) -> None:
        import pyarrow.parquet as pq  # the thread's own import: the command loads it too

        named = words(self.text) if self.text is not None else set()
        key = {self.key} if self.key else set()
        plans: list[tuple[str, set[str]]] = []
        if key:
            plans.append((self.profile, key))
        plans.extend((path, key | named) for path in self.related)
        plans.append((self.profile, named - key))
        for path, wanted in plans:
            if wanted and not self._read_file(pq, path, wanted):
                return

    def _read_file(self, pq: Any, path: str, wanted: set[str]) -> bool:
        """Decode ``wanted`` columns of the file at ``path``, row group by row
        group; False once the read-ahead is over (closed or the budget spent)."""
        identity = _identity(path)
        if identity is None:
            return True
        try:
            # (parquetfiles.PARQUET_BUFFER's reading options; that module imports this one)
            reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        except Exception:  # not a Parquet file: the command says so
            return True
        columns = [name for name in reader.schema_arrow.names if name in wanted]
        if not columns or _identity(path) != identity:
            return True
        for group in range(reader.metadata.num_row_groups):
            for column in columns:
                item = _Item()
                with self.lock:
                    if self.closed or self.held >= self.budget:
                        return False
                    slot = (identity, group, column)
                    if slot in self.items:
                        continue
                    self.items[slot] = item
                try:
                    item.value = reader.read_row_group(group, columns=[column], use_threads=False)
                except Exception:  # left to the command's reader
                    item.value = None
                finally:
                    item.done.set()
                if item.value is not None:
                    with self.lock:
                        self.held += item.value.nbytes
        return True

    # ------------------------------------------------------------ the readers
    def take(self, path: str, groups: Iterable[int], columns: Sequence[str]) -> dict[int, dict[str, Any]]:
        with self.lock:
            self.closed = True
            if not self.items:
                return {}
        identity = _identity(path)
        found: dict[int, dict[str, Any]] = {}
        for group in groups:
            for column in columns:
                with self.lock:
                    item = self.items.pop((identity, group, column), None)
                if item is None:
                    continue
                item.done.wait()
                if item.value is not None:
                    found.setdefault(group, {})[column] = item.value
        return found

    def stop(self) -> None:
        with self.lock:
            self.closed = True
        if self.thread.is_alive():
            self.thread.join()
        with self.lock:
            self.items.clear()


_ACTIVE: list[ReadAhead] = []


def start(
    profile: str | None,
    key: str | None,
    related: Sequence[str],
    segment_file: str | None,
    budget: int = BUDGET,
) -> None:
    """Start reading ahead the Parquet file ``profile`` (its ``key`` column
    first) and the ``related`` files, guided by the words of ``segment_file``
    (a path; None, ``-`` or anything but a regular file, such as a pipe
    the command must read whole: only the key columns).  Only for a process that
    runs one command (segql.cli); nothing happens for other paths than
    local files, or when a read-ahead is running already."""
    budget = budget_from_environment(budget)
    if _ACTIVE or budget <= 0 or not profile:
        return
    files = [p for p in (profile, *related) if p.endswith(".parquet") and os.path.isfile(p)]
    if not files or profile not in files:
        return
    text = None
    # Only a regular file: a pipe (`<(…)`, /dev/stdin) read here would be empty for the command.
    if segment_file and segment_file != "-" and os.path.isfile(segment_file):
        try:
            with open(segment_file, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
        except OSError:
            text = None
    ahead = ReadAhead(profile, key, [p for p in related if p in files], text, budget)
    _ACTIVE.append(ahead)
    ahead.thread.start()


def budget_from_environment(default: int) -> int:
    """``SEGQL_READAHEAD_MB``, in bytes (0: no read-ahead); ``default``
    when it is not set or not a whole number of megabytes ≥ 0."""
    text = os.environ.get("SEGQL_READAHEAD_MB", "").strip()
    if not (text.isascii() and text.isdigit()):
        return default
    return int(text) << 20


def take(path: str, groups: Iterable[int], columns: Sequence[str]) -> dict[int, dict[str, Any]]:
    """The columns read ahead of the file at ``path`` for ``groups`` (row
    groups) among ``columns``: {group: {column: one-column table}}, each
    handed out once.  Ends the read-ahead (the command reads from now on)."""
    active = _ACTIVE[:1]  # (a copy: another command's stop may empty the list meanwhile)
    return active[0].take(path, groups, columns) if active else {}


def stop() -> None:
    """End the read-ahead: wait for its thread and drop what nobody took."""
    while _ACTIVE:
        _ACTIVE.pop().stop()
