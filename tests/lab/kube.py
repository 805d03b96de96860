"""Small helpers over the official Python client for lab tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubernetes import client
from kubernetes.stream import stream
from scipy.stats import chisquare

from k8snet.lab.polling import wait_until

#: A spread fails the uniformity check below this chi-square p-value. Several checks run
#: per test pass; at 1e-4 a truly uniform balancer fails one by chance in well under 0.1 %
#: of passes, while a real skew (0.4/0.3/0.3 over 1,000 connections) gives p ≈ 5e-5.
UNIFORM_P = 1e-4


def assert_uniform(counts: Iterable[int], context: object = None) -> None:
    """New connections spread evenly: the chi-square test does not reject equal shares."""
    values = list(counts)
    p_value = float(chisquare(values).pvalue)
    assert p_value > UNIFORM_P, f"spread {context if context is not None else values} is not uniform (p={p_value:.2g})"


def ready_pods(core: client.CoreV1Api, namespace: str, selector: str, count: int, timeout: float = 60.0) -> list:
    def check():
        pods = [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
                if p.metadata.deletion_timestamp is None]
        ready = [p for p in pods if p.status.phase == "Running"
                 and all(c.ready for c in (p.status.container_statuses or []))]
        return ready if len(ready) == count == len(pods) else None
    return wait_until(f"{count} ready pods with {selector}", check, timeout)


def exec_in(core: client.CoreV1Api, namespace: str, pod: str, command: list[str],
            container: str | None = None) -> tuple[str, str, int]:
    """Runs a command in a pod through the exec WebSocket; returns stdout, stderr, exit code."""
    extra = {"container": container} if container else {}
    resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=command, **extra,
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=120)
    out, err = resp.read_stdout(), resp.read_stderr()
    code = resp.returncode
    resp.close()
    return out, err, code


def deployment(name: str, image: str, replicas: int, labels: dict[str, str], *, args: list[str] | None = None,
               port: int | None = None) -> dict:
    container: dict[str, Any] = {"name": name, "image": image}
    if args:
        container["args"] = args
    if port:
        container["ports"] = [{"containerPort": port}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}


def pod(name: str, image: str, command: list[str], node: str | None = None) -> dict:
    spec: dict[str, Any] = {"containers": [{"name": name, "image": image, "command": command}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}
