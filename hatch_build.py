"""Builds segql's optional C kernels (docs/architecture.md, "C kernels").

The kernels are plain C (no Python API): every ``*.c`` file of
``src/segql/engines/arrow/csrc`` is compiled into one shared library,
``segql/engines/arrow/_segqlkernels.so``, which ``segql.engines.arrow.kernels``
loads with ctypes.  When no C compiler works the wheel is built without it and
segql runs its NumPy paths, with the same answers (a warning says so).

Run by hatchling as the wheel's build hook (``pip install .``; an editable
install builds the library into the source tree), or by hand after editing a
kernel: ``python hatch_build.py`` builds it in place.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "src" / "segql" / "engines" / "arrow"
SOURCES = PACKAGE / "csrc"
LIBRARY = "_segqlkernels.so"
"""The library's file name (the loader looks for it beside kernels.py)."""
FLAGS = [
    "-O3",
    "-std=c11",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-Wall",
    "-Wextra",
    "-Werror=implicit-function-declaration",
]


def compiler() -> list[str]:
    """The C compiler: $CC, else the one Python was built with, else ``cc``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def sources_hash(folder: Path) -> str:
    """A digest of the kernel sources (``*.c``, ``*.h``), as kernels.py computes it."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.[ch]")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(target: Path) -> Path:
    """Compile every kernel source into ``target`` (written whole: a temporary file renamed)."""
    sources = sorted(str(p) for p in SOURCES.glob("*.c"))
    define = f'-DSEGQL_KERNELS_HASH="{sources_hash(SOURCES)}"'
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".segqlkernels", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([*compiler(), *FLAGS, define, "-I", str(SOURCES), *sources, "-o", tmp, "-lm"], check=True)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


try:  # hatchling is there when pip builds the wheel, not when this file is run by hand
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # pragma: no cover
    BuildHookInterface = object  # type: ignore[assignment,misc]


class KernelsBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Adds the compiled kernels to the wheel (or to the source tree for an editable install)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:  # type: ignore[type-arg]
        if self.target_name != "wheel" or sys.platform == "win32":
            return
        try:
            if version == "editable":
                build(PACKAGE / LIBRARY)
            else:
                out = build(Path(self.directory) / ".kernels" / LIBRARY)
                build_data["force_include"][str(out)] = f"segql/engines/arrow/{LIBRARY}"
        except (OSError, subprocess.CalledProcessError) as e:
            warnings.warn(f"segql: C kernels not built ({e}); the NumPy paths will be used", stacklevel=1)
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


if __name__ == "__main__":
    print(build(PACKAGE / LIBRARY))
