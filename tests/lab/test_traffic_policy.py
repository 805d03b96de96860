"""internalTrafficPolicy: Local in both kube-proxy modes.

A client reaches only the endpoints on its own node; on a node with no local
endpoint kube-proxy drops the packets (a timeout, not a refusal: a refusal
would tell the client the Service has no endpoints at all, which is untrue).
"""

from __future__ import annotations

from collections import Counter

from .kube import wait_until
from .svcprobe import client_pod, connect, hostname_pod, node_names, service, wait_answers, wait_endpoints, wait_ready


def test_internal_traffic_policy_local(proxy_lab, proxy_core, proxy_namespace):
    core, ns = proxy_core, proxy_namespace
    first, second = node_names(core)[:2]
    # web-a on the first node; web-b1, web-b2 on the second. "web-b" selects only the latter.
    core.create_namespaced_pod(ns, hostname_pod("web-a", {"app": "web", "side": "a"}, first))
    for name in ("web-b1", "web-b2"):
        core.create_namespaced_pod(ns, hostname_pod(name, {"app": "web", "side": "b"}, second))
    core.create_namespaced_pod(ns, client_pod("client-a", first))
    core.create_namespaced_pod(ns, client_pod("client-b", second))
    core.create_namespaced_service(ns, service("web", {"app": "web"}))
    core.create_namespaced_service(ns, service("web-b", {"app": "web", "side": "b"}, internalTrafficPolicy="Local"))
    wait_ready(core, ns, "app=web", 3)
    wait_ready(core, ns, "role=client", 2)
    wait_endpoints(core, ns, "web", 3)
    wait_endpoints(core, ns, "web-b", 2)
    ip = core.read_namespaced_service("web", ns).spec.cluster_ip
    # With the default policy (Cluster) every client reaches all three.
    wait_answers(core, ns, "client-a", ip, 80, {"web-a", "web-b1", "web-b2"})

    core.patch_namespaced_service("web", ns, {"spec": {"internalTrafficPolicy": "Local"}})
    wait_until("client-a to reach only its node's endpoint", lambda: set(
        connect(core, ns, "client-a", ip, 80, 20)) == {"web-a"}, timeout=15)
    wait_until("client-b to reach only its node's endpoints", lambda: set(
        connect(core, ns, "client-b", ip, 80, 30)) == {"web-b1", "web-b2"}, timeout=15)

    # No local endpoint: dropped (the connection times out), while the other node's
    # client still gets through.
    ip_b = core.read_namespaced_service("web-b", ns).spec.cluster_ip
    assert Counter(connect(core, ns, "client-b", ip_b, 80, 10)).keys() <= {"web-b1", "web-b2"}
    assert connect(core, ns, "client-a", ip_b, 80, 2, timeout=1.5) == ["!TimeoutError"] * 2
