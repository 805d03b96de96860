"""Endpoints (pkg/registry/core/endpoint/strategy.go): a PUT of a missing object
creates it (AllowCreateOnUpdate), as the endpoints controller relies on."""

from __future__ import annotations

from ...contracts import Obj
from .. import defaults, tables, validation
from .. import strvalidation as sv
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",),
                    warning="v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")


def default_endpoints(ep: Obj) -> None:
    for subset in ep.get("subsets") or []:
        defaults.default_ports((subset or {}).get("ports"), named=False)


def _validate_endpoints(errs: FieldErrors, ep: Obj) -> None:
    for i, subset in enumerate(ep.get("subsets") or []):
        for key in ("addresses", "notReadyAddresses"):
            for j, a in enumerate((subset or {}).get(key) or []):
                errs.each_invalid(f"subsets[{i}].{key}[{j}].ip", (a or {}).get("ip"),
                                  sv.is_non_special_ip(str((a or {}).get("ip"))))
        for j, p in enumerate((subset or {}).get("ports") or []):
            validation.validate_port_number(errs, f"subsets[{i}].ports[{j}].port", (p or {}).get("port"))


class EndpointsStrategy(Strategy):
    allow_create_on_update = True
    table = Printing(tables.ENDPOINTS_COLUMNS, tables.print_endpoints)

    def default(self, obj: Obj) -> None:
        default_endpoints(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_endpoints(errs, obj)


STRATEGY = EndpointsStrategy(RESOURCE)
