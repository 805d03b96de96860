"""Admission: what happens to an object between decoding and storage.

create: defaults → create-time bookkeeping (PrepareForCreate, ServiceAccount and
        friends) → validation → ClusterIP/NodePort allocation.
update: system fields carried over from the stored object → subresource rules
        (``status`` may change only status; a main-resource write keeps the old
        status) → defaults → generation bump on spec change → validation →
        allocation.
"""

from __future__ import annotations

from typing import Callable

from k8snet.lab.api import defaults
from k8snet.lab.api.allocation import Allocator, carry_over
from k8snet.lab.api.clone import clone
from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.api.resources import Resource
from k8snet.lab.api.validation import validate
from k8snet.lab.config import LabConfig
from k8snet.lab.contracts import Obj

# Kinds whose spec changes bump metadata.generation (PrepareForUpdate in
# kube-apiserver's pkg/registry/apps/deployment/strategy.go and replicaset/strategy.go).
_GENERATION_KINDS = ("apps/deployments", "apps/replicasets")
# metadata the client cannot change on update (rest.BeforeUpdate).
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


class Admission:
    def __init__(self, config: LabConfig, lister: Callable[[str], list[Obj]],
                 suffix: Callable[[], str] = defaults.random_suffix):
        self._config = config
        self._allocator = Allocator(config, lister)
        self._lister = lister
        self._suffix = suffix

    def admit_create(self, res: Resource, obj: Obj) -> Obj:
        obj = clone(obj)
        defaults.apply_defaults(res, obj)
        defaults.prepare_for_create(res, obj, self._suffix, self._account_automount(res, obj))
        validate(res, obj)
        self._allocate(res, obj)
        return obj

    def admit_update(self, res: Resource, old: Obj, new: Obj, subresource: str | None) -> Obj:
        old_meta = old.get("metadata") or {}
        if subresource == "status":
            # The stored object with the new status: copying all of ``new`` first would
            # be thrown away, and status writes (the kubelet's) are most writes.
            new = _status_only(old, new)
        else:
            new = clone(new)
            meta = new.setdefault("metadata", {})
            for key in _SYSTEM_META:
                # A client's uid is checked by validation (immutable); a missing one and
                # the timestamps come from the stored object.
                if old_meta.get(key) is not None and (key != "uid" or not meta.get("uid")):
                    meta[key] = old_meta[key]
            if "generation" in old_meta:
                meta["generation"] = old_meta["generation"]
            new = self._apply_subresource_rules(res, old, new, subresource)
        defaults.apply_defaults(res, new)
        if res.key == "services":
            carry_over(new, old)
        if res.key in _GENERATION_KINDS and new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = int(old_meta.get("generation") or 0) + 1
        validate(res, new, old)
        self._allocate(res, new)
        return new

    def _account_automount(self, res: Resource, obj: Obj) -> bool:
        """The pod's ServiceAccount's automountServiceAccountToken (true when unset
        or when the account does not exist yet)."""
        if res.key != "pods":
            return True
        ns = (obj.get("metadata") or {}).get("namespace")
        spec = obj.get("spec") or {}
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        for sa in self._lister("serviceaccounts"):
            meta = sa.get("metadata") or {}
            if meta.get("namespace") == ns and meta.get("name") == name:
                return sa.get("automountServiceAccountToken") is not False
        return True

    @staticmethod
    def _apply_subresource_rules(res: Resource, old: Obj, new: Obj, subresource: str | None) -> Obj:
        if subresource == "finalize" and res.key == "namespaces":
            out = clone(old)
            out.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            return out
        if res.subresource("status") is not None:
            # A main-resource write never changes status (nodes included, as in kube-apiserver).
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if res.key == "namespaces":
            new.setdefault("spec", {})["finalizers"] = list((old.get("spec") or {}).get("finalizers") or [])
        return new

    def _allocate(self, res: Resource, obj: Obj) -> None:
        if res.key != "services":
            return
        errs = FieldErrors()
        self._allocator.allocate(obj, errs)
        errs.raise_if_any(res.group, res.kind, (obj.get("metadata") or {}).get("name") or "")


def _status_only(old: Obj, new: Obj) -> Obj:
    """A status write: only status changes, everything else is the stored object
    (the client's resourceVersion stays, for the optimistic-concurrency check)."""
    out = clone(old)
    status = clone(new.get("status"))
    if status is None:
        out.pop("status", None)
    else:
        out["status"] = status
    if (new.get("metadata") or {}).get("resourceVersion") is not None:
        out.setdefault("metadata", {})["resourceVersion"] = new["metadata"]["resourceVersion"]
    return out
