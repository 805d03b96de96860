"""Session affinity ClientIP (with timeoutSeconds) in both kube-proxy modes.

iptables mode keeps the client -> endpoint memory in ``-m recent`` lists, nftables
mode in dynamic sets with a timeout; either way new connections from one client IP
return to one pod until the entry expires.
"""

from __future__ import annotations

import time

from .kube import wait_until
from .svcprobe import client_pod, connect, hostname_pod, service, wait_answers, wait_endpoints, wait_ready

BACKENDS = {f"web-{i}" for i in range(3)}


def _affinity(timeout: int | None) -> dict:
    if timeout is None:
        return {"spec": {"sessionAffinity": "None", "sessionAffinityConfig": None}}
    return {"spec": {"sessionAffinity": "ClientIP",
                     "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": timeout}}}}


def test_client_ip_affinity_sticks_spreads_and_expires(proxy_lab, proxy_core, proxy_namespace):
    core, ns = proxy_core, proxy_namespace
    for name in sorted(BACKENDS):
        core.create_namespaced_pod(ns, hostname_pod(name, {"app": "web"}))
    core.create_namespaced_pod(ns, client_pod("client"))
    core.create_namespaced_service(ns, service("web", {"app": "web"}))
    wait_ready(core, ns, "app=web", 3)
    wait_ready(core, ns, "role=client", 1)
    wait_endpoints(core, ns, "web", 3)
    ip = core.read_namespaced_service("web", ns).spec.cluster_ip
    wait_answers(core, ns, "client", ip, 80, BACKENDS)

    def sticky() -> str | None:
        answers = connect(core, ns, "client", ip, 80, 15)
        return answers[0] if len(set(answers)) == 1 and answers[0] in BACKENDS else None

    # ClientIP: 15 consecutive new connections from one pod hit one backend. The
    # wait covers kube-proxy's reprogramming after the patch.
    core.patch_namespaced_service("web", ns, _affinity(60))
    wait_until("15 connections to stick to one backend", sticky, timeout=15)

    # None: the spread comes back.
    core.patch_namespaced_service("web", ns, _affinity(None))
    wait_until("connections to spread again", lambda: len(set(connect(core, ns, "client", ip, 80, 30))) > 1,
               timeout=15)

    # ClientIP again, with a 2 s timeout: sticky while connections keep coming ...
    core.patch_namespaced_service("web", ns, _affinity(2))
    first = wait_until("connections to stick again", sticky, timeout=15)
    assert set(connect(core, ns, "client", ip, 80, 10, pause=0.2)) == {first}

    # ... and after a pause longer than the timeout the entry has expired, so the
    # next connection is spread at random again: it lands elsewhere with p = 2/3 per
    # round; 12 rounds all on one backend would be a (1/3)^12 = 2e-6 accident.
    current, landed = first, [first]
    for _ in range(12):
        time.sleep(2.5)
        answers = connect(core, ns, "client", ip, 80, 5)
        assert len(set(answers)) == 1, f"not sticky within the timeout: {answers}"
        landed.append(answers[0])
        if answers[0] != current:
            break
    assert len(set(landed)) > 1, f"affinity never expired: {landed}"
