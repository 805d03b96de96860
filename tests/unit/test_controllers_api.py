"""The controllers against a real in-process ApiCore on a temporary SQLite store.

No kubelet runs here: the test plays its part through the API's own seams, as a
kubelet would (status subresource for Running/Ready, delete with grace 0 to finish a
graceful pod deletion). Everything else is the ControllerManager's doing.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from k8snet.lab.api.admission import Admission
from k8snet.lab.api.core import ApiCore
from k8snet.lab.config import LabConfig
from k8snet.lab.controllers import ControllerManager
from k8snet.lab.errors import ApiError
from k8snet.lab.informer import Informer
from k8snet.lab.pki import Pki
from k8snet.lab.store import Store

NS = "default"


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}]}}


def deployment(name: str, replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 80}]}]}}}}


class PlayKubelet:
    """What a kubelet reports: bound pods become Running and Ready with an IP;
    pods being deleted are removed with grace 0 once "stopped"."""

    def __init__(self, core: ApiCore):
        self.core = core
        self.ips = itertools.count(2)
        self.informer = Informer(core, "pods")

    async def run(self) -> None:
        await self.informer.run(self._on_pod)

    async def _on_pod(self, etype: str, pod: dict[str, Any]) -> None:
        if etype == "DELETED":
            return
        m, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        try:
            if m.get("deletionTimestamp"):
                await self.core.delete("pods", m["namespace"], m["name"], grace_period_seconds=0)
            elif spec.get("nodeName") and not status.get("podIP"):
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                         for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
                await self.core.patch("pods", m["namespace"], m["name"], {"status": {
                    "phase": "Running", "podIP": f"10.244.0.{next(self.ips)}", "conditions": conds}},
                    subresource="status")
        except ApiError as err:
            if err.code not in (404, 409):
                raise


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (AssertionError, ApiError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check.__name__}")
        await asyncio.sleep(0.05)


@pytest.fixture
def lab(tmp_path: Path):
    config = LabConfig(name="ctrltest", state_dir=tmp_path)
    pki = Pki(config.pki_dir)
    pki.create(server_ips=["127.0.0.1"], server_names=["localhost"])
    store = Store(config.db_path)
    core = ApiCore(config, store, Admission(config, lambda key: store.list(key)[0]), pki)
    yield config, core
    store.close()


def run_lab(lab, scenario: Callable[[ApiCore], Awaitable[None]]) -> None:
    config, core = lab

    async def main() -> None:
        for name in (NS, "kube-system"):
            try:
                await core.create("namespaces", None, {"metadata": {"name": name}})
            except ApiError as err:
                if err.code != 409:
                    raise
        for n in ("n1", "n2"):
            await core.create("nodes", None, node(n))
        manager = ControllerManager(core, config)
        tasks = [asyncio.create_task(manager.run()), asyncio.create_task(PlayKubelet(core).run())]
        try:
            await manager.wait_synced()
            await asyncio.wait_for(scenario(core), 60)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def pods_of(core: ApiCore, app: str) -> list[dict[str, Any]]:
    return [p for p in (await core.list("pods", NS, label_selector=f"app={app}"))["items"]
            if not p["metadata"].get("deletionTimestamp")]


async def rolled_out(core: ApiCore, name: str, replicas: int) -> bool:
    """kubectl rollout status's test (rollout_status.go)."""
    d = await core.get("apps/deployments", NS, name)
    s = d.get("status", {})
    return (d["metadata"]["generation"] <= s.get("observedGeneration", 0)
            and s.get("updatedReplicas", 0) == replicas and s.get("replicas", 0) == replicas
            and s.get("availableReplicas", 0) == replicas)


