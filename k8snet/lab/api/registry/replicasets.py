"""ReplicaSets (pkg/registry/apps/replicaset/strategy.go): like Deployments,
generation counts spec changes and the selector is immutable."""

from __future__ import annotations

from ...contracts import Obj
from .. import defaults, tables, validation
from ..apiresource import SCALE, Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("all",),
                    subresources=(status_subresource("ReplicaSet"), SCALE))


def default_replicaset(rs: Obj) -> None:
    spec = rs.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    defaults.default_template(spec)


class ReplicaSetStrategy(Strategy):
    tracks_generation = True
    table = Printing(tables.REPLICA_SET_COLUMNS, tables.print_replica_set)

    def initial_status(self, obj: Obj) -> Obj:
        # status.replicas is always serialized by Go (no omitempty); typed clients require it
        return {"replicas": 0}

    def default(self, obj: Obj) -> None:
        default_replicaset(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        validation.validate_replicated(errs, obj, "replicaset")

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        validation.validate_selector_update(errs, new, old)


STRATEGY = ReplicaSetStrategy(RESOURCE)
