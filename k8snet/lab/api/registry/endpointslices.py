"""EndpointSlices (pkg/registry/discovery/endpointslice/strategy.go)."""

from __future__ import annotations

import ipaddress

from ...contracts import Obj
from .. import defaults, tables, validation
from ..apiresource import Resource
from ..fielderrors import FieldErrors
from .strategy import Printing, Strategy

RESOURCE = Resource("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True)


def default_endpointslice(es: Obj) -> None:
    defaults.default_ports(es.get("ports"), named=True)
    for e in es.get("endpoints") or []:
        if isinstance(e, dict):
            cond = e.setdefault("conditions", {})
            if cond.get("ready") is not None:
                # the endpointslice API mirrors ready into serving/!terminating when absent
                cond.setdefault("serving", cond["ready"])
                cond.setdefault("terminating", False)


def _validate_endpointslice(errs: FieldErrors, es: Obj) -> None:
    address_type = es.get("addressType")
    if not address_type:
        errs.required("addressType")
    elif address_type not in ("FQDN", "IPv4", "IPv6"):
        errs.not_supported("addressType", address_type, ("FQDN", "IPv4", "IPv6"))
    for i, e in enumerate(es.get("endpoints") or []):
        addrs = (e or {}).get("addresses") or []
        if not addrs:
            errs.required(f"endpoints[{i}].addresses", "must contain at least 1 address")
        elif len(addrs) > 100:
            errs.invalid(f"endpoints[{i}].addresses", len(addrs), "must have at most 100 items")
        elif address_type in ("IPv4", "IPv6"):
            for j, a in enumerate(addrs):
                try:
                    ok = ipaddress.ip_address(a).version == (4 if address_type == "IPv4" else 6)
                except ValueError:
                    ok = False
                if not ok:
                    errs.invalid(f"endpoints[{i}].addresses[{j}]", a, f"must be a valid {address_type} address")
    for i, p in enumerate(es.get("ports") or []):
        if (p or {}).get("port") is not None:
            validation.validate_port_number(errs, f"ports[{i}].port", p["port"])


class EndpointSliceStrategy(Strategy):
    table = Printing(tables.ENDPOINT_SLICE_COLUMNS, tables.print_endpoint_slice)

    def default(self, obj: Obj) -> None:
        default_endpointslice(obj)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_endpointslice(errs, obj)


STRATEGY = EndpointSliceStrategy(RESOURCE)