def test_deployment_rollout_endpoints_scale_and_update(lab):
    async def scenario(core: ApiCore) -> None:
        # Namespace defaults come first: pods need the default ServiceAccount.
        await eventually(lambda: core.get("serviceaccounts", NS, "default"))
        cm = await eventually(lambda: core.get("configmaps", NS, "kube-root-ca.crt"))
        assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")

        await core.create("services", NS, {"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        await core.create("apps/deployments", NS, deployment("web", 3))
        await eventually(lambda: rolled_out(core, "web", 3))

        rss = (await core.list("apps/replicasets", NS))["items"]
        assert len(rss) == 1
        rs = rss[0]
        pth = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{pth}"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
        assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        pods = await pods_of(core, "web")
        assert len(pods) == 3
        assert all(p["metadata"]["name"].startswith(f"web-{pth}-") for p in pods)
        assert sorted(p["spec"]["nodeName"] for p in pods) in (["n1", "n1", "n2"], ["n1", "n2", "n2"])
        d = await core.get("apps/deployments", NS, "web")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
        reasons = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
        assert reasons == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}

        # Endpoints and the EndpointSlice follow the ready pods.
        async def endpoints_ready() -> bool:
            ep = await core.get("endpoints", NS, "web")
            ips = {a["ip"] for s in ep.get("subsets", []) for a in s.get("addresses", [])}
            assert ips == {p["status"]["podIP"] for p in await pods_of(core, "web")}
            assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
            slices = (await core.list("discovery.k8s.io/endpointslices", NS,
                                      label_selector="kubernetes.io/service-name=web"))["items"]
            assert len(slices) == 1
            s = slices[0]
            assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
            assert {e["addresses"][0] for e in s["endpoints"] if e["conditions"]["ready"]} == ips
            return len(ips) == 3
        await eventually(endpoints_ready)
        events = (await core.list("events", NS))["items"]
        assert {"Scheduled", "SuccessfulCreate", "ScalingReplicaSet"} <= {e["reason"] for e in events}

        # Scale to 0 and back.
        await core.patch("apps/deployments", NS, "web", {"spec": {"replicas": 0}})
        await eventually(lambda: rolled_out(core, "web", 0))
        await eventually(lambda: _no_pods(core, "web"))
        ep = await eventually(lambda: _endpoints_empty(core, "web"))
        assert "subsets" not in ep
        await core.patch("apps/deployments", NS, "web", {"spec": {"replicas": 3}})
        await eventually(lambda: rolled_out(core, "web", 3))

        # A rolling update to a new image replaces every pod.
        await core.patch("apps/deployments", NS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.28", "ports": [{"name": "http", "containerPort": 80}]}]}}}})
        await eventually(lambda: rolled_out(core, "web", 3), timeout=20)

        async def all_new() -> bool:
            pods = await pods_of(core, "web")
            return len(pods) == 3 and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
        await eventually(all_new)
        rss = {r["metadata"]["name"]: r for r in (await core.list("apps/replicasets", NS))["items"]}
        assert len(rss) == 2
        assert sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rss.values()) == ["1", "2"]
        assert sorted(r["spec"]["replicas"] for r in rss.values()) == [0, 3]

        # Deleting the Deployment garbage-collects its ReplicaSets and pods.
        await core.delete("apps/deployments", NS, "web")
        await eventually(lambda: _none_left(core, "apps/replicasets"))
        await eventually(lambda: _no_pods(core, "web"))

    run_lab(lab, scenario)


def test_namespace_deletion_and_foreground_cascade(lab):
    async def scenario(core: ApiCore) -> None:
        await core.create("namespaces", None, {"metadata": {"name": "scratch"}})
        await eventually(lambda: core.get("serviceaccounts", "scratch", "default"))
        d = deployment("app", 2)
        d["metadata"]["namespace"] = "scratch"
        await core.create("apps/deployments", "scratch", d)
        await core.create("configmaps", "scratch", {"metadata": {"name": "cfg"}, "data": {"a": "b"}})

        async def two_running() -> bool:
            pods = (await core.list("pods", "scratch"))["items"]
            return len(pods) == 2 and all(p.get("status", {}).get("podIP") for p in pods)
        await eventually(two_running)

        await core.delete("namespaces", None, "scratch")

        async def namespace_gone() -> bool:
            try:
                await core.get("namespaces", None, "scratch")
                return False
            except ApiError as err:
                return err.code == 404
        await eventually(namespace_gone, timeout=20)
        for key in ("pods", "apps/replicasets", "configmaps", "serviceaccounts"):
            assert (await core.list(key, "scratch"))["items"] == []

        # Foreground: the Deployment disappears only after its ReplicaSet and pods.
        await core.create("apps/deployments", NS, deployment("fg", 2))
        await eventually(lambda: rolled_out(core, "fg", 2))
        await core.delete("apps/deployments", NS, "fg", propagation_policy="Foreground")
        d = await core.get("apps/deployments", NS, "fg")
        assert "foregroundDeletion" in d["metadata"]["finalizers"]
        await eventually(lambda: _gone(core, "apps/deployments", "fg"))
        await eventually(lambda: _no_pods(core, "fg"))
        assert (await core.list("apps/replicasets", NS))["items"] == []

        # Orphan: the ReplicaSet survives without its owner reference.
        await core.create("apps/deployments", NS, deployment("orph", 1))
        await eventually(lambda: rolled_out(core, "orph", 1))
        await core.delete("apps/deployments", NS, "orph", propagation_policy="Orphan")
        await eventually(lambda: _gone(core, "apps/deployments", "orph"))
        rs = (await core.list("apps/replicasets", NS, label_selector="app=orph"))["items"]
        assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")

    run_lab(lab, scenario)


def test_namespace_is_finalized_without_waiting_for_a_recheck(lab, monkeypatch):
    """An emptied namespace goes in the reconcile that emptied it, and one whose pods
    linger goes when the last pod does: with the periodic recheck an hour away, both
    are gone within seconds (``kubectl delete namespace`` returns that fast)."""
    from k8snet.lab.controllers import namespace as namespace_controller
    monkeypatch.setattr(namespace_controller, "RECHECK", 3600.0)

    async def scenario(core: ApiCore) -> None:
        async def gone(name: str) -> bool:
            try:
                await core.get("namespaces", None, name)
                return False
            except ApiError as err:
                return err.code == 404

        # objects the first delete removes outright (a ConfigMap, the ServiceAccount)
        await core.create("namespaces", None, {"metadata": {"name": "plain"}})
        await eventually(lambda: core.get("serviceaccounts", "plain", "default"))
        await core.create("configmaps", "plain", {"metadata": {"name": "cfg"}, "data": {"a": "b"}})
        await core.delete("namespaces", None, "plain")
        await eventually(lambda: gone("plain"), timeout=5)

        # pods, which stay until their kubelet has stopped them (here: PlayKubelet)
        await core.create("namespaces", None, {"metadata": {"name": "busy"}})
        await eventually(lambda: core.get("serviceaccounts", "busy", "default"))
        d = deployment("app", 2)
        d["metadata"]["namespace"] = "busy"
        await core.create("apps/deployments", "busy", d)

        async def two_running() -> bool:
            pods = (await core.list("pods", "busy"))["items"]
            return len(pods) == 2 and all(p.get("status", {}).get("podIP") for p in pods)
        await eventually(two_running)
        await core.delete("namespaces", None, "busy")
        await eventually(lambda: gone("busy"), timeout=5)

    run_lab(lab, scenario)


def test_unschedulable_pod_gets_condition_and_event(lab):
    async def scenario(core: ApiCore) -> None:
        await eventually(lambda: core.get("serviceaccounts", NS, "default"))
        await core.create("pods", NS, {"metadata": {"name": "picky"}, "spec": {
            "nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "busybox"}]}})

        async def unschedulable() -> bool:
            pod = await core.get("pods", NS, "picky")
            cond = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), {})
            return cond.get("status") == "False" and cond.get("reason") == "Unschedulable"
        await eventually(unschedulable)
        events = (await core.list("events", NS, field_selector="involvedObject.name=picky"))["items"]
        assert any(e["reason"] == "FailedScheduling" and e["message"].startswith("0/2 nodes are available")
                   for e in events)
        await core.patch("nodes", None, "n2", {"metadata": {"labels": {"disk": "ssd"}}})

        async def bound() -> bool:
            return (await core.get("pods", NS, "picky"))["spec"].get("nodeName") == "n2"
        await eventually(bound)

    run_lab(lab, scenario)


async def _no_pods(core: ApiCore, app: str) -> bool:
    return not (await core.list("pods", NS, label_selector=f"app={app}"))["items"]


async def _none_left(core: ApiCore, key: str) -> bool:
    return not (await core.list(key, NS))["items"]


async def _gone(core: ApiCore, key: str, name: str) -> bool:
    try:
        await core.get(key, NS, name)
        return False
    except ApiError as err:
        return err.code == 404


async def _endpoints_empty(core: ApiCore, name: str) -> dict[str, Any] | None:
    ep = await core.get("endpoints", NS, name)
    return ep if "subsets" not in ep else None


def test_event_recorder_aggregates_repeats(lab):
    from k8snet.lab.events import EventRecorder

    async def main() -> None:
        _, core = lab
        await core.create("namespaces", None, {"metadata": {"name": NS}})
        cm = await core.create("configmaps", NS, {"metadata": {"name": "c"}})
        rec = EventRecorder(core, "test-controller", "n1")
        for _ in range(3):
            await rec.record(cm, "Normal", "Poked", "poked it", kind="ConfigMap", api_version="v1")
        await rec.record(cm, "Warning", "Other", "different")
        await rec.record({"metadata": {"name": "ghost"}}, "Normal", "X", "y")  # cluster-scoped → "default"
        events = {e["reason"]: e for e in (await core.list("events", NS))["items"]}
        poked = events["Poked"]
        assert poked["count"] == 3 and poked["metadata"]["name"].startswith("c.")
        assert len(poked["metadata"]["name"]) == len("c.") + 16
        assert poked["involvedObject"] == {"kind": "ConfigMap", "namespace": NS, "name": "c",
                                           "uid": cm["metadata"]["uid"], "apiVersion": "v1",
                                           "resourceVersion": cm["metadata"]["resourceVersion"]}
        assert poked["source"] == {"component": "test-controller", "host": "n1"}
        assert (poked["reportingComponent"], poked["reportingInstance"]) == ("test-controller", "n1")
        assert events["Other"]["type"] == "Warning" and "X" in events
        # A failure (namespace missing) is swallowed, never raised.
        await rec.record({"metadata": {"name": "z", "namespace": "nope"}}, "Normal", "Z", "z")

    asyncio.run(main())
