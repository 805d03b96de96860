"""Probing Services from inside lab pods, for the kube-proxy tests in both modes."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from .kube import exec_in, ready_pods

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"

# Runs in a python:3.12 pod: N new TCP connections (one HTTP/1.0 request each, an
# optional pause between them); prints the answers, "!<error class>" for failures.
CONNECT = r"""
import json, socket, sys, time
host, port, n, timeout, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
out = []
for i in range(n):
    if i and pause:
        time.sleep(pause)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        out.append(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
    except OSError as e:
        out.append("!" + type(e).__name__)
print(json.dumps(out))
"""


def connect(core: client.CoreV1Api, namespace: str, pod: str, host: str, port: int, n: int, *,
            timeout: float = 3.0, pause: float = 0.0) -> list[str]:
    """``n`` new connections from ``pod`` to ``host:port``: the backends' answers, in order."""
    out, err, code = exec_in(core, namespace, pod, ["python3", "-c", CONNECT, host, str(port), str(n),
                                                    str(timeout), str(pause)])
    assert code == 0, f"connect script failed ({code}): {err}"
    return json.loads(out)


def hostname_pod(name: str, labels: dict[str, str], node: str | None = None) -> dict[str, Any]:
    """An agnhost serve-hostname pod (HTTP on 9376 answers with the pod's name)."""
    spec: dict[str, Any] = {"containers": [{"name": "agnhost", "image": AGNHOST, "args": ["serve-hostname"],
                                            "ports": [{"containerPort": 9376}]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def client_pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "client", "image": "python:3.12", "command": ["sleep", "3600"]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"role": "client"}}, "spec": spec}


def service(name: str, selector: dict[str, str], **spec: Any) -> dict[str, Any]:
    """A Service on port 80 -> 9376."""
    return {"metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 9376}], **spec}}


def node_names(core: client.CoreV1Api) -> list[str]:
    return sorted(n.metadata.name for n in core.list_node().items)


def wait_ready(core: client.CoreV1Api, namespace: str, selector: str, count: int) -> list:
    return ready_pods(core, namespace, selector, count)


def wait_endpoints(core: client.CoreV1Api, namespace: str, service_name: str, count: int) -> set[str]:
    """Waits until the Service's EndpointSlices list ``count`` ready addresses; returns them."""
    from .kube import wait_until

    discovery = client.DiscoveryV1Api(core.api_client)

    def ready() -> set[str] | None:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service_name}").items
        ips = {a for s in slices for e in (s.endpoints or []) if e.conditions.ready for a in e.addresses}
        return ips if len(ips) == count else None
    return wait_until(f"{count} ready endpoints of {service_name}", ready)


def wait_answers(core: client.CoreV1Api, namespace: str, pod: str, host: str, port: int,
                 expect: set[str], tries: int = 40) -> None:
    """Waits until kube-proxy has programmed every one of ``expect`` (it lags the slices by
    its debounce): connects until each expected backend has answered."""
    seen: set[str] = set()
    for _ in range(tries):
        seen |= set(connect(core, namespace, pod, host, port, 10, timeout=1.0))
        if expect <= seen:
            return
    raise AssertionError(f"only {seen} answered through {host}:{port}, expected {expect}")
