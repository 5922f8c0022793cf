"""segql's optional C kernels, loaded with ctypes (docs/architecture.md,
"C kernels"; docs/decisions.md 256-259).

The kernels are plain C functions over Arrow and NumPy buffers, compiled into
``_segqlkernels.so`` beside this file when the wheel is built (hatch_build.py;
``python hatch_build.py`` rebuilds it in a source tree).  ctypes releases the
GIL while a kernel runs, so kernels called from several threads run on
several cores.

Every kernel has a NumPy twin that gives the same answer bit for bit; the
engine uses the kernel when :func:`library` returns one, else the twin:

* no library (no C compiler when the wheel was built, or ``SEGQL_KERNELS=0``
  in the environment): the NumPy paths, silently;
* a library built from other sources than the ones beside it (a source tree
  edited or updated without rebuilding): the NumPy paths, with one warning;
  a stale library is never called, since its functions may take other
  arguments.

Tests run both ways (:func:`disabled`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LIBRARY = HERE / "_segqlkernels.so"
SOURCES = HERE / "csrc"

_lock = threading.Lock()
_loaded: list[ctypes.CDLL | None] = []
"""The loaded library (or None), once loaded."""
_off: list[bool] = [False]
"""Inside :func:`disabled`: no library."""


def sources_hash(folder: Path) -> str:
    """A digest of the kernel sources, as hatch_build.py embeds it in the library."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.[ch]")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _load() -> ctypes.CDLL | None:
    if os.environ.get("SEGQL_KERNELS", "1") == "0" or not LIBRARY.exists():
        return None
    try:
        lib = ctypes.CDLL(str(LIBRARY))
        lib.segql_kernels_hash.restype = ctypes.c_char_p
        lib.segql_kernels_hash.argtypes = []
        built = lib.segql_kernels_hash().decode()
    except (OSError, AttributeError) as e:
        warnings.warn(f"segql: C kernels not loaded ({e}); using the NumPy paths", RuntimeWarning, stacklevel=3)
        return None
    if any(SOURCES.glob("*.c")) and built != sources_hash(SOURCES):
        warnings.warn(
            f"segql: {LIBRARY.name} was built from other sources than {SOURCES}; using the NumPy paths "
            "(rebuild it: python hatch_build.py, or reinstall segql)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return lib


def library() -> ctypes.CDLL | None:
    """The kernels' library, or None: use the NumPy paths (also inside :func:`disabled`)."""
    if _off[0]:
        return None
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(_load())
    return _loaded[0]


def function(name: str, restype: Any, argtypes: list[Any]) -> Any:
    """The kernel ``name`` with its C signature set, or None when there is no
    library (or it lacks the function)."""
    lib = library()
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is None:
        return None
    if fn.argtypes is None:
        fn.restype, fn.argtypes = restype, argtypes
    return fn


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """The NumPy paths in the whole process for the block (tests compare both
    ways; not for use while another thread evaluates)."""
    before = _off[0]
    _off[0] = True
    try:
        yield
    finally:
        _off[0] = before


def address(array: Any) -> int:
    """The address of a NumPy array's first element."""
    return int(array.__array_interface__["data"][0])
