"""One lab command at a time per lab name: an ``flock`` on ``<state root>/.<lab>.lock``.

``up``, ``start``, ``stop`` and ``down`` of one lab hold it for their whole run, so two
of them never build or remove the same namespaces at once: a second ``up`` waits for
the first and then finds the lab Ready. ``status`` and ``list`` only read and never
wait for it.

The lock file is removed again when its lab is gone (after ``down``), while it is
still held: a command that waited on the removed file notices that the path names
another file now (or none) and locks again, so two commands never both hold "the"
lock through different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from .config import state_root

POLL_S = 0.05


class LabBusy(RuntimeError):
    """Another command held the lab's lock for longer than the caller would wait."""


def lock_path(name: str, root: Path | None = None) -> Path:
    # a leading dot: never a lab name (LAB_NAME_RE), so ``list`` never shows it
    return (root or state_root()) / f".{name}.lock"


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


@contextlib.contextmanager
def lab_lock(name: str, *, timeout: float, root: Path | None = None) -> Iterator[None]:
    """Holds lab ``name``'s lock; waits up to ``timeout`` seconds for another holder,
    then raises :class:`LabBusy` naming its pid."""
    root = root or state_root()
    root.mkdir(parents=True, exist_ok=True)
    path = lock_path(name, root)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise LabBusy(f"another k8snet command (pid {_holder(path)}) is working on lab {name!r} "
                              f"and did not finish within {timeout:.0f} s") from None
            time.sleep(POLL_S)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed the file as we waited: lock the current one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        if not (root / name).exists():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        os.close(fd)
