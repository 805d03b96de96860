"""Namespaces (pkg/registry/core/namespace/strategy.go).

Create: phase Active and the ``kubernetes`` finalizer in spec.finalizers, which only
the ``finalize`` subresource may change (the namespace controller clears it once the
namespace is empty); the namespace goes when a deleting namespace has no finalizer
left. The name is a DNS-1123 label; the name label is set on every write.
"""

from __future__ import annotations

from ...contracts import Obj
from ...errors import invalid
from .. import defaults, tables
from .. import strvalidation as sv
from ..apiresource import Resource, Subresource, status_subresource
from ..clone import clone
from .strategy import AdmissionContext, Printing, Strategy

RESOURCE = Resource("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",),
                    subresources=(status_subresource("Namespace"), Subresource("finalize", "Namespace", ("update",))))
FINALIZER = "kubernetes"


def default_namespace(ns: Obj) -> None:
    name = (ns.get("metadata") or {}).get("name")
    if name:
        ns.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    status = ns.get("status")
    if not isinstance(status, dict):
        status = ns["status"] = {}
    defaults.set_default(status, "phase", "Active")


def _finalizers(obj: Obj) -> list[str]:
    return list((obj.get("spec") or {}).get("finalizers") or [])


class NamespaceStrategy(Strategy):
    def name_problems(self, name: str) -> list[str]:
        return sv.is_dns1123_label(name)

    table = Printing(tables.NAMESPACE_COLUMNS, tables.print_namespace)

    def default(self, obj: Obj) -> None:
        default_namespace(obj)

    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        super().prepare_for_create(obj, ctx)
        spec = obj.setdefault("spec", {})
        spec["finalizers"] = list(dict.fromkeys([*_finalizers(obj), FINALIZER]))

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Active"}

    def prepare_for_update(self, new: Obj, old: Obj, ctx: AdmissionContext) -> None:
        super().prepare_for_update(new, old, ctx)
        new.setdefault("spec", {})["finalizers"] = _finalizers(old)

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        """namespaces/finalize: only spec.finalizers changes."""
        if subresource != "finalize":
            return super().prepare_for_subresource_update(subresource, new, old)
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            raise invalid("", "Namespace", old["metadata"]["name"], [
                ("FieldValueInvalid", "spec.finalizers", "Invalid value: must be a list of strings")])
        out = clone(old)
        out.setdefault("spec", {})["finalizers"] = list(finalizers)
        return out

    def removes_on_update(self, old: Obj, new: Obj) -> bool:
        meta = new.get("metadata", {})
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and not _finalizers(new)


STRATEGY = NamespaceStrategy(RESOURCE)
