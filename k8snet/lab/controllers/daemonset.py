"""The DaemonSet controller: one pod per node that should run it
(pkg/controller/daemon).

A node should run a DaemonSet's pod when it matches the template's nodeSelector and
its NoSchedule/NoExecute taints are tolerated by the template's tolerations plus the
ones every daemon pod gets (not-ready, unreachable, unschedulable, the pressure
taints; daemon_util.AddOrUpdateDaemonPodTolerations). Node readiness and
``spec.unschedulable`` do not matter: a DaemonSet runs node agents.

Each reconcile creates the missing pods, deletes the extra ones (a second pod on a
node, pods on nodes that should not run one, failed pods, which are then replaced)
and, under ``updateStrategy: RollingUpdate``, deletes pods of an older template while
at most ``maxUnavailable`` pods are unavailable (``OnDelete``: only pods a user
deletes are replaced). The template version is the ``controller-revision-hash``
label (the lab serves no ControllerRevisions; the hash is the template's).

The lab binds each pod to its node itself (``spec.nodeName``), as DaemonSets did
before 1.12; the real controller sets a node affinity and lets the scheduler bind.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Controller, Informers
from .scheduler import tolerates
from .util import is_controlled_by, is_deleting, is_pod_available, is_pod_ready, owner_ref_to

DAEMON_SETS = "apps/daemonsets"
REVISION_LABEL = "controller-revision-hash"
EXPECTATION_TIMEOUT = 30.0
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def template_hash(ds: Obj) -> str:
    text = json.dumps(ds["spec"].get("template") or {}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def daemon_tolerations(template_spec: Obj) -> list[Obj]:
    own = [t for t in template_spec.get("tolerations") or [] if isinstance(t, dict)]
    keys = {(t.get("key"), t.get("effect")) for t in own}
    return own + [dict(t) for t in DAEMON_TOLERATIONS if (t["key"], t["effect"]) not in keys]


def should_run(ds: Obj, node: Obj) -> bool:
    spec = (ds["spec"].get("template") or {}).get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = daemon_tolerations(spec)
    return all(tolerates(tolerations, taint) for taint in (node.get("spec") or {}).get("taints") or []
               if taint.get("effect") in ("NoSchedule", "NoExecute"))


def pod_for_node(ds: Obj, node: str, revision: str) -> Obj:
    template = ds["spec"]["template"]
    tmeta = template.get("metadata") or {}
    spec = dict(template.get("spec") or {})
    spec["tolerations"] = daemon_tolerations(spec)
    spec["nodeName"] = node
    metadata: dict[str, Any] = {
        "generateName": f"{ds['metadata']['name']}-",
        "namespace": ds["metadata"]["namespace"],
        "labels": {**(tmeta.get("labels") or {}), REVISION_LABEL: revision},
        "ownerReferences": [owner_ref_to(ds, "apps/v1", "DaemonSet")],
    }
    if tmeta.get("annotations"):
        metadata["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def max_unavailable(ds: Obj, desired: int) -> int:
    """rollingUpdate.maxUnavailable as a count (a percentage of desired, rounded up), at least 1."""
    value = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return max(1, math.ceil(desired * int(value[:-1]) / 100))
    return max(1, int(value)) if isinstance(value, int) else 1


def _finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class DaemonSetController(Controller):
    component = "daemonset-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.daemonsets = self.watch(DAEMON_SETS, self.enqueue)
        self.pods = self.watch("pods", self.enqueue_controller("DaemonSet"))
        self.nodes = self.watch("nodes", self._on_node)
        # (ds uid, node) -> deadline: created but not yet in the cache
        self._creating: dict[tuple[str, str], float] = {}

    def _on_node(self, etype: str, node: Obj) -> None:
        self.resync()

    def resync(self) -> None:
        self.enqueue_all(self.daemonsets)

    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        ds = self.daemonsets.get(ns, name)
        if ds is None:
            return
        revision = template_hash(ds)
        owned = [p for p in self.pods.items(ns) if is_controlled_by(p, ds) and not is_deleting(p)]
        by_node: dict[str, list[Obj]] = {}
        for pod in owned:
            by_node.setdefault((pod.get("spec") or {}).get("nodeName") or "", []).append(pod)
        wanted = {n["metadata"]["name"] for n in self.nodes.items() if should_run(ds, n)}
        if not is_deleting(ds):
            await self._manage(ds, wanted, by_node, revision)
        await self._update_status(ds, wanted, by_node, revision)

    async def _manage(self, ds: Obj, wanted: set[str], by_node: dict[str, list[Obj]], revision: str) -> None:
        uid, clock = ds["metadata"]["uid"], time.monotonic()
        for node, pods in by_node.items():
            failed = [p for p in pods if _finished(p)]
            running = sorted((p for p in pods if not _finished(p)),
                             key=lambda p: p["metadata"].get("creationTimestamp", ""))
            extra = running if node not in wanted else running[1:]
            for pod in failed + extra:
                await self._delete(ds, pod)
        for node in sorted(wanted):
            if any(not _finished(p) for p in by_node.get(node, [])):
                self._creating.pop((uid, node), None)
                continue
            if self._creating.get((uid, node), 0) > clock:
                continue
            pod = await self.client.create("pods", ds["metadata"]["namespace"], pod_for_node(ds, node, revision))
            self._creating[(uid, node)] = clock + EXPECTATION_TIMEOUT
            await self._event(ds, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        if (ds["spec"].get("updateStrategy") or {}).get("type") == "RollingUpdate":
            await self._roll(ds, wanted, by_node, revision)

    async def _roll(self, ds: Obj, wanted: set[str], by_node: dict[str, list[Obj]], revision: str) -> None:
        """Deletes old-template pods while the unavailable ones stay within maxUnavailable."""
        pods = [p for node in wanted for p in by_node.get(node, []) if not _finished(p)]
        min_ready = ds["spec"].get("minReadySeconds", 0)
        unavailable = len(wanted) - sum(1 for p in pods if is_pod_available(p, min_ready))
        budget = max_unavailable(ds, len(wanted)) - unavailable
        old = [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision]
        # Unavailable old pods first: replacing them costs nothing.
        old.sort(key=lambda p: is_pod_available(p, min_ready))
        for pod in old:
            if is_pod_available(pod, min_ready):
                if budget <= 0:
                    break
                budget -= 1
            await self._delete(ds, pod)

    async def _delete(self, ds: Obj, pod: Obj) -> None:
        m = pod["metadata"]
        try:
            await self.client.delete("pods", m["namespace"], m["name"], preconditions={"uid": m["uid"]})
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            return
        await self._event(ds, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    async def _event(self, ds: Obj, reason: str, message: str) -> None:
        await self.recorder.record(ds, "Normal", reason, message, kind="DaemonSet", api_version="apps/v1")

    async def _update_status(self, ds: Obj, wanted: set[str], by_node: dict[str, list[Obj]], revision: str) -> None:
        min_ready = ds["spec"].get("minReadySeconds", 0)
        scheduled = {node: [p for p in pods if not _finished(p)] for node, pods in by_node.items()}
        on_wanted = [p for node in wanted for p in scheduled.get(node, [])]
        available = sum(1 for p in on_wanted if is_pod_available(p, min_ready))
        status: Obj = {
            "currentNumberScheduled": sum(1 for node in wanted if scheduled.get(node)),
            "numberMisscheduled": sum(1 for node, pods in scheduled.items() if pods and node not in wanted),
            "desiredNumberScheduled": len(wanted),
            "numberReady": sum(1 for p in on_wanted if is_pod_ready(p)),
            "observedGeneration": ds["metadata"].get("generation", 0),
            "updatedNumberScheduled": sum(1 for p in on_wanted
                                          if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision),
            "numberAvailable": available,
            "numberUnavailable": len(wanted) - available,
        }
        # DaemonSetStatus: the four first counts are always written, the others omitempty.
        status = {k: v for i, (k, v) in enumerate(status.items()) if v or i < 4}
        if status != (ds.get("status") or {}):
            m = ds["metadata"]
            await self.client.update(DAEMON_SETS, m["namespace"], m["name"], {**ds, "status": status},
                                     subresource="status")
