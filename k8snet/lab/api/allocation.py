"""ClusterIP and NodePort allocation for Services (``pkg/registry/core/service``).

The set of used addresses and ports is derived from the stored Services each
time (``lister("services")``) instead of being kept in a bitmap: allocation state
then can never leak or drift from the objects, at the cost of a scan per write,
which is nothing at lab scale.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any, Callable

from k8snet.lab.api.fielderrors import FieldErrors
from k8snet.lab.config import LabConfig
from k8snet.lab.contracts import Obj

Lister = Callable[[str], list[Obj]]


def needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type") != "ExternalName"


def needs_node_ports(spec: dict[str, Any]) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _same(a: Obj, b: Obj) -> bool:
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (ma.get("namespace"), ma.get("name")) == (mb.get("namespace"), mb.get("name"))


def _ports_key(port: dict[str, Any]) -> tuple[Any, Any]:
    return port.get("port"), port.get("protocol", "TCP")


def carry_over(new: Obj, old: Obj) -> None:
    """On update, keep what was allocated when the client left it out (a PUT of the
    original manifest) and drop what the new type no longer uses
    (storage.go patchAllocatedValues and dropTypeDependentFields)."""
    spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    if needs_cluster_ip(old_spec) and needs_cluster_ip(spec):
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP")
        if not spec.get("clusterIPs") and spec.get("clusterIP") == old_spec.get("clusterIP"):
            spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [])
    elif not needs_cluster_ip(spec) and needs_cluster_ip(old_spec):
        if spec.get("clusterIP") == old_spec.get("clusterIP"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if spec.get(key) == old_spec.get(key):
                spec.pop(key, None)
    old_ports = {_ports_key(p): p.get("nodePort") for p in old_spec.get("ports") or [] if isinstance(p, dict)}
    if needs_node_ports(old_spec) and needs_node_ports(spec):
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort") and old_ports.get(_ports_key(p)):
                p["nodePort"] = old_ports[_ports_key(p)]
    elif needs_node_ports(old_spec) and not needs_node_ports(spec):
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and p.get("nodePort") and p.get("nodePort") == old_ports.get(_ports_key(p)):
                p.pop("nodePort")
        if spec.get("type") not in ("NodePort", "LoadBalancer") and \
                spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy") and not spec.get("externalIPs"):
            spec.pop("externalTrafficPolicy", None)
    if spec.get("type") != "LoadBalancer" and old_spec.get("type") == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") == old_spec.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)


class Allocator:
    """Hands out ClusterIPs from ``config.service_cidr`` and node ports from
    ``config.node_port_range``; raises 422 with the real messages."""

    def __init__(self, config: LabConfig, lister: Lister, rng: random.Random | None = None):
        self._net = ipaddress.ip_network(config.service_cidr)
        self._ports = config.node_port_range
        self._lister = lister
        self._rng = rng or random.Random()

    def _others(self, svc: Obj) -> list[Obj]:
        return [s for s in self._lister("services") if not _same(s, svc)]

    def _used_ips(self, others: list[Obj]) -> set[str]:
        used = set()
        for s in others:
            spec = s.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    used.add(ip)
        return used

    def _used_ports(self, others: list[Obj]) -> set[int]:
        return {p["nodePort"] for s in others for p in (s.get("spec") or {}).get("ports") or []
                if isinstance(p, dict) and p.get("nodePort")}

    def allocate(self, svc: Obj, errs: FieldErrors) -> None:
        """Fills spec.clusterIP(s) and ports[].nodePort, recording problems in ``errs``."""
        spec = svc.setdefault("spec", {})
        others = self._others(svc)
        if needs_cluster_ip(spec):
            self._allocate_ip(spec, self._used_ips(others), errs)
        else:
            spec.pop("clusterIPs", None)
            if not spec.get("clusterIP"):
                spec.pop("clusterIP", None)
        if needs_node_ports(spec):
            self._allocate_node_ports(spec, self._used_ports(others), errs)

    # -- cluster IPs --------------------------------------------------------------
    def _allocate_ip(self, spec: dict[str, Any], used: set[str], errs: FieldErrors) -> None:
        requested = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if requested:
            problem = self._check_ip(requested, used)
            if problem:
                errs.invalid("spec.clusterIPs", [requested], f"failed to allocate IP {requested}: {problem}")
                return
            ip = requested
        else:
            ip = self._random_ip(used)
            if ip is None:
                errs.invalid("spec.clusterIPs", [], "failed to allocate a serviceIP: range is full")
                return
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def _check_ip(self, ip: str, used: set[str]) -> str | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None  # validation reports malformed addresses
        if addr not in self._net or addr in (self._net.network_address, self._net.broadcast_address):
            return (f"the provided IP ({ip}) is not in the valid range. "
                    f"The range of valid IPs is {self._net}")
        if ip in used:
            return "provided IP is already allocated"
        return None

    def _random_ip(self, used: set[str]) -> str | None:
        # Like ipallocator: dynamic allocation prefers the upper part of the range,
        # leaving the low band (min(max(16, size/16), 256) addresses) for static IPs
        # such as 10.96.0.1 (kubernetes) and 10.96.0.10 (kube-dns).
        size = self._net.num_addresses
        low = min(max(16, size // 16), 256)
        bands = [(low, size - 2), (2, low - 1)] if size - 2 > low else [(2, size - 2)]
        for lo, hi in bands:
            if hi < lo:
                continue
            candidates = hi - lo + 1
            start = self._rng.randrange(candidates)
            for i in range(candidates):
                ip = str(self._net[lo + (start + i) % candidates])
                if ip not in used:
                    return ip
        return None

    # -- node ports ----------------------------------------------------------------
    def _allocate_node_ports(self, spec: dict[str, Any], used: set[int], errs: FieldErrors) -> None:
        lo, hi = self._ports
        by_number: dict[Any, int] = {}  # the same service port gets the same node port (TCP+UDP)
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        for i, p in enumerate(ports):
            want = p.get("nodePort")
            if not want:
                continue
            path = f"spec.ports[{i}].nodePort"
            if not isinstance(want, int) or not lo <= want <= hi:
                errs.invalid(path, want, f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
            elif want in used and by_number.get(p.get("port")) != want:
                errs.invalid(path, want, "provided port is already allocated")
            else:
                used.add(want)
                by_number[p.get("port")] = want
        for p in ports:
            if p.get("nodePort"):
                continue
            port = by_number.get(p.get("port")) or self._random_port(used)
            if port is None:
                errs.invalid("spec.ports", [], "failed to allocate a nodePort: range is full")
                return
            used.add(port)
            by_number[p.get("port")] = port
            p["nodePort"] = port

    def _random_port(self, used: set[int]) -> int | None:
        lo, hi = self._ports
        count = hi - lo + 1
        start = self._rng.randrange(count)
        for i in range(count):
            port = lo + (start + i) % count
            if port not in used:
                return port
        return None
