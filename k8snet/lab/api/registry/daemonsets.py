"""DaemonSets (pkg/registry/apps/daemonset/strategy.go, pkg/apis/apps/v1/defaults.go):
generation counts spec changes, status belongs to the status subresource, the
selector is immutable, the pod template's restartPolicy must be Always. The
DaemonSet controller (:mod:`k8snet.lab.controllers.daemonset`) runs the pods."""

from __future__ import annotations

from datetime import datetime

from ...contracts import Obj
from .. import defaults, tables, validation
from ..apiresource import Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("all",),
                    subresources=(status_subresource("DaemonSet"),))
UPDATE_STRATEGIES = ("OnDelete", "RollingUpdate")


def default_daemonset(ds: Obj) -> None:
    """SetDefaults_DaemonSet."""
    spec = ds.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    defaults.set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        defaults.set_default(rolling, "maxUnavailable", 1)
        defaults.set_default(rolling, "maxSurge", 0)
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    defaults.default_template(spec)


def _validate_daemonset(errs: FieldErrors, ds: Obj) -> None:
    validation.validate_replicated(errs, ds, "daemonset")
    spec = ds.get("spec") or {}
    kind = (spec.get("updateStrategy") or {}).get("type")
    if kind not in UPDATE_STRATEGIES:
        errs.not_supported("spec.updateStrategy.type", kind, UPDATE_STRATEGIES)
    surge = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("maxSurge")
    if surge not in (None, 0, "0%"):
        errs.forbidden("spec.updateStrategy.rollingUpdate.maxSurge",
                       "a surge is not implemented by the lab's DaemonSet controller (it replaces pods in place)")
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")


# -- kubectl get ---------------------------------------------------------------------

DAEMON_SET_COLUMNS = [
    tables.NAME_COLUMN,
    tables.column("Desired", "integer", tables.field_doc("V1DaemonSetStatus", "desiredNumberScheduled")),
    tables.column("Current", "integer", tables.field_doc("V1DaemonSetStatus", "currentNumberScheduled")),
    tables.column("Ready", "integer", tables.field_doc("V1DaemonSetStatus", "numberReady")),
    tables.column("Up-to-date", "integer", tables.field_doc("V1DaemonSetStatus", "updatedNumberScheduled")),
    tables.column("Available", "integer", tables.field_doc("V1DaemonSetStatus", "numberAvailable")),
    tables.column("Node Selector", "string", tables.field_doc("V1PodSpec", "nodeSelector")),
    tables.AGE_COLUMN, tables.CONTAINERS_COLUMN, tables.IMAGES_COLUMN,
    tables.column("Selector", "string", tables.field_doc("V1DaemonSetSpec", "selector", "A label query over pods that "
                  "are managed by the daemon set. Must match in order to be controlled. It must match the pod "
                  "template's labels."), 1),
]


def print_daemon_set(ds: Obj, now: datetime) -> tuple[tables.Cells, tables.RowConditions | None]:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    template = spec.get("template") or {}
    names, images = tables.container_cells(template)
    return [tables.object_meta(ds).get("name", ""), status.get("desiredNumberScheduled", 0),
            status.get("currentNumberScheduled", 0), status.get("numberReady", 0),
            status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            tables.format_labels((template.get("spec") or {}).get("nodeSelector")), tables.age(ds, now),
            names, images, tables.format_label_selector(spec.get("selector"))], None


class DaemonSetStrategy(Strategy):
    tracks_generation = True
    table = Printing(DAEMON_SET_COLUMNS, print_daemon_set)

    def initial_status(self, obj: Obj) -> Obj:
        # the DaemonSetStatus counters Go always serializes (no omitempty); typed clients require them
        return {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}

    def default(self, obj: Obj) -> None:
        default_daemonset(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_daemonset(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        validation.validate_selector_update(errs, new, old)


STRATEGY = DaemonSetStrategy(RESOURCE)
