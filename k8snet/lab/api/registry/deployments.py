"""Deployments (pkg/registry/apps/deployment/strategy.go): generation counts spec
changes, status belongs to the status subresource, the selector is immutable; the
scale subresource reads and writes spec.replicas."""

from __future__ import annotations

from typing import Any

from ...contracts import Obj
from .. import defaults, tables, validation
from ..apiresource import SCALE, Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",),
                    subresources=(status_subresource("Deployment"), SCALE))


def default_deployment(d: Obj) -> None:
    spec = d.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    defaults.set_default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        defaults.set_default(ru, "maxUnavailable", "25%")
        defaults.set_default(ru, "maxSurge", "25%")
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    defaults.default_template(spec)


def _percent_or_int(value: Any) -> tuple[bool, int]:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return True, int(value[:-1])
    if isinstance(value, int) and not isinstance(value, bool):
        return False, value
    return False, -1


def _validate_deployment(errs: FieldErrors, d: Obj) -> None:
    validation.validate_replicated(errs, d, "deployment")
    spec = d.get("spec") or {}
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type")
    if stype not in ("Recreate", "RollingUpdate"):
        errs.not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate"))
    elif stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        values = {}
        for key in ("maxUnavailable", "maxSurge"):
            path = f"spec.strategy.rollingUpdate.{key}"
            pct, n = _percent_or_int(ru.get(key))
            if n < 0:
                errs.invalid(path, ru.get(key), "must be greater than or equal to 0" if isinstance(ru.get(key), int)
                             else "a valid percent string must be a numeric string followed by an ending '%' "
                                  "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
            elif pct and key == "maxUnavailable" and n > 100:
                errs.invalid(path, ru.get(key), "must not be greater than 100%")
            values[key] = n
        if values.get("maxUnavailable") == 0 and values.get("maxSurge") == 0:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")
    for key in ("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"spec.{key}", value, "must be greater than or equal to 0")


class DeploymentStrategy(Strategy):
    tracks_generation = True
    table = Printing(tables.DEPLOYMENT_COLUMNS, tables.print_deployment)

    def default(self, obj: Obj) -> None:
        default_deployment(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_deployment(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        validation.validate_selector_update(errs, new, old)


STRATEGY = DeploymentStrategy(RESOURCE)
