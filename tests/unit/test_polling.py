"""polling.wait_exec: a child's command line is there once it returns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8snet.lab.polling import wait_exec


@pytest.fixture
def busy_cpus() -> Iterator[None]:
    """A busy loop per CPU: the parent, woken when exec closes the child's pipe, then
    runs while the child is still setting up its argv (the window wait_exec closes)."""
    cpus = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_the_command_line_is_shown_once_wait_exec_returns(busy_cpus: None, tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    for _ in range(30):
        # the marker as argv[0]: a shell might exec its command and so replace the line
        child = subprocess.Popen([marker, "30"], executable=shutil.which("sleep"))
        try:
            wait_exec(child)
            assert marker.encode() in Path(f"/proc/{child.pid}/cmdline").read_bytes()
        finally:
            child.kill()
            child.wait()


def test_wait_exec_returns_for_a_child_that_has_ended() -> None:
    child = subprocess.Popen(["sh", "-c", "exit 3"])
    wait_exec(child)
    assert child.wait(timeout=5) == 3
