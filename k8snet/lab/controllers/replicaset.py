"""The ReplicaSet controller: keeps ``spec.replicas`` active pods per ReplicaSet
(pkg/controller/replicaset).

Pods are claimed by controller ownerReference; matching orphans are adopted and owned
pods that stopped matching are released. Finished (Failed/Succeeded) or deleted pods
no longer count, so they get replaced. Creates go in slow-start batches (1, 2, 4, …)
so a bad template fails fast, and scale-down removes the least valuable pods first.

Because the informer cache lags our own writes, the controller remembers the pods it
just created or deleted ("expectations", by name) until the cache shows them, so a
reconcile in between never creates or deletes twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Controller, Informers, batch_period
from .util import (
    MalformedObject,
    controller_ref,
    is_controlled_by,
    is_deleting,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    owner_ref_to,
    owner_refs,
    parse_time,
    restart_count,
    seconds_until_available,
    selector_matches,
    spec_replicas,
)

RS = "apps/replicasets"
BURST_REPLICAS = 500          # the real controller's per-sync cap on creates/deletes
EXPECTATION_TIMEOUT = 30.0    # forget an expectation the cache never confirmed


def pods_to_delete(pods: list[Obj], diff: int, related: list[Obj] | None = None) -> list[Obj]:
    """The ``diff`` pods a scale-down removes, like getPodsToDelete + ActivePodsWithRanks:
    unscheduled before scheduled, Pending before Unknown before Running, not-ready before
    ready, pods doubled up on a node (by ``related`` pods of the same owner) first, then
    ready-for-less-time, more restarts, and newest first."""
    per_node: dict[str, int] = {}
    for p in related if related is not None else pods:
        node = p.get("spec", {}).get("nodeName", "")
        if node:
            per_node[node] = per_node.get(node, 0) + 1
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}

    def rank(p: Obj) -> tuple[Any, ...]:
        node = p.get("spec", {}).get("nodeName", "")
        ready = is_pod_ready(p)
        ready_since = _ready_since(p) if ready else 0.0
        created = parse_time(p["metadata"].get("creationTimestamp"))
        return (
            1 if node else 0,
            phase_rank.get(p.get("status", {}).get("phase", "Pending"), 0),
            1 if ready else 0,
            -per_node.get(node, 0) if node else 0,
            -ready_since,                       # ready more recently goes first
            -restart_count(p),
            -(created.timestamp() if created else 0.0),  # newer goes first
            p["metadata"]["name"],
        )

    return sorted(pods, key=rank)[:max(diff, 0)]


def _ready_since(pod: Obj) -> float:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            t = parse_time(c.get("lastTransitionTime"))
            return t.timestamp() if t else 0.0
    return 0.0


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes for creating ``count`` pods: 1, 2, 4, … (controller.slowStartBatch)."""
    batches, size = [], initial
    while count > 0:
        batches.append(min(size, count))
        count -= batches[-1]
        size *= 2
    return batches


def replica_set_status(rs: Obj, pods: list[Obj], at: Any = None) -> dict[str, Any]:
    """calculateStatus: counts over the RS's active pods."""
    template_labels = rs["spec"].get("template", {}).get("metadata", {}).get("labels") or {}
    min_ready = rs["spec"].get("minReadySeconds", 0)
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if _has_labels(p, template_labels)),
        "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_pod_available(p, min_ready, at)),
        "observedGeneration": rs["metadata"].get("generation", 0),
    }
    old = rs.get("status") or {}
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    # Zero counts are omitted on the wire (omitempty), except replicas.
    return {k: v for k, v in status.items() if v or k == "replicas"}


