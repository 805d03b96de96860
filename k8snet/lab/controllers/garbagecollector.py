"""The garbage collector: ownerReferences → cascading deletion (pkg/controller/garbagecollector).

Keeps an index of every object's owners and dependents (by uid) from shared informers
of all kinds except Events. Three jobs:

- an object whose owners are all gone (missing, or a namesake with another uid) is
  deleted; owners that are gone are dropped from objects that still have a live one;
- an owner deleted with propagationPolicy=Orphan carries the "orphan" finalizer: its
  dependents lose their reference to it, then the finalizer is removed;
- an owner deleted with propagationPolicy=Foreground carries "foregroundDeletion": its
  dependents are deleted, and once none with blockOwnerDeletion is left the finalizer
  is removed, so the owner disappears last.

Before deleting anything because an owner "is gone", the owner is looked up live:
informers of different kinds are not in step, and a fresh owner may not be cached yet.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from ..api.resources import RESOURCES, Resource, by_kind
from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Controller, Informers
from .util import is_deleting, owner_refs

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

Ref = tuple[str, str, str]  # (resource key, namespace, name)


def tracked_resources() -> list[Resource]:
    # Events never own anything and are the most numerous objects: leave them out.
    return [r for r in RESOURCES if r.kind != "Event"]


def dangling(refs: list[dict[str, Any]], alive: dict[str, bool]) -> tuple[bool, list[dict[str, Any]]]:
    """(delete the dependent?, owner references to keep) given which owner uids are alive."""
    keep = [r for r in refs if alive.get(r.get("uid", ""), True)]
    return (bool(refs) and not keep), keep


class GarbageCollector(Controller):
    component = "garbage-collector-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.resources = {r.key: r for r in tracked_resources()}
        for key in self.resources:
            self.watch(key, self._handler(key))
        self._uids: dict[str, Ref] = {}               # uid -> object
        self._owners: dict[Ref, set[str]] = {}        # object -> owner uids
        self._dependents: dict[str, set[Ref]] = {}    # owner uid -> dependents

    # -- the graph ------------------------------------------------------------
    def _handler(self, key: str) -> Callable[[str, Obj], None]:
        def on_event(etype: str, obj: Obj) -> None:
            m = obj["metadata"]
            ref: Ref = (key, m.get("namespace", ""), m["name"])
            uid = m.get("uid", "")
            old_owners = self._owners.pop(ref, set())
            for owner in old_owners:
                self._dependents.get(owner, set()).discard(ref)
            if etype == "DELETED":
                self._uids.pop(uid, None)
                # Its dependents may now dangle; its owners may be waiting for it.
                for dep in list(self._dependents.get(uid, ())):
                    self.queue.add(dep)
                for owner in old_owners:
                    if owner in self._uids:
                        self.queue.add(self._uids[owner])
                return
            self._uids[uid] = ref
            owners = {r["uid"] for r in owner_refs(obj) if r.get("uid")}
            self._owners[ref] = owners
            for owner in owners:
                self._dependents.setdefault(owner, set()).add(ref)
            finalizers = m.get("finalizers") or []
            if owners or (is_deleting(obj) and (ORPHAN in finalizers or FOREGROUND in finalizers)):
                self.queue.add(ref)
            for owner in old_owners - owners:  # a released dependent may unblock its owner
                if owner in self._uids:
                    self.queue.add(self._uids[owner])
        return on_event

    def resync(self) -> None:
        for ref, owners in list(self._owners.items()):
            if owners:
                self.queue.add(ref)

    def _cached(self, ref: Ref) -> Obj | None:
        return self.informers.get(ref[0]).get(ref[1], ref[2])

    def dependents(self, uid: str) -> list[tuple[Ref, Obj]]:
        out = []
        for ref in list(self._dependents.get(uid, ())):
            obj = self._cached(ref)
            if obj is not None:
                out.append((ref, obj))
        return out

    # -- reconcile ------------------------------------------------------------
    async def reconcile(self, ref: Ref) -> None:
        obj = self._cached(ref)
        if obj is None:
            return
        finalizers = obj["metadata"].get("finalizers") or []
        if is_deleting(obj) and ORPHAN in finalizers:
            await self._orphan_dependents(obj)
            await self._remove_finalizer(ref, obj, ORPHAN)
            return
        if is_deleting(obj) and FOREGROUND in finalizers:
            if await self._delete_dependents_first(obj):
                await self._remove_finalizer(ref, obj, FOREGROUND)
            return
        refs = owner_refs(obj)
        if not refs:
            return
        alive = {r["uid"]: await self._owner_alive(r, ref[1]) for r in refs if r.get("uid")}
        delete, keep = dangling(refs, alive)
        if delete:
            if not is_deleting(obj):
                await self._delete(ref, obj)
        elif len(keep) != len(refs):
            await self._set_owner_refs(ref, obj, keep)

    async def _owner_alive(self, owner: dict[str, Any], namespace: str) -> bool:
        res = by_kind(owner.get("apiVersion", ""), owner.get("kind", ""))
        if res is None:
            return True  # a kind this lab doesn't serve: never delete on a guess
        ns = namespace if res.namespaced else ""
        cached = self.informers.get(res.key).get(ns, owner["name"]) if res.key in self.resources else None
        if cached is not None and cached["metadata"].get("uid") == owner["uid"]:
            return True
        try:
            live = await self.client.get(res.key, ns or None, owner["name"])
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return bool(live["metadata"].get("uid") == owner["uid"])

    async def _delete(self, ref: Ref, obj: Obj, policy: str | None = None) -> None:
        try:
            await self.client.delete(ref[0], ref[1] or None, ref[2], propagation_policy=policy,
                                     preconditions={"uid": obj["metadata"]["uid"]})
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _orphan_dependents(self, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for ref, dep in self.dependents(uid):
            keep = [r for r in owner_refs(dep) if r.get("uid") != uid]
            await self._set_owner_refs(ref, dep, keep)

    async def _delete_dependents_first(self, owner: Obj) -> bool:
        """Deletes the owner's dependents; True when none that blocks it is left."""
        uid = owner["metadata"]["uid"]
        blocking = 0
        for ref, dep in self.dependents(uid):
            my_ref = next((r for r in owner_refs(dep) if r.get("uid") == uid), {})
            if my_ref.get("blockOwnerDeletion"):
                blocking += 1
            if not is_deleting(dep):
                # A dependent with dependents of its own is deleted in the foreground too,
                # so the whole tree goes before the owner does.
                nested = bool(self._dependents.get(dep["metadata"]["uid"]))
                await self._delete(ref, dep, "Foreground" if nested else "Background")
        return blocking == 0

    async def _set_owner_refs(self, ref: Ref, obj: Obj, refs: list[dict[str, Any]]) -> None:
        try:
            await self.client.patch(ref[0], ref[1] or None, ref[2],
                                    {"metadata": {"ownerReferences": refs or None,
                                                  "uid": obj["metadata"]["uid"]}})
        except ApiError as err:
            if err.code != 404:
                raise

    async def _remove_finalizer(self, ref: Ref, obj: Obj, finalizer: str) -> None:
        body = copy.deepcopy(obj)
        body["metadata"]["finalizers"] = [f for f in body["metadata"].get("finalizers") or [] if f != finalizer]
        try:
            await self.client.update(ref[0], ref[1] or None, ref[2], body)
        except ApiError as err:
            if err.code != 404:
                raise
