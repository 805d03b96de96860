"""Waiting for a condition the way tests and demos need it: poll, with a deadline."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def wait_until(what: str, predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Calls ``predicate`` until it returns something truthy, and returns that;
    raises TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_exec(proc: subprocess.Popen[Any]) -> None:
    """Returns once the kernel shows ``proc``'s command line in /proc/PID/cmdline, or
    ``proc`` has ended. Popen returns when exec has closed the child's close-on-exec
    pipe, which the kernel does before it sets up the new argv; until then the command
    line reads empty (292 of 300 reads right after Popen, with two busy loops running),
    and a check that tells the lab's processes by it would take the child for another."""
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    wait_until(f"process {proc.pid} to show its command line",
               lambda: proc.poll() is not None or cmdline.read_bytes(), timeout=10, interval=0.002)
