"""KubeProxy.applied_after: what the supervisor's Ready check waits on between its checks
(cluster DNS answers through the rules of the sync that follows the DNS pod turning
ready), so it must return once a sync's rules are in the kernel, not before, and not
miss a sync that ended while the caller was looking elsewhere."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from k8snet.lab.config import LabConfig
from k8snet.lab.proxy.proxy import KubeProxy
from tests.unit._proxy_fixtures import case_clusterip_three_endpoints

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


def _nat_rules(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"], check=True,
                          capture_output=True, text=True).stdout


def _proxy(netns: str) -> KubeProxy:
    proxy = KubeProxy(LabConfig(name="nsync", nodes=1), None, 0)  # type: ignore[arg-type]  # no API: fed by hand
    proxy.netns = netns
    services, slices = case_clusterip_three_endpoints()
    for svc in services:
        proxy._model.service_event("ADDED", svc)
    for sl in slices:
        proxy._model.slice_event("ADDED", sl)
    return proxy


def test_applied_after_returns_when_a_sync_has_put_its_rules_in(netns: str) -> None:
    proxy = _proxy(netns)
    seen: list[str] = []

    async def scenario() -> None:
        async def wait() -> None:
            await proxy.applied_after(proxy.applied)
            seen.append(_nat_rules(netns))

        waiter = asyncio.create_task(wait())
        await asyncio.sleep(0.05)
        assert not waiter.done(), "applied_after returned without a sync"
        await proxy.sync_now()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(scenario())
    assert "10.96.0.20/32" in seen[0] and "-j KUBE-SVC-" in seen[0], seen[0]


def test_a_sync_that_ended_before_the_wait_is_not_missed(netns: str) -> None:
    proxy = _proxy(netns)

    async def scenario() -> None:
        before = proxy.applied
        await proxy.sync_now()  # while the caller was checking something else
        await asyncio.wait_for(proxy.applied_after(before), 1)

    asyncio.run(scenario())
