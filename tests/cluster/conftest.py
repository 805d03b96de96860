"""Integration tests of the k8snet helper against a live cluster.

The cluster is the one ``$KUBECONFIG`` names (``$K8SNET_CONTEXT`` picks a context), or
else the running lab's (``k8snet lab kubeconfig --path``, lab ``$K8SNET_LAB`` or
``k8snet``). The tests skip only when no cluster is reachable, and say why. Each test
works in its own temporary namespace, deleted even when the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from k8snet import Cluster

BACKENDS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: backends}
spec:
  replicas: 3
  selector: {matchLabels: {app: backends}}
  template:
    metadata: {labels: {app: backends}}
    spec:
      containers:
      - name: agnhost
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: backends}
spec:
  selector: {app: backends}
  ports: [{port: 80, targetPort: 8080}]
"""


def _kubeconfig() -> tuple[str | None, str]:
    """A kubeconfig path (or None for the client's default) and where it came from."""
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"], "$KUBECONFIG"
    lab = os.environ.get("K8SNET_LAB", "k8snet")
    out = subprocess.run([sys.executable, "-m", "k8snet", "lab", "kubeconfig", "--path", "--name", lab],
                         capture_output=True, text=True, timeout=30)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip(), f"lab {lab!r}"
    if os.environ.get("K8SNET_CONTEXT"):
        return None, f"context {os.environ['K8SNET_CONTEXT']!r}"
    pytest.skip(f"no cluster: $KUBECONFIG is unset and {out.stderr.strip() or 'the lab is not running'}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    path, source = _kubeconfig()
    try:
        c = Cluster.from_kubeconfig(path, os.environ.get("K8SNET_CONTEXT"))
        from kubernetes import client

        client.VersionApi(c.api_client).get_code(_request_timeout=10)
    except Exception as err:  # noqa: BLE001 - any failure to reach it means "no cluster"
        pytest.skip(f"no cluster reachable through {source}: {type(err).__name__}: {err}")
    yield c
    c.api_client.close()


@pytest.fixture()
def ns(cluster: Cluster) -> Iterator[str]:
    with cluster.namespace("k8snet-test") as name:
        yield name


@pytest.fixture()
def backends(cluster: Cluster, ns: str) -> str:
    """Three agnhost netexec pods behind the Service ``backends``; returns the namespace."""
    cluster.apply(BACKENDS, ns)
    cluster.wait("Deployment", "backends", namespace=ns, timeout=180, progress=False)
    cluster.wait("Service", "backends", namespace=ns, timeout=60, progress=False)
    return ns
