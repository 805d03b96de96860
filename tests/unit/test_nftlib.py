"""nftlib: transactions through a kept libnftables context land in the node's namespace."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from k8snet.lab.proxy.backend import ApplyError, NftablesBackend, apply_ruleset
from k8snet.lab.proxy.model import NodeInfo
from k8snet.lab.proxy.nftlib import NftError, NftSession

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")



def _tables(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "tables"], check=True,
                          capture_output=True, text=True).stdout


def test_a_kept_context_runs_each_transaction_in_its_namespace(netns: str) -> None:
    session = NftSession(netns)

    async def two() -> None:
        await session.run("add table ip t1\nadd chain ip t1 c\n")
        await session.run("add rule ip t1 c counter accept\n")  # the second one reuses the context

    try:
        asyncio.run(two())
        asyncio.run(session.run("add table ip t2\n"))  # a session outlives an event loop
    finally:
        session.close()
    assert _tables(netns).split() == ["table", "ip", "t1", "table", "ip", "t2"]
    rules = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "chain", "ip", "t1", "c"], check=True,
                           capture_output=True, text=True).stdout
    assert "counter packets 0 bytes 0 accept" in rules


def test_a_refused_transaction_changes_nothing_and_says_why(netns: str) -> None:
    session = NftSession(netns)
    try:
        asyncio.run(session.run("add table ip t\n"))
        with pytest.raises(NftError, match="No such file or directory|does not exist"):
            asyncio.run(session.run("add chain ip t first\nadd rule ip t nochain accept\n"))
        assert "chain first" not in subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "t"],
                                                capture_output=True, text=True, check=True).stdout
        asyncio.run(session.run("add chain ip t after\n"))  # a fresh context after the failure
    finally:
        session.close()
    assert "chain after" in subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "t"],
                                           capture_output=True, text=True, check=True).stdout


def test_the_backend_and_one_off_loads_raise_apply_errors(netns: str) -> None:
    node = NodeInfo(name="n", ip="172.31.0.2")
    backend = NftablesBackend(node)
    try:
        asyncio.run(backend.load(netns, "add table ip kp\n", partial=False))
        with pytest.raises(ApplyError, match=f"nft in {netns} failed: .*syntax error"):
            asyncio.run(backend.load(netns, "add tabel ip x\n", partial=True))
    finally:
        backend.close()
    with pytest.raises(ApplyError, match=f"nft in {netns} failed"):
        asyncio.run(apply_ruleset(netns, "nftables", "delete table ip nope\n"))
    asyncio.run(apply_ruleset(netns, "nftables", "delete table ip kp\n"))
    assert _tables(netns) == ""
