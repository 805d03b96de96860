"""measure._wait_ended: the probe pod's end comes from Cluster.observe (a watch started
at the list's resourceVersion, tested against a real API server in
test_cluster_watch.py); a pod that is gone, or a deadline, goes to Cluster.wait for its
explanation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from k8snet import measure


def pod(phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "probe-x"}, "status": {"phase": phase}}


class FakeCluster:
    """observe() yields the given lists, one per change, then ends (its timeout)."""

    def __init__(self, *changes: list[dict[str, Any]]) -> None:
        self.changes = changes
        self.observed: dict[str, Any] = {}
        self.seen = 0
        self.waited: list[dict[str, Any]] = []

    def observe(self, kind: str, namespace: str, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        self.observed = {"kind": kind, "namespace": namespace, **kwargs}
        for objs in self.changes:
            self.seen += 1
            yield objs

    def wait(self, kind: str, name: str, **kwargs: object) -> list[dict[str, Any]]:
        self.waited.append({"kind": kind, "name": name, **kwargs})
        return [{"status": {"phase": "explained"}}]


def test_the_end_comes_from_the_change_that_shows_it():
    cluster = FakeCluster([pod("Pending")], [pod("Running")], [pod("Succeeded")], [pod("never read")])
    assert measure._wait_ended(cluster, "probe-x", "ns", 30) == pod("Succeeded")
    assert cluster.observed == {"kind": "Pod", "namespace": "ns", "name": "probe-x", "timeout": 30}
    assert cluster.seen == 3 and not cluster.waited


def test_a_deleted_pod_is_explained_by_cluster_wait():
    cluster = FakeCluster([pod("Running")], [])
    assert measure._wait_ended(cluster, "probe-x", "ns", 30) == {"status": {"phase": "explained"}}
    assert cluster.waited == [{"kind": "Pod", "name": "probe-x", "namespace": "ns", "condition": "complete",
                               "timeout": 0, "progress": False}]


def test_a_pod_that_never_ends_is_explained_by_cluster_wait():
    cluster = FakeCluster([pod("Running")])
    assert measure._wait_ended(cluster, "probe-x", "ns", 1) == {"status": {"phase": "explained"}}
    assert len(cluster.waited) == 1
