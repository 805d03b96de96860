"""The interface between the generic store handler (:mod:`k8snet.lab.api.core` and
:mod:`k8snet.lab.api.admission`) and one kind's rules, like kube-apiserver's
``rest.RESTCreateStrategy``/``RESTUpdateStrategy`` and the status strategies
(``pkg/registry/<group>/<kind>/strategy.go``).

A kind's module subclasses :class:`Strategy` and overrides only what differs from the
generic behaviour, which is:

- defaults: none;
- create (``prepare_for_create``): a status subresource's status starts empty, a kind
  that tracks generation starts at 1;
- update of the main resource (``prepare_for_update``): status is kept from the stored
  object (a status subresource owns it), and generation goes up when spec changed;
- update of ``status``: only status changes (``prepare_for_status_update``);
- validation: the object metadata rules (name per :meth:`Strategy.name_problems`);
- a PUT of a missing object is 404 unless :attr:`Strategy.allow_create_on_update`;
- deletion is immediate (no grace period) unless :meth:`Strategy.grace_period` says so;
- Table: name and creation time, unless the kind names its columns and printer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from ...config import LabConfig
from ...contracts import Obj
from ...errors import ApiError
from .. import strvalidation as sv
from .. import tables
from ..allocation import Allocator, Lister
from ..apiresource import Resource
from ..clone import clone
from ..fielderrors import FieldErrors
from ..selectors import selector_string

# metadata the server owns: a client never sets it on create nor changes it on update
# (rest.BeforeCreate / rest.BeforeUpdate).
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


@dataclass
class AdmissionContext:
    """What a strategy may consult besides the object: the lab's configuration, the
    stored objects of any kind (``lister(key)``), and the random-suffix source (so tests
    can fix generated names)."""

    config: LabConfig
    lister: Lister
    suffix: Callable[[], str]
    allocator: Allocator


@dataclass(frozen=True)
class Printing:
    """A kind's Table: its column definitions and the function that prints one row."""

    columns: list[Obj]
    printer: tables.Printer


class Strategy:
    """The generic rules; one subclass (or instance) per served kind."""

    # metadata.generation counts spec changes (upstream: every kind with a spec and a
    # status subresource except Pods, Services, Namespaces and Nodes).
    tracks_generation: ClassVar[bool] = False
    # A PUT of a missing object creates it (endpointsStrategy.AllowCreateOnUpdate).
    allow_create_on_update: ClassVar[bool] = False
    # Table columns and the row printer for ``kubectl get`` (rest.TableConvertor).
    table: ClassVar[Printing] = Printing(tables.DEFAULT_COLUMNS, tables.print_default)

    def __init__(self, resource: Resource):
        self.resource = resource

    def name_problems(self, name: str) -> list[str]:
        """The rule metadata.name follows (the registries' ValidateObjectMeta name func)."""
        return sv.is_dns1123_subdomain(name)

    @property
    def has_status(self) -> bool:
        return self.resource.subresource("status") is not None

    # -- defaults ------------------------------------------------------------------
    def default(self, obj: Obj) -> None:
        """SetDefaults_<Kind>: applied on every write, idempotent."""

    # -- create ----------------------------------------------------------------------
    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        """What the server sets on create whatever the client sent."""
        if self.has_status:
            obj["status"] = self.initial_status(obj)
        if self.tracks_generation:
            obj["metadata"]["generation"] = 1

    def initial_status(self, obj: Obj) -> Obj:
        return {}

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        """The kind's own validation (object metadata is checked for every kind)."""

    # -- update ------------------------------------------------------------------------
    def prepare_for_update(self, new: Obj, old: Obj, ctx: AdmissionContext) -> None:
        """A write of the main resource: status is not the client's to change there."""
        if self.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        if self.tracks_generation:
            generation = int(old["metadata"].get("generation") or 0)
            new["metadata"]["generation"] = generation + 1 if new.get("spec") != old.get("spec") else generation

    def prepare_for_status_update(self, new: Obj, old: Obj) -> Obj:
        """A status write: the stored object with the new status (the client's
        resourceVersion stays, for the optimistic-concurrency check)."""
        out = clone(old)
        status = clone(new.get("status"))
        if status is None:
            out.pop("status", None)
        else:
            out["status"] = status
        if (new.get("metadata") or {}).get("resourceVersion") is not None:
            out["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"]
        return out

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        """Another writable subresource of the kind (``namespaces/finalize``)."""
        raise ApiError(405, "MethodNotAllowed", f"{self.resource.plural}/{subresource} cannot be updated")

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        """Rules about the change (immutable fields); :meth:`validate` runs as well."""

    # -- after validation ------------------------------------------------------------------
    def allocate(self, obj: Obj, ctx: AdmissionContext, errs: FieldErrors) -> None:
        """Claims shared resources (a Service's ClusterIP and NodePorts) once valid."""

    # -- scale ----------------------------------------------------------------------------
    def scale_selector(self, obj: Obj) -> str:
        """The Scale subresource's status.selector: spec.selector as a selector string."""
        return selector_string((obj.get("spec") or {}).get("selector"))

    # -- delete --------------------------------------------------------------------------
    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds the object stays after a delete (rest.RESTGracefulDeleteStrategy)."""
        return 0

    def removes_on_update(self, old: Obj, new: Obj) -> bool:
        """Whether an update of a deleting object removes it: its last finalizer went
        (registry Store.shouldDeleteDuringUpdate). An object still in its grace period
        (a pod) stays until deleted with grace 0."""
        meta = new.get("metadata", {})
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if not old["metadata"].get("finalizers"):
            return False
        return not old["metadata"].get("deletionGracePeriodSeconds")


def keep_system_metadata(new_meta: Obj, old_meta: Obj) -> None:
    """rest.BeforeUpdate: the server-owned metadata of an update is the stored one's."""
    for field in SYSTEM_METADATA:
        if field in old_meta:
            new_meta[field] = old_meta[field]
        else:
            new_meta.pop(field, None)
