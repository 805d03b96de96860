"""What the lab core does with Services, in both kube-proxy modes (iptables, nftables).

Each test runs once per mode (``proxy_lab`` in conftest.py): ClusterIP spread over
new connections, REJECT for a Service without endpoints, hairpin, UDP DNS through
the kube-dns Service, and NodePort from inside the cluster at every node.
"""

from __future__ import annotations

import time
from collections import Counter

from .kube import assert_uniform, exec_in, wait_until
from .svcprobe import client_pod, connect, hostname_pod, node_names, service, wait_answers, wait_endpoints, wait_ready

DNS_QUERY = r"""
import socket, struct, sys
# A minimal A query, sent over UDP to the kube-dns Service's cluster IP.
name = sys.argv[1]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("10.96.0.10", 53))
data, peer = s.recvfrom(4096)
print(peer[0], ".".join(str(b) for b in data[-4:]), data[3] & 0xF)
"""


def test_services_in_both_modes(proxy_lab, proxy_core, proxy_namespace):
    core, ns = proxy_core, proxy_namespace
    nodes = node_names(core)
    for i in range(3):
        core.create_namespaced_pod(ns, hostname_pod(f"web-{i}", {"app": "web"}, nodes[i % len(nodes)]))
    core.create_namespaced_pod(ns, client_pod("client"))
    core.create_namespaced_service(ns, service("web", {"app": "web"}, type="NodePort"))
    core.create_namespaced_service(ns, service("empty", {"app": "nothing"}))
    wait_ready(core, ns, "app=web", 3)
    wait_ready(core, ns, "role=client", 1)
    svc = core.read_namespaced_service("web", ns)
    wait_endpoints(core, ns, "web", 3)
    backends = {f"web-{i}" for i in range(3)}
    wait_answers(core, ns, "client", svc.spec.cluster_ip, 80, backends)

    # ClusterIP: 300 new connections spread evenly over the three pods.
    counts = Counter(connect(core, ns, "client", svc.spec.cluster_ip, 80, 300))
    assert set(counts) == backends, counts
    assert_uniform(counts.values(), counts)

    # No endpoints: refused at once (REJECT), not a timeout.
    empty_ip = core.read_namespaced_service("empty", ns).spec.cluster_ip
    start = time.monotonic()
    assert wait_until("REJECT for the empty service", lambda: connect(
        core, ns, "client", empty_ip, 80, 3, timeout=2) == ["!ConnectionRefusedError"] * 3)
    assert time.monotonic() - start < 10

    # Hairpin: a pod reaching itself through a Service that has only itself.
    core.create_namespaced_service(ns, service("solo", {"statefulset.kubernetes.io/pod-name": "web-0"}))
    core.patch_namespaced_pod("web-0", ns, {"metadata": {"labels": {"statefulset.kubernetes.io/pod-name": "web-0"}}})
    wait_endpoints(core, ns, "solo", 1)
    solo_ip = core.read_namespaced_service("solo", ns).spec.cluster_ip

    # (python3, not busybox wget: the agnhost image has both, and wget is not the point.)
    wait_until("web-0 to reach itself through its Service", lambda: connect(
        core, ns, "web-0", solo_ip, 80, 3, timeout=1) == ["web-0"] * 3, timeout=20)

    # NodePort from inside the cluster, at every node's address.
    node_port = svc.spec.ports[0].node_port
    for node in core.list_node().items:
        ip = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        answers = connect(core, ns, "client", ip, node_port, 20)
        assert set(answers) <= backends and len(set(answers)) > 1, (node.metadata.name, answers)

    # UDP DNS through the kube-dns Service: the answer comes back from 10.96.0.10
    # (conntrack reverses the DNAT) with the Service's cluster IP.
    out, err, code = exec_in(core, ns, "client", ["python3", "-c", DNS_QUERY, f"web.{ns}.svc.cluster.local"])
    assert code == 0, err
    assert out.split() == ["10.96.0.10", svc.spec.cluster_ip, "0"], out
