"""runtime.init_program: a container's init runs from init.py's bytecode only while that
bytecode is init.py's (a .pyc given by path runs unchecked, so a stale one would run old
code)."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from k8snet.lab.kubelet import runtime


def compile_timestamped(source: Path) -> None:
    """As setup.sh compiles (timestamp mode, whatever SOURCE_DATE_EPOCH says)."""
    py_compile.compile(str(source), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)


@pytest.fixture
def init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = tmp_path / "init.py"
    source.write_text("import sys\nprint('init', sys.argv[1])\n")
    monkeypatch.setattr(runtime, "INIT", str(source))
    return source


def test_uncompiled_runs_the_source(init: Path) -> None:
    assert runtime.init_program() == str(init)


def test_compiled_runs_the_bytecode_which_behaves_as_the_source(init: Path) -> None:
    compile_timestamped(init)
    program = runtime.init_program()
    assert program.endswith(".pyc") and Path(program).parent.name == "__pycache__", program
    out = subprocess.run([sys.executable, "-S", "-I", program, "spec"], capture_output=True, text=True, check=True)
    assert out.stdout == "init spec\n"


def test_an_edited_source_is_run_instead_of_its_old_bytecode(init: Path) -> None:
    compile_timestamped(init)
    init.write_text("import sys\nprint('new init', sys.argv[1])\n")  # another size
    assert runtime.init_program() == str(init)
    st = init.stat()
    compile_timestamped(init)
    os.utime(init, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # same size, newer
    assert runtime.init_program() == str(init)


def test_bytecode_of_another_interpreter_is_not_run(init: Path) -> None:
    compile_timestamped(init)
    cached = Path(runtime.init_program())
    data = bytearray(cached.read_bytes())
    data[0] ^= 0xFF  # another magic number
    cached.write_bytes(bytes(data))
    assert runtime.init_program() == str(init)
