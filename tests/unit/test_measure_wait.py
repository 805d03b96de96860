"""measure._wait_ended: the probe pod's end comes from a watch started at the list's
resourceVersion (no polling); a pod that is gone, or a deadline, goes to Cluster.wait
for its explanation."""

from __future__ import annotations

from types import SimpleNamespace

from k8snet import measure


def pod(phase: str, rv: str = "5") -> SimpleNamespace:
    return SimpleNamespace(status=SimpleNamespace(phase=phase), metadata=SimpleNamespace(resource_version=rv))


class FakeCluster:
    def __init__(self, listed: list[SimpleNamespace]) -> None:
        self.lists = 0
        self.waited: list[dict] = []
        listing = SimpleNamespace(items=listed, metadata=SimpleNamespace(resource_version="7"))

        def list_namespaced_pod(namespace: str, **kwargs: object) -> SimpleNamespace:
            self.lists += 1
            assert kwargs["field_selector"] == "metadata.name=probe-x"
            return listing

        self.core = SimpleNamespace(list_namespaced_pod=list_namespaced_pod, api_client=SimpleNamespace(
            sanitize_for_serialization=lambda obj: {"status": {"phase": obj.status.phase}}))

    def wait(self, kind: str, name: str, **kwargs: object) -> list[dict]:
        self.waited.append({"kind": kind, "name": name, **kwargs})
        return [{"status": {"phase": "explained"}}]


class FakeWatch:
    def __init__(self, events: list[tuple[str, SimpleNamespace]]) -> None:
        self.events = events
        self.kwargs: dict = {}
        self.closed = False

    def __call__(self) -> FakeWatch:
        return self

    def stream(self, func: object, namespace: str, **kwargs: object):  # noqa: ANN201
        self.kwargs = kwargs
        watcher = self

        def gen():  # noqa: ANN202
            try:
                for kind, obj in watcher.events:
                    yield {"type": kind, "object": obj}
            finally:
                watcher.closed = True
        return gen()


def test_the_end_comes_from_the_watch_started_at_the_lists_version(monkeypatch):
    fake = FakeWatch([("MODIFIED", pod("Running")), ("MODIFIED", pod("Succeeded"))])
    monkeypatch.setattr(measure.watch, "Watch", fake)
    cluster = FakeCluster([pod("Pending")])
    assert measure._wait_ended(cluster, "probe-x", "ns", 30) == {"status": {"phase": "Succeeded"}}
    assert fake.kwargs["resource_version"] == "7" and fake.kwargs["field_selector"] == "metadata.name=probe-x"
    assert fake.closed and cluster.lists == 1 and not cluster.waited


def test_an_ended_pod_needs_no_watch(monkeypatch):
    monkeypatch.setattr(measure.watch, "Watch", lambda: (_ for _ in ()).throw(AssertionError("watched")))
    assert measure._wait_ended(FakeCluster([pod("Failed")]), "probe-x", "ns", 30) == {"status": {"phase": "Failed"}}


def test_a_deleted_pod_is_explained_by_cluster_wait(monkeypatch):
    monkeypatch.setattr(measure.watch, "Watch", FakeWatch([("DELETED", pod("Running"))]))
    cluster = FakeCluster([pod("Running")])
    assert measure._wait_ended(cluster, "probe-x", "ns", 30) == {"status": {"phase": "explained"}}
    assert cluster.waited == [{"kind": "Pod", "name": "probe-x", "namespace": "ns", "condition": "complete",
                               "timeout": 0, "progress": False}]
