"""ReplicationControllers (pkg/registry/core/replicationcontroller/strategy.go,
SetDefaults_ReplicationController): ReplicaSets' predecessor in the core group,
whose selector is a plain label map, defaulted (with the object's labels) from the
template's labels; unlike apps/v1 its selector may change. The ReplicationController
manager (:mod:`k8snet.lab.controllers.replicationcontroller`) runs the pods."""

from __future__ import annotations

from datetime import datetime

from ...contracts import Obj
from .. import defaults, tables, validation
from .. import strvalidation as sv
from ..apiresource import SCALE, Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", True,
                    ("rc",), ("all",), subresources=(status_subresource("ReplicationController"), SCALE))


def default_replication_controller(rc: Obj) -> None:
    spec = rc.setdefault("spec", {})
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        if not rc["metadata"].get("labels"):
            rc["metadata"]["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    defaults.default_template(spec)


def _validate_replication_controller(errs: FieldErrors, rc: Obj) -> None:
    """ValidateReplicationControllerSpec: the map selector selects the template."""
    spec = rc.get("spec") or {}
    for key in ("replicas", "minReadySeconds"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")
    selector = spec.get("selector")
    if not selector:
        errs.required("spec.selector")
    else:
        validation.validate_string_map(errs, "spec.selector", selector, sv.is_valid_label_value)
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    validation.validate_labels(errs, "spec.template.metadata.labels", labels)
    if isinstance(selector, dict) and selector and any(labels.get(k) != v for k, v in selector.items()):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    tspec = template.get("spec")
    validation.validate_pod_spec(errs, "spec.template.spec", tspec)
    if isinstance(tspec, dict) and tspec.get("restartPolicy") not in (None, "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", tspec["restartPolicy"], ("Always",))


REPLICATION_CONTROLLER_COLUMNS = [
    tables.NAME_COLUMN,
    tables.column("Desired", "integer", tables.field_doc("V1ReplicationControllerSpec", "replicas")),
    tables.column("Current", "integer", tables.field_doc("V1ReplicationControllerStatus", "replicas")),
    tables.column("Ready", "integer", tables.field_doc("V1ReplicationControllerStatus", "readyReplicas")),
    tables.AGE_COLUMN, tables.CONTAINERS_COLUMN, tables.IMAGES_COLUMN,
    tables.column("Selector", "string", tables.field_doc("V1ReplicationControllerSpec", "selector"), 1),
]


def print_replication_controller(rc: Obj, now: datetime) -> tuple[tables.Cells, tables.RowConditions | None]:
    spec, status = rc.get("spec") or {}, rc.get("status") or {}
    names, images = tables.container_cells(spec.get("template") or {})
    return [tables.object_meta(rc).get("name", ""), spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), tables.age(rc, now), names, images,
            tables.format_labels(spec.get("selector"))], None


class ReplicationControllerStrategy(Strategy):
    tracks_generation = True
    table = Printing(REPLICATION_CONTROLLER_COLUMNS, print_replication_controller)

    def initial_status(self, obj: Obj) -> Obj:
        # status.replicas is always serialized by Go (no omitempty); typed clients require it
        return {"replicas": 0}

    def default(self, obj: Obj) -> None:
        default_replication_controller(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_replication_controller(errs, obj)

    def scale_selector(self, obj: Obj) -> str:
        """labels.SelectorFromSet of the map selector."""
        selector = (obj.get("spec") or {}).get("selector") or {}
        return ",".join(f"{k}={selector[k]}" for k in sorted(selector))


STRATEGY = ReplicationControllerStrategy(RESOURCE)
