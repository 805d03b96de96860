"""Services (pkg/registry/core/service: strategy.go, the ClusterIP and NodePort
allocators of storage/alloc.go).

Create: defaults (type, affinity, traffic policies, IP families), status reset to an
empty load balancer, then once valid a ClusterIP and NodePorts. Update: allocated
values the client left out are carried over; clusterIPs never change.
"""

from __future__ import annotations

from typing import Any

from ...contracts import Obj
from .. import defaults, tables, validation
from .. import strvalidation as sv
from ..allocation import carry_over
from ..apiresource import Resource, status_subresource
from ..fielderrors import FieldErrors
from .strategy import AdmissionContext, Printing, Strategy

RESOURCE = Resource("", "v1", "services", "service", "Service", True, ("svc",), ("all",),
                    subresources=(status_subresource("Service"),))


def default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    defaults.set_default(spec, "type", "ClusterIP")
    kind = spec["type"]
    defaults.set_default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        if not cfg.get("timeoutSeconds"):
            cfg["timeoutSeconds"] = 10800
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            defaults.set_default(port, "protocol", "TCP")
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if kind == "ExternalName":
        return
    defaults.set_default(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and spec.get("externalIPs")):
        defaults.set_default(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # Single-stack IPv4 cluster (alloc.go initIPFamilyFields): a headless service
    # without a selector is the one case that asks for both families.
    headless_no_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
    defaults.set_default(spec, "ipFamilyPolicy", "RequireDualStack" if headless_no_selector else "SingleStack")
    if not spec.get("ipFamilies"):
        dual = headless_no_selector and spec["ipFamilyPolicy"] != "SingleStack"
        spec["ipFamilies"] = ["IPv4", "IPv6"] if dual else ["IPv4"]


SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(errs: FieldErrors, svc: Obj) -> None:
    spec = svc.get("spec") or {}
    kind = spec.get("type")
    if kind not in SERVICE_TYPES:
        errs.not_supported("spec.type", kind, SERVICE_TYPES)
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if not ports and not headless and kind != "ExternalName":
        errs.required("spec.ports")
    seen_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        if not isinstance(p, dict):
            errs.invalid(pp, p, "must be an object")
            continue
        name = p.get("name") or ""
        if len(ports) > 1 and not name:
            errs.required(f"{pp}.name")
        elif name:
            if name in seen_names:
                errs.duplicate(f"{pp}.name", name)
            errs.each_invalid(f"{pp}.name", name, sv.is_dns1123_label(name))
            seen_names.add(name)
        validation.validate_port_number(errs, f"{pp}.port", p.get("port"))
        if p.get("protocol") not in validation.PROTOCOLS:
            errs.not_supported(f"{pp}.protocol", p.get("protocol"), validation.PROTOCOLS)
        if p.get("targetPort") is not None:
            validation.validate_int_or_port_name(errs, f"{pp}.targetPort", p["targetPort"])
        if p.get("nodePort") and kind in ("ClusterIP", "ExternalName"):
            errs.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{kind}'")
        port_key = (p.get("port"), p.get("protocol"))
        if port_key in seen_ports:
            errs.duplicate(pp, p)
        seen_ports.add(port_key)
    if kind == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.required("spec.externalName")
        else:
            errs.each_invalid("spec.externalName", ext, sv.is_dns1123_subdomain(ext.rstrip(".")))
    for i, ip in enumerate(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])):
        if ip != "None":
            errs.each_invalid(f"spec.clusterIPs[{i}]", ip, sv.is_valid_ip(ip))
    if spec.get("clusterIP") and spec.get("clusterIPs") and spec["clusterIPs"][0] != spec["clusterIP"]:
        errs.invalid("spec.clusterIPs", spec["clusterIPs"], "first value must match `clusterIP`")
    if headless and kind in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services")
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errs.each_invalid(f"spec.externalIPs[{i}]", ip, sv.is_valid_ip(ip))
    for key in ("internalTrafficPolicy", "externalTrafficPolicy"):
        value = spec.get(key)
        if value and value not in ("Cluster", "Local"):
            errs.not_supported(f"spec.{key}", value, ("Cluster", "Local"))
    validation.validate_string_map(errs, "spec.selector", spec.get("selector"), sv.is_valid_label_value)


def _validate_service_update(errs: FieldErrors, new: Obj, old: Obj) -> None:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
        return  # moving to/from ExternalName releases or allocates the IP
    old_ips, new_ips = old_spec.get("clusterIPs") or [], new_spec.get("clusterIPs") or []
    for i, (o, n) in enumerate(zip(old_ips, new_ips)):
        if o != n:
            errs.invalid(f"spec.clusterIPs[{i}]", n, "may not change once set")


class ServiceStrategy(Strategy):
    def name_problems(self, name: str) -> list[str]:
        return sv.is_dns1035_label(name)

    table = Printing(tables.SERVICE_COLUMNS, tables.print_service)

    def default(self, obj: Obj) -> None:
        default_service(obj)

    def initial_status(self, obj: Obj) -> Obj:
        return {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj, ctx: AdmissionContext) -> None:
        super().prepare_for_update(new, old, ctx)
        carry_over(new, old)

    def validate(self, errs: FieldErrors, obj: Obj) -> None:
        _validate_service(errs, obj)

    def validate_update(self, errs: FieldErrors, new: Obj, old: Obj) -> None:
        _validate_service_update(errs, new, old)

    def allocate(self, obj: Obj, ctx: AdmissionContext, errs: FieldErrors) -> None:
        ctx.allocator.allocate(obj, errs)


STRATEGY = ServiceStrategy(RESOURCE)
