"""The C kernels' loader (segql.engines.arrow.kernels; docs/architecture.md, "C kernels")."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from segql.engines.arrow import kernels


def _compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


@pytest.mark.skipif(not _compiler(), reason="no C compiler: segql was installed without its kernels")
def test_kernels_are_built_where_a_compiler_is() -> None:
    assert kernels.library() is not None, "pip install built no C kernels although a C compiler is on PATH"


def test_popcount_counts_set_bits() -> None:
    fn = kernels.function("segql_popcount", ctypes.c_int64, [ctypes.c_void_p, ctypes.c_int64])
    if fn is None:
        pytest.skip("no C kernels")
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099):
        bits = np.packbits(rng.random(n * 8) < 0.3, bitorder="little")
        assert fn(kernels.address(bits), len(bits)) == int(np.unpackbits(bits).sum())


def test_disabled_hides_the_library() -> None:
    with kernels.disabled():
        assert kernels.library() is None
        assert kernels.function("segql_popcount", ctypes.c_int64, []) is None


def _load_in(tmp: Path, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp, check=False)


def test_environment_switch_turns_kernels_off(tmp_path: Path) -> None:
    env = {**os.environ, "SEGQL_KERNELS": "0"}
    out = _load_in(tmp_path, "from segql.engines.arrow import kernels; print(kernels.library())", env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def test_stale_library_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if kernels.library() is None:
        pytest.skip("no C kernels")
    sources = kernels.SOURCES
    (tmp_path / "csrc").mkdir()
    for src in sources.glob("*.[ch]"):
        (tmp_path / "csrc" / src.name).write_bytes(src.read_bytes())
    shutil.copy(kernels.LIBRARY, tmp_path / kernels.LIBRARY.name)
    monkeypatch.setattr(kernels, "LIBRARY", tmp_path / kernels.LIBRARY.name)
    monkeypatch.setattr(kernels, "SOURCES", tmp_path / "csrc")
    assert kernels._load() is not None  # the copy beside the sources it was built from loads
    # The same library beside sources that differ from the ones it was built from.
    (tmp_path / "csrc" / "common.c").write_bytes((sources / "common.c").read_bytes() + b"\n/* edited */\n")
    with pytest.warns(RuntimeWarning, match="other sources"):
        assert kernels._load() is None