def _has_labels(pod: Obj, labels: dict[str, str]) -> bool:
    have = pod["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def pod_from_template(rs: Obj, api_version: str = "apps/v1", kind: str = "ReplicaSet") -> Obj:
    template = rs["spec"]["template"]
    tmeta = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "generateName": f"{rs['metadata']['name']}-",
        "namespace": rs["metadata"]["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_ref_to(rs, api_version, kind)],
    }
    for field in ("annotations", "finalizers"):
        if tmeta.get(field):
            metadata[field] = tmeta[field]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": dict(template.get("spec") or {})}


class ReplicaSetController(Controller):
    component = "replicaset-controller"
    # The kind this controller keeps replicas of (the ReplicationController manager
    # is the same controller for v1 ReplicationControllers, as upstream).
    resource_key = RS
    kind = "ReplicaSet"
    api_version = "apps/v1"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.replicasets = self.watch(self.resource_key, self._on_rs)
        self.pods = self.watch("pods", self._on_pod)
        # rs uid -> {pod name: deadline}: created but not yet seen / deleted but not yet gone
        self._adds: dict[str, dict[str, float]] = {}
        self._dels: dict[str, dict[str, float]] = {}

    # -- event routing --------------------------------------------------------
    def _on_rs(self, etype: str, rs: Obj) -> None:
        m = rs["metadata"]
        if etype == "DELETED":
            self._adds.pop(m.get("uid", ""), None)
            self._dels.pop(m.get("uid", ""), None)
        self.queue.add((m["namespace"], m["name"]))

    def _on_pod(self, etype: str, pod: Obj) -> None:
        m = pod["metadata"]
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != self.kind:
                return
            if etype == "MODIFIED" and is_pod_active(pod):
                # A live pod's status (its IP, Ready) only moves the status counters, and
                # each reconcile reads every pod of the set: batched, so 100 pods starting
                # together make a few status writes, not 100.
                rs = self.replicasets.get(m["namespace"], ref["name"])
                try:
                    size = spec_replicas(rs) if rs is not None else 0
                except MalformedObject:  # its reconcile reports it
                    size = 0
                self.queue.add_batched((m["namespace"], ref["name"]), batch_period(size))
            else:  # created, gone, finished or being deleted: replicas to make up at once
                self.queue.add((m["namespace"], ref["name"]))
            return
        # An orphan: every ReplicaSet that could adopt it should look.
        for rs in self.replicasets.items(m["namespace"]):
            if selector_matches(self.selector(rs), m.get("labels")):
                self.queue.add((m["namespace"], rs["metadata"]["name"]))

    def resync(self) -> None:
        self.enqueue_all(self.replicasets)

    # -- reconcile ------------------------------------------------------------
    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        rs = self.replicasets.get(ns, name)
        if rs is None:
            return
        pods = await self._claim_pods(rs)
        uid = rs["metadata"]["uid"]
        active = self._observe_expectations(uid, [p for p in pods if is_pod_active(p)])
        if not is_deleting(rs):
            await self._manage(rs, active, uid)
        await self._update_status(rs, [p for p in active if p is not None])

    @staticmethod
    def selector(rs: Obj) -> Obj | None:
        """The kind's selector as a LabelSelector."""
        return rs["spec"].get("selector")

    async def _claim_pods(self, rs: Obj) -> list[Obj]:
        """Pods this RS controls, adopting matching orphans and releasing non-matching ones."""
        selector = self.selector(rs)
        owned = []
        for pod in self.pods.items(rs["metadata"]["namespace"]):
            matches = selector_matches(selector, pod["metadata"].get("labels"))
            if is_controlled_by(pod, rs):
                if matches:
                    owned.append(pod)
                elif not is_deleting(pod):
                    await self._set_owner_refs(pod, [r for r in owner_refs(pod)
                                                     if r.get("uid") != rs["metadata"]["uid"]])
            elif (matches and controller_ref(pod) is None and not is_deleting(pod)
                  and not is_deleting(rs)):
                refs = list(owner_refs(pod))
                refs.append(owner_ref_to(rs, self.api_version, self.kind))
                try:
                    owned.append(await self._set_owner_refs(pod, refs))
                except ApiError as err:
                    if err.code not in (404, 409, 422):
                        raise
        return owned

    async def _set_owner_refs(self, pod: Obj, refs: list[Obj]) -> Obj:
        m = pod["metadata"]
        # The uid in the patch is a precondition: never claim a recreated namesake.
        return await self.client.patch("pods", m["namespace"], m["name"],
                                       {"metadata": {"ownerReferences": refs, "uid": m["uid"]}})

    def _observe_expectations(self, uid: str, active: list[Obj]) -> list[Obj | None]:
        """The active pods as the controller should count them: cached pods minus those
        we already deleted, plus placeholders (None) for creates the cache hasn't shown."""
        clock = time.monotonic()
        adds, dels = self._adds.setdefault(uid, {}), self._dels.setdefault(uid, {})
        names = {p["metadata"]["name"] for p in active}
        for n in [n for n, deadline in adds.items() if n in names or deadline < clock]:
            del adds[n]
        for n in [n for n, deadline in dels.items() if n not in names or deadline < clock]:
            del dels[n]
        counted: list[Obj | None] = [p for p in active if p["metadata"]["name"] not in dels]
        counted.extend(None for _ in adds)
        return counted

    async def _manage(self, rs: Obj, active: list[Obj | None], uid: str) -> None:
        diff = len(active) - spec_replicas(rs)
        if diff < 0:
            await self._create_pods(rs, min(-diff, BURST_REPLICAS), uid)
        elif diff > 0:
            cached = [p for p in active if p is not None]
            related = [p for p in self.pods.items(rs["metadata"]["namespace"]) if is_pod_active(p)
                       and _same_controller_owner(p, rs, self.replicasets, self.kind)]
            for pod in pods_to_delete(cached, min(diff, BURST_REPLICAS), related):
                await self._delete_pod(rs, pod, uid)

    async def _create_pods(self, rs: Obj, count: int, uid: str) -> None:
        ns = rs["metadata"]["namespace"]
        for batch in slow_start_batches(count):
            results = await asyncio.gather(*(self.client.create("pods", ns, pod_from_template(rs, self.api_version, self.kind))
                                             for _ in range(batch)), return_exceptions=True)
            failed = None
            for result in results:
                if isinstance(result, BaseException):
                    failed = result
                    continue
                pod_name = result["metadata"]["name"]
                self._adds[uid][pod_name] = time.monotonic() + EXPECTATION_TIMEOUT
                await self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod_name}",
                                           kind=self.kind, api_version=self.api_version)
            if failed is not None:
                msg = failed.message if isinstance(failed, ApiError) else str(failed)
                await self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {msg}",
                                           kind=self.kind, api_version=self.api_version)
                raise failed  # retried with backoff, skipping the remaining batches

    async def _delete_pod(self, rs: Obj, pod: Obj, uid: str) -> None:
        m = pod["metadata"]
        try:
            await self.client.delete("pods", m["namespace"], m["name"], preconditions={"uid": m["uid"]})
        except ApiError as err:
            if err.code != 404:
                raise
        self._dels[uid][m["name"]] = time.monotonic() + EXPECTATION_TIMEOUT
        await self.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}",
                                   kind=self.kind, api_version=self.api_version)

    async def _update_status(self, rs: Obj, pods: list[Obj]) -> None:
        status = replica_set_status(rs, pods)
        if status != (rs.get("status") or {}):
            m = rs["metadata"]
            await self.client.update(self.resource_key, m["namespace"], m["name"], {**rs, "status": status},
                                     subresource="status")
        # Pods that are ready but not yet minReadySeconds old become available later.
        waits = [w for p in pods
                 if (w := seconds_until_available(p, rs["spec"].get("minReadySeconds", 0))) is not None]
        if waits:
            self.queue.add_after((rs["metadata"]["namespace"], rs["metadata"]["name"]), min(waits) + 0.05)


def _same_controller_owner(pod: Obj, rs: Obj, replicasets: Any, kind: str = "ReplicaSet") -> bool:
    """Whether ``pod`` belongs to ``rs`` or to a sibling RS of the same Deployment: the
    "related pods" whose spread over nodes decides which pods are doubled up."""
    ref = controller_ref(pod)
    if ref is None or ref.get("kind") != kind:
        return False
    if ref.get("uid") == rs["metadata"]["uid"]:
        return True
    sibling = replicasets.get(rs["metadata"]["namespace"], ref["name"])
    rs_owner, sib_owner = controller_ref(rs), sibling and controller_ref(sibling)
    return bool(rs_owner and sib_owner and rs_owner.get("uid") == sib_owner.get("uid"))
