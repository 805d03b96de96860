"""Cluster.observe and the waits built on it (Cluster.wait, measure.wait_backends)
against the real ApiServer on a loopback socket, through the real `kubernetes` client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from k8snet import measure
from k8snet.cluster import Cluster, WaitTimeout
from k8snet.lab import store as store_module
from k8snet.lab.errors import ApiError
from tests.unit._apiserver import Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = Lab(tmp_path_factory.mktemp("apiserver"))
    yield running
    running.close()


@pytest.fixture
def cluster(lab: Lab) -> Cluster:
    return Cluster.from_kubeconfig(lab.kubeconfig)


def later(delay: float, *changes: Any) -> threading.Thread:
    """Runs each change (a callable) ``delay`` seconds apart, from another thread."""
    def run() -> None:
        for change in changes:
            time.sleep(delay)
            change()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"set": "w"}},
            "data": {"v": value}}


def test_observe_lists_then_follows_each_change(lab: Lab, cluster: Cluster) -> None:
    cluster.apply(configmap("w-a", "1"))
    changes = (lambda: cluster.apply(configmap("w-b", "1")),
               lambda: cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w-a"},
                                      "data": {"v": "2"}}),
               lambda: cluster.delete("ConfigMap", "w-b"))
    seen = []
    for objs in cluster.observe("ConfigMap", selector="set=w", timeout=30):
        seen.append([(o["metadata"]["name"], o["data"]["v"]) for o in objs])
        if len(seen) == 1:  # the list is in: the changes may come now
            thread = later(0.05, *changes)
        if len(seen) == 4:
            break
    thread.join()
    assert seen == [[("w-a", "1")], [("w-a", "1"), ("w-b", "1")], [("w-a", "2"), ("w-b", "1")], [("w-a", "2")]]
    cluster.delete("ConfigMap", "w-a")


def test_observe_lists_again_when_the_history_it_would_watch_from_is_gone(
        lab: Lab, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.apply(configmap("w-g", "1"))
    changes = cluster.observe("ConfigMap", name="w-g", timeout=30)
    try:
        assert [o["data"]["v"] for o in next(changes)] == ["1"]
        listed_at = lab.core.store.resource_version
        # the store keeps two events and compacts at every write: the list's version is gone
        monkeypatch.setattr(store_module, "HISTORY", 2)
        monkeypatch.setattr(store_module, "_COMPACT_EVERY", 1)
        for i in range(4):
            cluster.apply(configmap(f"w-filler-{i}", "x"))
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w-g"}, "data": {"v": "2"}})
        assert lab.core.store.oldest_resumable > listed_at
        # a watch from the list's version gets 410 Expired; observe lists again instead of failing
        assert [o["data"]["v"] for o in next(changes)] == ["2"]
    finally:
        changes.close()
        for name in ["w-g", *(f"w-filler-{i}" for i in range(4))]:
            cluster.delete("ConfigMap", name)


def test_observe_ends_at_its_timeout(cluster: Cluster) -> None:
    t0 = time.monotonic()
    assert list(cluster.observe("ConfigMap", name="never-there", timeout=1)) == [[]]
    # timeoutSeconds is whole seconds: the server ends the watch within a second more
    # (the upper bound leaves room for a loaded machine; a watch that never ended would hang)
    assert 1 <= time.monotonic() - t0 < 10


def ready_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "c", "image": "busybox"}]}}


def test_wait_returns_when_the_watch_shows_the_condition(lab: Lab, cluster: Cluster) -> None:
    cluster.apply(ready_pod("w-pod"))
    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    later(0.3, lambda: lab.call(lab.core.patch("pods", "default", "w-pod", ready, subresource="status")))
    pods = cluster.wait("Pod", "w-pod", timeout=30, progress=False)
    assert pods[0]["status"]["phase"] == "Running"

    later(0.3, lambda: cluster.delete("Pod", "w-pod", grace_period_seconds=0))
    assert cluster.wait("Pod", "w-pod", condition="deleted", timeout=10, progress=False) == []
    with pytest.raises(WaitTimeout, match="pod w-pod not ready after 1 s: no such object"):
        cluster.wait("Pod", "w-pod", timeout=1, progress=False)


def endpoints(name: str, ready: list[str], not_ready: list[str], pods: list[str] | None = None) -> dict[str, Any]:
    """Endpoints with two ports; ``pods`` names the ready addresses' pods (targetRef)."""
    refs = [{"targetRef": {"kind": "Pod", "name": pod}} for pod in pods] if pods else [{} for _ in ready]
    subset = {"addresses": [{"ip": ip, **ref} for ip, ref in zip(ready, refs)],
              "notReadyAddresses": [{"ip": ip} for ip in not_ready],
              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443, "protocol": "TCP"}]}
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name}, "subsets": [subset]}


def test_wait_backends_counts_ready_addresses_from_the_watch(lab: Lab, cluster: Cluster,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "PROXY_SYNC_SECONDS", 0.0)  # not a lab: no lab facts ConfigMap
    ips = [f"10.244.0.{i}" for i in range(2, 5)]  # three backends, each on two ports
    cluster.apply(endpoints("w-svc", [], ips))
    later(0.2, *[lambda n=n: cluster.apply(endpoints("w-svc", ips[:n], ips[n:])) for n in (1, 2, 3)])
    assert measure.wait_backends(cluster, "w-svc", "default", 3, timeout=10) == 3
    with pytest.raises(measure.ProbeError, match="has 3 ready endpoints after 1 s, not 4"):
        measure.wait_backends(cluster, "w-svc", "default", 4, timeout=1)
    # hostNetwork pods on one node share its IP: each is a backend of its own
    cluster.apply(endpoints("w-host", ["172.18.0.2", "172.18.0.2"], [], pods=["w-host-a", "w-host-b"]))
    assert measure.wait_backends(cluster, "w-host", "default", 2, timeout=10) == 2


def test_facts_this_server_does_not_publish(cluster: Cluster) -> None:
    # read through the dynamic client: no lab facts (not a k8snet lab), no kube-proxy ConfigMap
    assert cluster.lab_facts() is None and cluster._kube_proxy_mode() is None
    assert cluster.get("ConfigMap", "nothing-here") is None


def test_logs_of_a_missing_pod_is_the_api_servers_404(cluster: Cluster) -> None:
    # through the dynamic client's raw request: the Status comes back as an ApiError
    with pytest.raises(ApiError) as err:
        cluster.logs("no-such-pod")
    assert err.value.code == 404 and "no-such-pod" in str(err.value)
