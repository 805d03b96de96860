"""The Deployment controller: Deployment → ReplicaSets (pkg/controller/deployment).

Each reconcile finds the Deployment's ReplicaSets, tells a resize apart from a
template change, and takes one step: a resize scales ReplicaSets proportionally; a
RollingUpdate grows the new ReplicaSet within maxSurge and shrinks old ones while
keeping replicas - maxUnavailable available; Recreate scales old ones to zero, waits
for their pods to go, then scales the new one up. The arithmetic lives in rollout.py.
Status and the Available/Progressing conditions are what ``kubectl rollout status``
waits on.
"""

from __future__ import annotations

import copy
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from ..timefmt import rfc3339
from . import rollout as ro
from .base import Controller, Informers
from .util import controller_ref, is_controlled_by, is_deleting, owner_ref_to, owner_refs, selector_matches

DEPLOY = "apps/deployments"
RS = "apps/replicasets"


class DeploymentController(Controller):
    component = "deployment-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.deployments = self.watch(DEPLOY, self._on_deployment)
        self.replicasets = self.watch(RS, self._on_rs)
        self.pods = self.watch("pods", self._on_pod)

    # -- event routing --------------------------------------------------------
    def _on_deployment(self, etype: str, d: Obj) -> None:
        self.queue.add((d["metadata"]["namespace"], d["metadata"]["name"]))

    def _on_rs(self, etype: str, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        ref = controller_ref(rs)
        if ref is not None:
            if ref.get("kind") == "Deployment":
                self.queue.add((ns, ref["name"]))
            return
        for d in self.deployments.items(ns):  # an orphan: whoever could adopt it
            if selector_matches(d["spec"].get("selector"), rs["metadata"].get("labels")):
                self.queue.add((ns, d["metadata"]["name"]))

    def _on_pod(self, etype: str, pod: Obj) -> None:
        # Recreate waits for old pods to be gone, so their deletion matters.
        if etype != "DELETED":
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(pod["metadata"]["namespace"], ref["name"])
        owner = rs and controller_ref(rs)
        if owner and owner.get("kind") == "Deployment":
            self.queue.add((pod["metadata"]["namespace"], owner["name"]))

    def resync(self) -> None:
        self.enqueue_all(self.deployments)

    # -- reconcile ------------------------------------------------------------
    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        d = self.deployments.get(ns, name)
        if d is None:
            return
        d = copy.deepcopy(d)
        if not d["spec"].get("selector"):
            return  # validation rejects it; nothing sensible to do
        rss = await self._claim_replicasets(d)
        new_rs = ro.find_new_rs(d, rss)
        old_rss = [rs for rs in rss if rs is not new_rs]

        if is_deleting(d) or d["spec"].get("paused"):
            await self._write_status(d, ro.calculate_status(d, rss, new_rs))
            return
        if ro.is_scaling_event(d, rss):
            d, new_rs = await self._sync_new_rs(d, rss, new_rs, old_rss, create=False)
            for rs_name, size in ro.proportional_sizes(d, new_rs, old_rss).items():
                await self._scale(d, next(r for r in rss if r["metadata"]["name"] == rs_name), size)
            await self._write_status(d, ro.calculate_status(d, rss, new_rs))
            return
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            await self._rollout_recreate(d, rss, new_rs, old_rss)
        else:
            await self._rollout_rolling(d, rss, new_rs, old_rss)

    async def _rollout_rolling(self, d: Obj, rss: list[Obj], new_rs: Obj | None, old_rss: list[Obj]) -> None:
        d, new_rs = await self._sync_new_rs(d, rss, new_rs, old_rss, create=True)
        assert new_rs is not None
        all_rss = old_rss + [new_rs]
        target = replicas_for_new(d, all_rss, new_rs)
        if target != ro.replicas(new_rs):
            # One step per reconcile: the new ReplicaSet's pods must show up before old ones go.
            new_rs = await self._scale(d, new_rs, target)
            await self._sync_rollout_status(d, old_rss + [new_rs], new_rs)
            return
        sizes = ro.old_rs_scale_down(d, old_rss, new_rs)
        if sizes:
            old_rss = [await self._scale(d, rs, sizes[rs["metadata"]["name"]])
                       if rs["metadata"]["name"] in sizes else rs for rs in old_rss]
            await self._sync_rollout_status(d, old_rss + [new_rs], new_rs)
            return
        await self._finish(d, old_rss, new_rs)

    async def _rollout_recreate(self, d: Obj, rss: list[Obj], new_rs: Obj | None, old_rss: list[Obj]) -> None:
        d, new_rs = await self._sync_new_rs(d, rss, new_rs, old_rss, create=False)
        live_old = ro.active(old_rss)
        if live_old:
            old_rss = [await self._scale(d, rs, 0) if rs in live_old else rs for rs in old_rss]
            await self._sync_rollout_status(d, old_rss + ([new_rs] if new_rs else []), new_rs)
            return
        if self._old_pods_running(old_rss):
            await self._sync_rollout_status(d, old_rss + ([new_rs] if new_rs else []), new_rs)
            return
        if new_rs is None:
            d, new_rs = await self._sync_new_rs(d, rss, None, old_rss, create=True)
        assert new_rs is not None
        if ro.replicas(new_rs) != ro.replicas(d):
            new_rs = await self._scale(d, new_rs, ro.replicas(d))
        await self._finish(d, old_rss, new_rs)

    async def _finish(self, d: Obj, old_rss: list[Obj], new_rs: Obj) -> None:
        """Nothing left to scale: prune history once complete, then publish status."""
        status = ro.rollout_status(d, old_rss + [new_rs], new_rs)
        if ro.is_complete(d, status):
            for rs in ro.cleanup_candidates(d, old_rss):
                try:
                    await self.client.delete(RS, rs["metadata"]["namespace"], rs["metadata"]["name"],
                                             preconditions={"uid": rs["metadata"]["uid"]})
                except ApiError as err:
                    if err.code != 404:
                        raise
        await self._sync_rollout_status(d, old_rss + [new_rs], new_rs)

    def _old_pods_running(self, old_rss: list[Obj]) -> bool:
        if any((rs.get("status") or {}).get("replicas", 0) for rs in old_rss):
            return True
        uids = {rs["metadata"]["uid"] for rs in old_rss}
        for pod in self.pods.items(old_rss[0]["metadata"]["namespace"] if old_rss else None):
            ref = controller_ref(pod)
            if (ref and ref.get("uid") in uids
                    and pod.get("status", {}).get("phase") not in ("Failed", "Succeeded")):
                return True
        return False

    # -- ReplicaSets ----------------------------------------------------------
    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        out = []
        for rs in self.replicasets.items(d["metadata"]["namespace"]):
            if is_controlled_by(rs, d):
                out.append(rs)
            elif (controller_ref(rs) is None and not is_deleting(d) and not is_deleting(rs)
                  and selector_matches(d["spec"]["selector"], rs["metadata"].get("labels"))):
                refs = list(owner_refs(rs)) + [owner_ref_to(d, "apps/v1", "Deployment")]
                m = rs["metadata"]
                out.append(await self.client.patch(RS, m["namespace"], m["name"],
                                                   {"metadata": {"ownerReferences": refs, "uid": m["uid"]}}))
        return out

    async def _sync_new_rs(self, d: Obj, rss: list[Obj], new_rs: Obj | None, old_rss: list[Obj],
                           create: bool) -> tuple[Obj, Obj | None]:
        """getNewReplicaSet: bring the new ReplicaSet's annotations up to date (or create
        it), and make the Deployment's revision annotation follow it."""
        next_revision = max((ro.revision(rs) for rs in old_rss), default=0) + 1
        if new_rs is not None:
            annotations = ro.rs_annotations(d, new_rs, next_revision, sizes=False)
            min_ready = d["spec"].get("minReadySeconds", 0)
            if (annotations != (new_rs["metadata"].get("annotations") or {})
                    or new_rs["spec"].get("minReadySeconds", 0) != min_ready):
                body = copy.deepcopy(new_rs)
                body["metadata"]["annotations"] = annotations
                body["spec"]["minReadySeconds"] = min_ready
                updated = await self.client.update(RS, body["metadata"]["namespace"], body["metadata"]["name"], body)
                rss[rss.index(new_rs)] = updated
                new_rs = updated
            d = await self._set_revision(d, ro.revision(new_rs))
            if not any(c["type"] == "Progressing" for c in (d.get("status") or {}).get("conditions") or []):
                status = copy.deepcopy(d.get("status") or {})
                ro.put_condition(status, ro.progressing("FoundNewReplicaSet",
                                                        f'Found new replica set "{new_rs["metadata"]["name"]}"', rfc3339()))
                d = await self._write_status(d, status)
            return d, new_rs
        if not create:
            return d, None
        new_rs = await self._create_rs(d, old_rss, next_revision)
        if new_rs is None:
            raise ApiError(409, "Conflict", "pod-template-hash collision; retrying with a new hash")
        rss.append(new_rs)
        d = await self._set_revision(d, ro.revision(new_rs))
        status = copy.deepcopy(d.get("status") or {})
        ro.put_condition(status, ro.progressing("NewReplicaSetCreated",
                                                f'Created new replica set "{new_rs["metadata"]["name"]}"', rfc3339()))
        d = await self._write_status(d, status)
        return d, new_rs

    async def _create_rs(self, d: Obj, old_rss: list[Obj], revision: int) -> Obj | None:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        collisions = (d.get("status") or {}).get("collisionCount")
        pth = ro.template_hash(d["spec"]["template"], collisions)
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[ro.HASH_LABEL] = pth
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[ro.HASH_LABEL] = pth
        draft: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{pth}", "namespace": ns,
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [owner_ref_to(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template},
        }
        size = ro.new_rs_replicas(d, old_rss + [draft], draft)
        draft["spec"]["replicas"] = size
        draft["metadata"]["annotations"] = ro.rs_annotations(d, draft, revision)
        try:
            created = await self.client.create(RS, ns, draft)
        except ApiError as err:
            if err.code != 409:
                raise
            existing = await self.client.get(RS, ns, draft["metadata"]["name"])
            if is_controlled_by(existing, d) and ro.equal_ignore_hash(existing["spec"]["template"], d["spec"]["template"]):
                return existing
            # Someone else's ReplicaSet has our name: bump collisionCount so the hash changes.
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = (collisions or 0) + 1
            await self._write_status(d, status)
            return None
        if size > 0:
            await self._event(d, f"Scaled up replica set {created['metadata']['name']} from 0 to {size}")
        return created

    async def _scale(self, d: Obj, rs: Obj, size: int) -> Obj:
        """scaleReplicaSetAndRecordEvent: resize plus the desired/max annotations."""
        old = ro.replicas(rs)
        annotations = ro.rs_annotations(d, rs, None)
        if old == size and annotations == (rs["metadata"].get("annotations") or {}):
            return rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        body["metadata"]["annotations"] = annotations
        updated = await self.client.update(RS, body["metadata"]["namespace"], body["metadata"]["name"], body)
        if old != size:
            direction = "up" if size > old else "down"
            await self._event(d, f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {size}")
        return updated

    async def _event(self, d: Obj, message: str) -> None:
        await self.recorder.record(d, "Normal", "ScalingReplicaSet", message,
                                   kind="Deployment", api_version="apps/v1")

    # -- the Deployment itself ------------------------------------------------
    async def _set_revision(self, d: Obj, revision: int) -> Obj:
        annotations = d["metadata"].get("annotations") or {}
        if revision == 0 or annotations.get(ro.REVISION) == str(revision):
            return d
        body = copy.deepcopy(d)
        body["metadata"].setdefault("annotations", {})[ro.REVISION] = str(revision)
        return await self.client.update(DEPLOY, d["metadata"]["namespace"], d["metadata"]["name"], body)

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        status = ro.rollout_status(d, all_rss, new_rs)
        d = await self._write_status(d, status)
        # A rollout that stops progressing must be looked at again when its deadline passes.
        cond = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), None)
        left = ro.seconds_to_deadline(d, cond)
        if left is not None and not ro.is_complete(d, status):
            self.queue.add_after((d["metadata"]["namespace"], d["metadata"]["name"]), max(left, 0) + 1)

    async def _write_status(self, d: Obj, status: dict[str, Any]) -> Obj:
        if status == (d.get("status") or {}):
            return d
        body = {**d, "status": status}
        return await self.client.update(DEPLOY, d["metadata"]["namespace"], d["metadata"]["name"], body,
                                        subresource="status")


def replicas_for_new(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """reconcileNewReplicaSet: shrink an oversized new ReplicaSet to spec.replicas, or
    grow it as far as maxSurge allows."""
    if ro.replicas(new_rs) >= ro.replicas(d):
        return ro.replicas(d)
    return ro.new_rs_replicas(d, all_rss, new_rs)

