"""pods/portforward on the lab: kubectl port-forward (SPDY tunnelled in WebSocket) to
a Service and a pod, and the Python client's port-forward (v4 channels), reaching
nginx inside its pod's network namespace."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes.stream import portforward

from .kube import ready_pods

WELCOME = b"<title>Welcome to nginx!</title>"


@pytest.fixture()
def nginx(kubectl, core, namespace) -> str:
    """An nginx Deployment exposed as Service my-nginx; returns its pod's name."""
    kubectl("create", "deployment", "my-nginx", "--image=nginx", "--port=80")
    kubectl("expose", "deployment", "my-nginx", "--port=80")
    return ready_pods(core, namespace, "app=my-nginx", 1)[0].metadata.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


class PortForward:
    """``kubectl port-forward`` running in the background until stopped."""

    def __init__(self, kubeconfig: str, namespace: str, target: str, ports: str, cache: Path) -> None:
        self.proc = subprocess.Popen(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(cache),
                                      "-n", namespace, "port-forward", target, ports],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline()  # "Forwarding from 127.0.0.1:N -> 80" once listening

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        return err


def test_kubectl_port_forward_to_a_service_serves_nginx(kubeconfig, namespace, nginx, tmp_path):
    local = free_port()
    forward = PortForward(kubeconfig, namespace, "svc/my-nginx", f"{local}:80", tmp_path)
    try:
        assert forward.first_line.startswith(f"Forwarding from 127.0.0.1:{local} -> 80"), forward.first_line
        for _ in range(2):  # two connections, each a pair of SPDY streams in the same tunnel
            answer = http_get(local)
            assert answer.startswith(b"HTTP/1.1 200 OK") and WELCOME in answer, answer[:200]
    finally:
        err = forward.stop()
    assert "error" not in err.lower(), err


def test_kubectl_port_forward_to_a_closed_port_reports_the_kubelet_error(kubeconfig, namespace, nginx, tmp_path):
    local = free_port()
    forward = PortForward(kubeconfig, namespace, f"pod/{nginx}", f"{local}:81", tmp_path)
    try:
        assert forward.first_line.startswith(f"Forwarding from 127.0.0.1:{local} -> 81"), forward.first_line
        assert http_get(local) == b""  # kubectl closes the local connection
        deadline = time.monotonic() + 30
        while forward.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # kubectl gives up on the tunnel after the error
    finally:
        err = forward.stop()
    assert "error forwarding port 81 to pod " in err and ", uid : failed to connect to localhost:81 inside namespace" \
        in err and "connection refused" in err, err


def test_python_client_port_forward(core, namespace, nginx):
    pf = portforward(core.connect_get_namespaced_pod_portforward, nginx, namespace, ports="80,81")
    try:
        sock = pf.socket(80)
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK") and WELCOME in answer, answer[:200]
        refused = pf.socket(81)
        refused.settimeout(10)
        assert refused.recv(10) == b""
        assert "failed to connect to localhost:81" in (pf.error(81) or "")
        assert pf.error(80) is None
    finally:
        pf.close()
