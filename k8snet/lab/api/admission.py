"""Admission: what happens to an object between decoding and storage, the same
steps for every kind, each kind's rules coming from its strategy
(:mod:`k8snet.lab.api.registry`), as kube-apiserver's generic registry store runs
``rest.BeforeCreate``/``BeforeUpdate`` around a kind's strategy.

create: defaults → PrepareForCreate (status reset, generation 1, the mutating
        plugins a kind has) → validation → allocation (a Service's IPs and ports).
update: defaults → the subresource's rule (``status`` changes only status; a
        main-resource write keeps the stored status and bumps generation on a spec
        change; ``finalize``) → validation of the object and of the change → allocation.
"""

from __future__ import annotations

from typing import Callable

from k8snet.lab.api.allocation import Allocator
from k8snet.lab.api.clone import clone
from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.api.registry import AdmissionContext, Strategy, strategy_for
from k8snet.lab.api.registry.strategy import keep_system_metadata
from k8snet.lab.api.resources import Resource
from k8snet.lab.api.validation import validate_object_meta, validate_object_meta_update
from k8snet.lab.config import LabConfig
from k8snet.lab.contracts import Obj
from k8snet.lab.generatednames import random_suffix


class Admission:
    def __init__(self, config: LabConfig, lister: Callable[[str], list[Obj]],
                 suffix: Callable[[], str] = random_suffix):
        self._ctx = AdmissionContext(config, lister, suffix, Allocator(config, lister))

    def admit_create(self, res: Resource, obj: Obj) -> Obj:
        strategy = strategy_for(res.key)
        obj = _defaulted(strategy, clone(obj))
        strategy.prepare_for_create(obj, self._ctx)
        self._validate(strategy, obj, None)
        return obj

    def admit_update(self, res: Resource, old: Obj, new: Obj, subresource: str | None) -> Obj:
        strategy = strategy_for(res.key)
        if subresource == "status":
            # The stored object with the new status: copying all of ``new`` first would
            # be thrown away, and status writes (the kubelet's) are most writes.
            new = strategy.prepare_for_status_update(new, old)
        elif subresource is not None:
            new = strategy.prepare_for_subresource_update(subresource, new, old)
        else:
            new = _defaulted(strategy, clone(new))
            _keep_system_metadata(new["metadata"], old.get("metadata") or {})
            strategy.prepare_for_update(new, old, self._ctx)
        new = _defaulted(strategy, new)  # idempotent; the status or finalize result too
        self._validate(strategy, new, old)
        return new

    def _validate(self, strategy: Strategy, obj: Obj, old: Obj | None) -> None:
        """Every problem in one 422 Invalid; allocation only for a valid object."""
        res, errs = strategy.resource, FieldErrors()
        meta = obj.get("metadata") or {}
        validate_object_meta(errs, res, meta, strategy.name_problems)
        strategy.validate(errs, obj)
        if old is not None:
            validate_object_meta_update(errs, meta, old.get("metadata") or {})
            strategy.validate_update(errs, obj, old)
        errs.raise_if_any(res.group, res.kind, meta.get("name") or "")
        strategy.allocate(obj, self._ctx, errs)
        errs.raise_if_any(res.group, res.kind, meta.get("name") or "")


def _keep_system_metadata(meta: Obj, old_meta: Obj) -> None:
    """rest.BeforeUpdate: the server-owned metadata is the stored object's. A uid the
    client sent stays, for validation to refuse a change."""
    uid = meta.get("uid")
    keep_system_metadata(meta, old_meta)
    if uid:
        meta["uid"] = uid


def _defaulted(strategy: Strategy, obj: Obj) -> Obj:
    """The real server defaults on decode: type fields, then the kind's defaults."""
    obj["apiVersion"] = strategy.resource.api_version
    obj["kind"] = strategy.resource.kind
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    strategy.default(obj)
    return obj
