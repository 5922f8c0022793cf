"""Files segql writes: whole or not at all, and never over an input.

Every file segql writes (``Program.evaluate_to_parquet``, ``segql run -o``,
``segql fmt``) is written to a temporary file beside the target and renamed
onto it only when it is complete (after an ``fsync``): a failure at any point
— an error in a later batch, a timeout, a cancellation, Ctrl-C — leaves the
previous file (or no file) in place and removes the temporary.  Only a
process killed outright (``kill -9``, a power cut) can leave the temporary
behind; its name says what it is (``.out.parquet.<random>.segql-partial``,
hidden, so dataset readers skip it), and the target is still intact.

An output that is one of the inputs — the same file by any name (relative,
absolute, through a symlink, a hard link), or a file inside an input
directory (a Parquet dataset) — is refused before anything is read or
written (``same_path_error``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

PARTIAL_SUFFIX = ".segql-partial"


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_name(target: str) -> str:
    """A fresh name for a temporary file in the target's folder (64 random bits)."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{name}.{secrets.token_hex(8)}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary path to write in place of ``path``; on a normal exit the
    temporary is flushed to disk and renamed onto ``path``, on any exception
    (including KeyboardInterrupt and SystemExit) it is removed and ``path`` is
    untouched.  A symlink target keeps its link: the file it points to is replaced.
    Raises OSError when the temporary cannot be created or renamed."""
    target = os.path.realpath(os.fspath(path))
    temporary = _temporary_name(target)
    # Created inside the try: an interruption (a signal handler raising) that
    # lands just after the file is created still removes it.  Mode 0o666, so
    # the umask applies as for any new file.
    try:
        while True:
            try:
                os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:  # pragma: no cover - 2**64 names
                temporary = _temporary_name(target)
        yield temporary
        with contextlib.suppress(FileNotFoundError):
            # An existing target keeps its permission bits.
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(os.path.dirname(target))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    try:
        return os.path.commonpath([path, directory]) == directory
    except ValueError:  # different drives (Windows)
        return False


def input_paths(data: Any) -> list[str]:
    """The local files and folders an input is read from (paths and file-system
    datasets; in-memory tables have none)."""
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    files = getattr(data, "files", None)  # pyarrow.dataset.FileSystemDataset
    if isinstance(files, list) and all(isinstance(f, str) for f in files):
        return list(files)
    return []


def same_path_error(output: str | os.PathLike[str], inputs: Iterable[tuple[str, Any]]) -> str | None:
    """Why writing ``output`` would overwrite one of ``inputs`` ((what, data)
    pairs), or None."""
    out = os.fspath(output)
    for what, data in inputs:
        for path in input_paths(data):
            if _same_file(out, path):
                return f"the output {out} is {what} ({path})"
            if os.path.isdir(path) and _inside(out, path):
                return f"the output {out} is inside the folder of {what} ({path})"
    return None


def dictionary_columns(schema: pa.Schema, key: str | None) -> list[str]:
    """The columns a Parquet output dictionary-encodes: text and binary
    (labels, categories: few distinct values), not the ``key`` (unique ids).
    Numbers, booleans and times are written plain: Arrow's writer tried a
    dictionary in every row group of a unique key, gave up after 1 MB of it,
    and wrote the 2M-row membership file in 0.19 s and 14.6 MB where plain
    takes 0.08 s and 10.5 MB (docs/decisions.md 230)."""
    out = []
    for field in schema:
        dtype = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        textual = pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype)
        binary = pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype)
        if (textual or binary or pa.types.is_dictionary(field.type)) and field.name != key:
            out.append(field.name)
    return out
