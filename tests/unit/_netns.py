"""A scratch network namespace for the unit tests that need one (root only).

The name is random so parallel runs and a crashed earlier run cannot collide; the
namespace is deleted however the test ends.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_netns(*, lo_up: bool = False) -> Iterator[str]:
    name = f"k8snet-t{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        if lo_up:
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)
