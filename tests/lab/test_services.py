"""Services on the lab: per-connection spread across replicas, and endpoints following pods."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from kubernetes import client, config

from .kube import assert_uniform, deployment, exec_in, pod, ready_pods, wait_until

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"

# Runs inside the client pod: N new TCP connections, one HTTP request each.
SPREAD_SCRIPT = """
import json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = []
for _ in range(n):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    names.append(data.split(b"\\r\\n\\r\\n", 1)[1].decode())
print(json.dumps(names))
"""


@pytest.fixture()
def apps(kubeconfig):
    api_client = config.new_client_from_config(config_file=kubeconfig)
    yield client.AppsV1Api(api_client)
    api_client.close()


def _hostname_service(core, apps, namespace, replicas):
    apps.create_namespaced_deployment(namespace, deployment(
        "hostnames", AGNHOST, replicas, {"app": "hostnames"}, args=["serve-hostname"], port=9376))
    core.create_namespaced_service(namespace, {"metadata": {"name": "hostnames"}, "spec": {
        "selector": {"app": "hostnames"}, "ports": [{"port": 80, "targetPort": 9376}]}})
    return ready_pods(core, namespace, "app=hostnames", replicas)


def test_new_connections_spread_uniformly_over_three_replicas(core, apps, namespace):
    backends = _hostname_service(core, apps, namespace, 3)
    core.create_namespaced_pod(namespace, pod("client", "python:3.12", ["sleep", "3600"]))
    ready_pods(core, namespace, "app=client", 1)
    svc_ip = core.read_namespaced_service("hostnames", namespace).spec.cluster_ip
    wait_until("all 3 endpoints", lambda: len(
        core.read_namespaced_endpoints("hostnames", namespace).subsets[0].addresses or []) == 3)

    out, err, code = exec_in(core, namespace, "client", ["python3", "-c", SPREAD_SCRIPT, svc_ip, "80", "300"])
    assert code == 0, err
    counts = Counter(json.loads(out))
    assert set(counts) == {p.metadata.name for p in backends}, counts
    assert_uniform(counts.values(), dict(counts))


def test_deleted_pod_is_replaced_and_endpoints_follow(core, apps, namespace):
    backends = _hostname_service(core, apps, namespace, 2)
    svc_ip = core.read_namespaced_service("hostnames", namespace).spec.cluster_ip
    victim = backends[0]
    core.delete_namespaced_pod(victim.metadata.name, namespace)

    pods = wait_until("a replacement pod", lambda: (
        lambda ps: ps if victim.metadata.name not in {p.metadata.name for p in ps} else None
    )(ready_pods(core, namespace, "app=hostnames", 2)))
    new_ips = {p.status.pod_ip for p in pods}
    assert victim.status.pod_ip not in new_ips, "the replacement pod gets a new IP"
    assert core.read_namespaced_service("hostnames", namespace).spec.cluster_ip == svc_ip

    def endpoints_match():
        subsets = core.read_namespaced_endpoints("hostnames", namespace).subsets or []
        return {a.ip for s in subsets for a in (s.addresses or [])} == new_ips
    wait_until("endpoints to follow the new pod", endpoints_match)
    slices = client.DiscoveryV1Api(core.api_client).list_namespaced_endpoint_slice(
        namespace, label_selector="kubernetes.io/service-name=hostnames").items
    assert {a for s in slices for e in s.endpoints for a in e.addresses if e.conditions.ready} == new_ips
