"""nsutil.create_netns_here: a named namespace as ``ip netns add`` makes it, without a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from k8snet.lab.net import nsutil

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


def test_named_namespace_usable_by_ip_and_removable() -> None:
    name = f"k8snet-t{uuid.uuid4().hex[:8]}"

    def inside() -> str:  # the thread is in the new namespace: only lo, and it is the named one
        return os.readlink("/proc/thread-self/ns/net")
    try:
        seen = asyncio.run(nsutil.run_in_new_netns(name, inside))
        assert name in subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
        assert seen != os.readlink("/proc/self/ns/net")  # not the host's
        assert os.stat(nsutil.netns_path(name)).st_ino == int(seen.split("[")[1].rstrip("]"))
        links = subprocess.run(["ip", "-n", name, "-o", "link"], check=True, capture_output=True, text=True).stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
        with pytest.raises(nsutil.NetError, match="File exists"):  # as ip netns add refuses it
            asyncio.run(nsutil.run_in_new_netns(name, inside))
    finally:
        assert nsutil.delete_netns(name)
    assert name not in nsutil.list_netns("k8snet-t")


def test_pooled_threads_never_start_a_job_inside_a_lab_namespace() -> None:
    name = f"k8snet-t{uuid.uuid4().hex[:8]}"
    host = os.readlink("/proc/self/ns/net")

    def where() -> str:
        return os.readlink("/proc/thread-self/ns/net")

    async def jobs() -> tuple[list[str], list[str]]:
        inside = await asyncio.gather(*(nsutil.run_in_netns(name, where) for _ in range(20)))
        after = await asyncio.gather(*(nsutil._netns_threads().run(where) for _ in range(20)))
        return list(inside), list(after)
    try:
        asyncio.run(nsutil.run_in_new_netns(name, where))
        inside, after = asyncio.run(jobs())
    finally:
        nsutil.delete_netns(name)
    assert set(inside) != {host} and len(set(inside)) == 1
    assert set(after) == {host}
