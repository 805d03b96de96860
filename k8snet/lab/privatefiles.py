"""State files only their owner may read: the lab's keys, kubeconfigs and records."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """Writes ``path`` atomically (a temporary file, then a rename) with mode 0600 from
    its first byte: no moment at the umask's 0644 in which another user could open it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
