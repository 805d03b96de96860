"""Admission: what happens to an object between decoding and storage.

create: defaults → create-time bookkeeping (PrepareForCreate, ServiceAccount and
        friends) → validation → ClusterIP/NodePort allocation.
update: system fields carried over from the stored object → subresource rules
        (``status`` may change only status; a main-resource write keeps the old
        status) → defaults → generation bump on spec change → validation →
        allocation.
"""

from __future__ import annotations

import copy
from typing import Callable

from k8snet.lab.api import defaults
from k8snet.lab.api.allocation import Allocator, carry_over
from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.api.resources import Resource
from k8snet.lab.api.validation import validate
from k8snet.lab.config import LabConfig
from k8snet.lab.contracts import Obj

# Kinds whose spec changes bump metadata.generation (§9.1).
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
        obj = copy.deepcopy(obj)
        defaults.apply_defaults(res, obj)
        defaults.prepare_for_create(res, obj, self._suffix, self._account_automount(res, obj))
        validate(res, obj)
        self._allocate(res, obj)
        return obj

    def admit_update(self, res: Resource, old: Obj, new: Obj, subresource: str | None) -> Obj:
        new = copy.deepcopy(new)
        meta, old_meta = new.setdefault("metadata", {}), old.get("metadata") or {}
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
            meta = new["metadata"]
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
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
        if subresource == "status":
            # Only status changes; everything else is the stored object.
            out = copy.deepcopy(old)
            out["status"] = new.get("status")
            if out["status"] is None:
                out.pop("status")
            if new.get("metadata", {}).get("resourceVersion") is not None:
                out.setdefault("metadata", {})["resourceVersion"] = new["metadata"]["resourceVersion"]
            return out
        if subresource == "finalize" and res.key == "namespaces":
            out = copy.deepcopy(old)
            out.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            return out
        if res.subresource("status") is not None:
            # A main-resource write never changes status (nodes included, as in 1.32).
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
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
