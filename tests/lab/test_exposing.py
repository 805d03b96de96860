"""Exposing Services to the host (tutorial steps 30-36, issue 4 items 4, 5 and 8), in
both kube-proxy modes: NodePorts at every node's address, LoadBalancer addresses from
the lab's pool, the client address under each externalTrafficPolicy, and the guard
that keeps pods from opening connections to the host.

Every request here is made by this test process on the host, to the lab's node
network (the host's one veth), never through kubectl port-forward or exec.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import pytest

from k8snet.lab import lifecycle

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def http_get(ip: str, port: int, path: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=timeout) as resp:
        return resp.read().decode()


def _sees_client(ip: str, port: int, client_ip: str) -> bool:
    """Whether the backend behind ``ip:port`` saw the connection come from ``client_ip``."""
    return http_get(ip, port, "/clientip").startswith(client_ip + ":")


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, urllib.error.URLError) as err:
            last = err
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what or check} (last: {last!r})")


def node_addresses(core) -> dict[str, str]:
    out = {}
    for n in core.list_node().items:
        addrs = {a.type: a.address for a in n.status.addresses}
        assert addrs["ExternalIP"] == addrs["InternalIP"]
        out[n.metadata.name] = addrs["ExternalIP"]
    return out


def node_holding(config, ip: str) -> list[int]:
    """Indexes of the nodes whose eth0 has ``ip``."""
    held = []
    for i in range(config.nodes):
        out = subprocess.run(["ip", "-n", config.node_netns(i), "-o", "-4", "addr", "show", "dev", "eth0"],
                             capture_output=True, text=True, check=True).stdout
        if f" {ip}/32 " in out:
            held.append(i)
    return held


@pytest.fixture()
def app(proxy_lab, proxy_core, proxy_namespace):
    """agnhost netexec, one replica per node (the scheduler spreads a ReplicaSet's
    pods, so one on each), behind a two-port NodePort Service."""
    from kubernetes import client

    ns = proxy_namespace
    labels = {"app": "web"}
    replicas = len(proxy_core.list_node().items)
    pod_spec = {"containers": [{"name": "netexec", "image": AGNHOST, "args": ["netexec", "--http-port=8080"],
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                                   "periodSeconds": 1}}]}
    client.AppsV1Api(proxy_core.api_client).create_namespaced_deployment(ns, {
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})
    proxy_core.create_namespaced_service(ns, {
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": labels, "ports": [
            {"name": "http", "port": 8080, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8080}]}})

    def ready() -> bool:
        sl = client.DiscoveryV1Api(proxy_core.api_client).list_namespaced_endpoint_slice(
            ns, label_selector="kubernetes.io/service-name=web").items
        return sum(1 for s in sl for e in s.endpoints or [] if e.conditions.ready) == replicas
    eventually(ready, 30, "a ready endpoint per node")
    # kube-proxy programs the endpoints a moment after the slices change
    port = proxy_core.read_namespaced_service("web", ns).spec.ports[0].node_port
    for ip in node_addresses(proxy_core).values():
        eventually(functools.partial(http_get, ip, port, "/hostname"), 10, f"the NodePort at {ip}")
    return ns


def kubectl(lab: lifecycle.LabStatus, ns: str, *args: str) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(lab.kubeconfig), "-n", ns, *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_nodeport_from_the_host_at_every_node(proxy_lab, proxy_core, app) -> None:
    svc = proxy_core.read_namespaced_service("web", app)
    ports = {p.name: p.node_port for p in svc.spec.ports}
    assert all(30000 <= p <= 32767 for p in ports.values())
    assert "nodePort: " in kubectl(proxy_lab, app, "get", "svc", "web", "-o", "yaml")
    nodes = node_addresses(proxy_core)
    assert re.search(r"- address: [\d.]+\n\s+type: ExternalIP",
                     kubectl(proxy_lab, app, "get", "nodes", "-o", "yaml"))
    seen = set()
    for ip in nodes.values():
        for port in ports.values():
            for _ in range(6):
                seen.add(http_get(ip, port, "/hostname"))
    assert len(seen) == len(nodes), f"every pod (one per node) answers through NodePorts: {seen}"


def test_loadbalancer_from_the_host(proxy_lab, proxy_core, app) -> None:
    config = lifecycle.load_config(proxy_lab.name)
    t0 = time.monotonic()
    proxy_core.patch_namespaced_service("web", app, {"spec": {"type": "LoadBalancer"}})

    def external_ip() -> str | None:
        ing = proxy_core.read_namespaced_service("web", app).status.load_balancer.ingress or []
        return ing[0].ip if ing else None
    ip = eventually(external_ip, 5, "an EXTERNAL-IP")
    assert time.monotonic() - t0 < 3
    assert ip in config.loadbalancer_pool
    listing = kubectl(proxy_lab, app, "get", "svc", "web")
    assert re.search(rf"web\s+LoadBalancer\s+[\d.]+\s+{re.escape(ip)}\s+8080:3\d{{4}}/TCP,443:3\d{{4}}/TCP", listing), listing
    described = kubectl(proxy_lab, app, "describe", "service", "web")
    assert re.search(rf"LoadBalancer Ingress:\s+{re.escape(ip)}", described), described
    assert "EnsuredLoadBalancer" in described

    # Reachable from the host on both ports; Cluster policy: the client address is SNATed.
    assert eventually(lambda: http_get(ip, 8080, "/hostname"), 5, "the LoadBalancer answers")
    assert http_get(ip, 443, "/hostname")
    clients = {http_get(ip, 8080, "/clientip").rsplit(":", 1)[0] for _ in range(6)}
    assert config.host_ip not in clients, clients

    # Local policy: only a node with a local endpoint announces; the host's address is kept.
    proxy_core.patch_namespaced_service("web", app, {"spec": {"externalTrafficPolicy": "Local"}})
    eventually(lambda: http_get(ip, 8080, "/clientip").startswith(config.host_ip + ":"), 5,
               "the host's own address at the backend")
    assert {http_get(ip, 8080, "/clientip").rsplit(":", 1)[0] for _ in range(6)} == {config.host_ip}

    # Back to ClusterIP: the address is released and no node answers for it any more.
    proxy_core.patch_namespaced_service("web", app, {"spec": {"type": "ClusterIP", "externalTrafficPolicy": None}})
    eventually(lambda: external_ip() is None, 5, "the status cleared")
    eventually(lambda: node_holding(config, ip) == [], 5, "the address gone from the nodes")
    assert "<none>" in kubectl(proxy_lab, app, "get", "svc", "web")
    assert "DeletedLoadBalancer" in kubectl(proxy_lab, app, "describe", "service", "web")


def test_nodeport_external_traffic_policy(proxy_lab, proxy_core, app) -> None:
    config = lifecycle.load_config(proxy_lab.name)
    port = proxy_core.read_namespaced_service("web", app).spec.ports[0].node_port
    nodes = node_addresses(proxy_core)
    for ip in nodes.values():
        assert http_get(ip, port, "/clientip").rsplit(":", 1)[0] != config.host_ip
    proxy_core.patch_namespaced_service("web", app, {"spec": {"externalTrafficPolicy": "Local"}})
    # one pod per node: every node has a local endpoint and keeps the client address
    for ip in nodes.values():
        eventually(functools.partial(_sees_client, ip, port, config.host_ip), 5,
                   f"the host's address through {ip}")


def test_pods_cannot_open_connections_to_the_host(proxy_lab, proxy_core, app) -> None:
    config = lifecycle.load_config(proxy_lab.name)
    port = proxy_core.read_namespaced_service("web", app).spec.ports[0].node_port
    node_ip = next(iter(node_addresses(proxy_core).values()))
    svc_ip = proxy_core.read_namespaced_service("web", app).spec.cluster_ip

    def dial(host: str, to_port: int) -> dict[str, Any]:
        url = f"/dial?host={host}&port={to_port}&request=hostname&protocol=http&tries=1"
        try:
            return json.loads(http_get(node_ip, port, url, timeout=10))
        except urllib.error.HTTPError as err:  # netexec answers 417 when every try failed
            return json.loads(err.read().decode())
    # The pod can dial in the cluster (control) ...
    assert dial(svc_ip, 8080)["responses"]
    # ... but not the host: the node resets the connection at once.
    t0 = time.monotonic()
    result = dial(config.host_ip, 9)
    assert not result["responses"] and "refused" in " ".join(result["errors"]).lower(), result
    assert time.monotonic() - t0 < 3
    counters = "".join(
        subprocess.run(["ip", "netns", "exec", config.node_netns(i), "nft", "list", "table", "ip", "k8snet-guard"],
                       capture_output=True, text=True, check=True).stdout for i in range(config.nodes))
    assert re.search(r"reject with tcp reset", counters)
    assert any(int(n) > 0 for n in re.findall(r"tcp counter packets (\d+)", counters)), counters


def _outcome(ip: str, port: int, timeout: float = 1.5) -> str:
    """"answered", "refused" (a reject reached the client) or "timeout" (dropped)."""
    try:
        http_get(ip, port, "/hostname", timeout=timeout)
        return "answered"
    except urllib.error.URLError as err:
        reason: object = err.reason
    except OSError as err:
        reason = err
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, TimeoutError):
        return "timeout"
    return repr(reason)


# Run inside a node's network namespace: connect to the VIP the node itself holds.
_FROM_NODE = """
import socket, sys
s = socket.socket()
s.settimeout(1.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("answered", s.getsockname()[0])
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")
"""


def test_loadbalancer_source_ranges(proxy_lab, proxy_core, app) -> None:
    """loadBalancerSourceRanges guard the LoadBalancer IP (not the NodePort): others
    are dropped; the node holding the VIP may connect to it from the VIP when a range
    holds the node's address; without endpoints nftables mode still drops others,
    iptables mode rejects everyone (as upstream's two proxiers do)."""
    from kubernetes import client

    config = lifecycle.load_config(proxy_lab.name)
    nodes = list(node_addresses(proxy_core).values())
    elsewhere = ["198.51.100.0/24"]
    proxy_core.patch_namespaced_service("web", app, {"spec": {
        "type": "LoadBalancer", "loadBalancerSourceRanges": elsewhere}})
    ing = eventually(lambda: proxy_core.read_namespaced_service("web", app).status.load_balancer.ingress, 5,
                     "an EXTERNAL-IP")
    ip = ing[0].ip
    port = proxy_core.read_namespaced_service("web", app).spec.ports[0].node_port
    eventually(lambda: _outcome(ip, 8080) == "timeout", 10, "the host dropped at the VIP")
    assert http_get(nodes[0], port, "/hostname")  # the NodePort takes anyone

    # The host and the nodes in the ranges (not the VIP itself).
    allowed = [f"{config.host_ip}/32", *(f"{n}/32" for n in nodes)]
    proxy_core.patch_namespaced_service("web", app, {"spec": {"loadBalancerSourceRanges": allowed}})
    eventually(lambda: _outcome(ip, 8080) == "answered", 10, "the host let in")
    holder = eventually(lambda: node_holding(config, ip), 5, "a node holding the VIP")[0]
    from_node = subprocess.run(["ip", "netns", "exec", config.node_netns(holder), "python3", "-c", _FROM_NODE,
                                ip, "8080"], capture_output=True, text=True, timeout=30).stdout.split()
    assert from_node == ["answered", ip], from_node  # the VIP as source, let in (allowFromNode)

    # No endpoints: a client in the ranges learns it (refused) ...
    client.AppsV1Api(proxy_core.api_client).patch_namespaced_deployment_scale(
        "web", app, {"spec": {"replicas": 0}})
    eventually(lambda: _outcome(ip, 8080) == "refused", 60, "the Service without endpoints refused")
    # ... one outside them is dropped in nftables mode, refused in iptables mode.
    proxy_core.patch_namespaced_service("web", app, {"spec": {"loadBalancerSourceRanges": elsewhere}})
    want = "timeout" if config.proxy_mode == "nftables" else "refused"
    eventually(lambda: _outcome(ip, 8080) == want, 10, f"the host {want} without endpoints")
    time.sleep(1)
    assert _outcome(ip, 8080) == want  # settled, not a sync in flight
