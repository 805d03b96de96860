"""Services + EndpointSlices -> what one node's kube-proxy must program.

Pure data, no I/O: both renderers (iptables, nftables) and the conntrack cleanup
read this model, so the Kubernetes semantics live in one place. It follows
kube-proxy's ``pkg/proxy`` (ServiceChangeTracker, EndpointSliceCache,
CategorizeEndpoints) for IPv4 single-stack:

- a Service with no cluster IP (headless) or of type ExternalName is not proxied;
- an endpoint belongs to a service port when the slice's port has the same *name*
  and protocol (that is how a named ``targetPort`` resolves per endpoint);
- "ready" is ``conditions.ready`` (absent means true); a terminating endpoint that
  is still serving is used only when no ready one exists (graceful termination);
- Local traffic policies use only endpoints whose ``nodeName`` is this node.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Any, Iterable

Obj = dict[str, Any]

# ClientIP affinity's default, from k8s.io/api core/v1 (DefaultClientIPServiceAffinitySeconds).
DEFAULT_AFFINITY_SECONDS = 10800


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node_name: str | None
    is_local: bool
    ready: bool
    serving: bool
    terminating: bool

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One (service, port) pair: kube-proxy's unit of work (a ServicePortName)."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    cluster_ip: str
    port: int
    node_port: int = 0
    type: str = "ClusterIP"
    affinity_seconds: int = 0  # 0: no session affinity; else ClientIP timeout
    external_policy_local: bool = False
    internal_policy_local: bool = False
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    health_check_node_port: int = 0
    endpoints: tuple[Endpoint, ...] = ()

    def __hash__(self) -> int:
        # The renderers' caches look every entry up on every sync; the generated hash
        # would re-hash all fields (endpoints included) each time.
        try:
            return self.__dict__["_hash"]
        except KeyError:
            h = hash(_service_port_fields(self))
            object.__setattr__(self, "_hash", h)
            return h

    # -- naming --------------------------------------------------------
    @property
    def name_string(self) -> str:
        """``ns/name:port`` (``ns/name`` for an unnamed port), like ServicePortName.String()."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def proto(self) -> str:
        """Lower-case protocol, as used in iptables matches and chain hashes."""
        return self.protocol.lower()

    # -- policies (BaseServicePortInfo) -----------------------------------
    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # Even with externalTrafficPolicy Local, Cluster endpoints are needed to
        # short-circuit traffic that starts inside the cluster.
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.external_policy_local and self.externally_accessible)

    @property
    def firewalled(self) -> bool:
        """loadBalancerSourceRanges guard this port's load-balancer IPs."""
        return bool(self.load_balancer_ips) and bool(self.load_balancer_source_ranges)

    def firewall_sources(self, node_ip: str) -> tuple[str, ...]:
        """The sources a firewalled load-balancer IP accepts on the node at ``node_ip``.

        The ranges, and, when one of them holds the node's address, the load-balancer
        IPs themselves: a node that has the VIP as a local address (the lab's announcer
        puts it on eth0) connects to it *from* the VIP, and the node is meant to be let in.
        """
        if any(_contains(cidr, node_ip) for cidr in self.load_balancer_source_ranges):
            return self.load_balancer_source_ranges + self.load_balancer_ips
        return self.load_balancer_source_ranges

    def categorize(self) -> Categorized:
        return categorize_endpoints(self)

    def routing(self, cat: Categorized) -> Routing:
        """Where this port's traffic goes on this node, for both renderers (the
        decisions at the top of kube-proxy's per-service loop)."""
        local_ok = cat.has_any and bool(cat.local)
        return Routing(
            internal_local=self.internal_policy_local,
            has_internal=local_ok if self.internal_policy_local else cat.has_any,
            external_local=self.external_policy_local,
            has_external=local_ok if self.external_policy_local else cat.has_any,
            # The external chain is needed even without externally usable endpoints:
            # it still short-circuits traffic that starts on this node or in its pods.
            uses_ext=cat.has_any and self.externally_accessible,
            uses_fw=cat.has_any and self.firewalled,
        )


@dataclass(frozen=True)
class Routing:
    internal_local: bool  # internal traffic goes to the local-endpoints chain, not the cluster one
    has_internal: bool  # internal traffic has somewhere to go
    external_local: bool
    has_external: bool
    uses_ext: bool  # the service needs its external-traffic chain
    # ... and a firewall chain (loadBalancerSourceRanges). iptables mode's rule; nftables
    # mode keeps its firewall without endpoints too (ServicePort.firewalled).
    uses_fw: bool


# Every field of a ServicePort as one tuple (dataclasses.fields() per call cost ~9 µs;
# a model of 10,000 Services hashes each entry when the renderers first cache it).
_service_port_fields = attrgetter(*(f.name for f in fields(ServicePort)))


@dataclass(frozen=True)
class Categorized:
    """CategorizeEndpoints' answer for one service port on this node."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...]  # every endpoint that gets a KUBE-SEP chain
    has_any: bool


def categorize_endpoints(svc: ServicePort) -> Categorized:
    eps = svc.endpoints
    cluster: tuple[Endpoint, ...] = ()
    local: tuple[Endpoint, ...] = ()
    has_any = False
    fallback_local = False
    if svc.uses_cluster_endpoints:
        cluster = tuple(e for e in eps if e.ready)
        if not cluster:
            # Nothing ready anywhere: keep serving through terminating endpoints
            # that still pass readiness, rather than dropping connections.
            cluster = tuple(e for e in eps if e.serving and e.terminating)
        has_any = bool(cluster)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)

    if any(e.ready or (e.serving and e.terminating) for e in eps):
        has_any = True
    local = tuple(e for e in eps if e.is_local and e.ready)
    if not local:
        local = tuple(e for e in eps if e.is_local and e.serving and e.terminating)
        fallback_local = bool(local)
    if not svc.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    if not fallback_local:
        # local holds only ready endpoints, all of which are in cluster already.
        return Categorized(cluster, local, cluster, has_any)
    merged = {str(e): e for e in cluster + local}
    return Categorized(cluster, local, _sorted(merged.values()), has_any)


def _sorted(eps: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    # kube-proxy sorts endpoints by their "ip:port" string (byEndpoint), so rule
    # order is stable; we do the same, string order and all.
    return tuple(sorted(eps, key=str))


# -- building ------------------------------------------------------------

def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _service_ports(svc: Obj) -> list[ServicePort]:
    """The proxied ports of one Service, without endpoints (ServiceChangeTracker)."""
    meta, spec = svc.get("metadata", {}), svc.get("spec", {})
    stype = spec.get("type", "ClusterIP")
    cluster_ip = spec.get("clusterIP") or ""
    if stype == "ExternalName" or not _is_ipv4(cluster_ip):
        return []
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    lb_ips = []
    for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        # ipMode "Proxy" means the load balancer delivers to the node itself, so
        # kube-proxy must not capture that IP (KEP-1860).
        if _is_ipv4(ing.get("ip", "")) and ing.get("ipMode", "VIP") == "VIP":
            lb_ips.append(ing["ip"])
    external_local = (stype in ("NodePort", "LoadBalancer")
                      and spec.get("externalTrafficPolicy") == "Local")
    common: dict[str, Any] = dict(
        namespace=meta.get("namespace", "default"), name=meta["name"], cluster_ip=cluster_ip,
        type=stype, affinity_seconds=affinity,
        external_policy_local=external_local,
        internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
        external_ips=tuple(ip for ip in spec.get("externalIPs") or [] if _is_ipv4(ip)),
        load_balancer_ips=tuple(lb_ips) if stype == "LoadBalancer" else (),
        load_balancer_source_ranges=tuple(
            r.strip() for r in spec.get("loadBalancerSourceRanges") or [] if "." in r),
        health_check_node_port=int(spec.get("healthCheckNodePort") or 0) if external_local else 0,
    )
    return [ServicePort(port_name=p.get("name") or "", protocol=p.get("protocol", "TCP"),
                        port=int(p["port"]), node_port=int(p.get("nodePort") or 0), **common)
            for p in spec.get("ports") or []]


def _slice_endpoints(slices: Iterable[Obj], node_name: str, publish_not_ready: bool
                     ) -> dict[tuple[str, str], list[Endpoint]]:
    """Endpoints keyed by (port name, protocol), merged over all of a service's slices."""
    found: dict[tuple[str, str], dict[str, Endpoint]] = {}
    for sl in sorted(slices, key=lambda s: s["metadata"]["name"]):
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        for port in sl.get("ports") or []:
            if port.get("port") is None:
                continue  # a slice port without a number matches no service port
            key = (port.get("name") or "", port.get("protocol", "TCP"))
            bucket = found.setdefault(key, {})
            for ep in sl.get("endpoints") or []:
                addrs = ep.get("addresses") or []
                if not addrs:
                    continue
                cond = ep.get("conditions") or {}
                node = ep.get("nodeName")
                terminating = cond.get("terminating") is True
                ready = cond.get("ready") is not False
                serving = cond.get("serving", ready) is not False
                if publish_not_ready:
                    # The EndpointSlice controller publishes every endpoint as
                    # ready for such services; honour that even if a slice lags.
                    ready = serving = True
                e = Endpoint(ip=addrs[0], port=int(port["port"]), node_name=node,
                             is_local=node == node_name, ready=ready, serving=serving,
                             terminating=terminating)
                # Same ip:port in two slices (during a handover): keep the first,
                # unless the later one is local (EndpointSliceCache does this).
                if str(e) not in bucket or e.is_local:
                    bucket[str(e)] = e
    return {k: list(v.values()) for k, v in found.items()}


def _slices_by_service(endpoint_slices: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for sl in endpoint_slices:
        meta = sl.get("metadata", {})
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((meta.get("namespace", "default"), owner), []).append(sl)
    return by_service


def _service_model(svc: Obj, slices: list[Obj], node_name: str) -> list[ServicePort]:
    """One Service's proxied ports with their endpoints from its slices."""
    ports = _service_ports(svc)
    if not ports:
        return []
    pnr = bool(svc.get("spec", {}).get("publishNotReadyAddresses"))
    eps = _slice_endpoints(slices, node_name, pnr)
    return [_with_endpoints(sp, eps.get((sp.port_name, sp.protocol), [])) for sp in ports]


def _model_order(sp: ServicePort) -> tuple[str, str, str, str]:
    return (sp.namespace, sp.name, sp.port_name, sp.protocol)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return (meta.get("namespace", "default"), meta.get("name", ""))


def build_model(services: Iterable[Obj], endpoint_slices: Iterable[Obj], node_name: str
                ) -> list[ServicePort]:
    """Every proxied service port with its endpoints, sorted by (namespace, name, port, protocol)."""
    by_service = _slices_by_service(endpoint_slices)
    model = [sp for svc in services for sp in _service_model(svc, by_service.get(_key(svc), []), node_name)]
    model.sort(key=_model_order)
    return model


RESORT_CHANGES = 64  # ModelBuilder: more changed Services than this in one sync are sorted anew


class ModelBuilder:
    """The model kept current from watch events, for a proxy that syncs after every change.

    Like kube-proxy's ServiceChangeTracker / EndpointsChangeTracker: each Service or
    EndpointSlice event marks its Service changed, and :meth:`model` rebuilds the
    entries of changed Services only. Unchanged entries are the very same objects as
    last time, so the renderers' per-service caches hit at once, and a sync does not
    scan every Service and slice. Same answer as :func:`build_model` on the same objects.
    """

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._services: dict[tuple[str, str], Obj] = {}
        self._slices: dict[tuple[str, str], dict[str, Obj]] = {}  # by owning Service
        self._slice_owner: dict[tuple[str, str], tuple[str, str]] = {}  # slice key -> Service key
        self._ports: dict[tuple[str, str], list[ServicePort]] = {}
        # The keys of _ports sorted, and their port lists in that order: the model is
        # these lists chained (no per-key lookup of 10,000 keys on every sync).
        self._order: list[tuple[str, str]] = []
        self._lists: list[list[ServicePort]] = []
        self._changed: set[tuple[str, str]] = set()
        self._model: list[ServicePort] = []

    def service_event(self, etype: str, svc: Obj) -> None:
        key = _key(svc)
        if etype == "DELETED":
            self._services.pop(key, None)
        else:
            self._services[key] = svc
        self._changed.add(key)

    def slice_event(self, etype: str, sl: Obj) -> None:
        key = _key(sl)
        previous = self._slice_owner.pop(key, None)
        if previous is not None:  # also covers a slice relabelled to another Service
            self._slices[previous].pop(key[1], None)
            self._changed.add(previous)
        owner = (sl.get("metadata", {}).get("labels") or {}).get("kubernetes.io/service-name")
        if etype != "DELETED" and owner:
            service = (key[0], owner)
            self._slices.setdefault(service, {})[key[1]] = sl
            self._slice_owner[key] = service
            self._changed.add(service)

    def model(self) -> list[ServicePort]:
        """Every proxied service port, sorted like :func:`build_model`."""
        if not self._changed:
            return self._model
        # Sorting 10,000 keys on every sync cost more than the rest of a one-Service
        # change; a few changes are put in place instead (a burst is sorted once).
        resort = len(self._changed) > RESORT_CHANGES
        for key in self._changed:
            svc = self._services.get(key)
            ports = _service_model(svc, list(self._slices.get(key, {}).values()), self.node_name) if svc else []
            ports.sort(key=_model_order)
            if ports:
                self._ports[key] = ports
            else:
                self._ports.pop(key, None)
            if not resort:
                self._place(key, ports)
        self._changed.clear()
        if resort:
            self._order = sorted(self._ports)
            self._lists = [self._ports[key] for key in self._order]
        self._model = list(itertools.chain.from_iterable(self._lists))
        return self._model

    def _place(self, key: tuple[str, str], ports: list[ServicePort]) -> None:
        """Puts one Service's ports (none: removes it) at its place in the sorted order."""
        i = bisect.bisect_left(self._order, key)
        if i < len(self._order) and self._order[i] == key:
            if ports:
                self._lists[i] = ports
            else:
                del self._order[i], self._lists[i]
        elif ports:
            self._order.insert(i, key)
            self._lists.insert(i, ports)

    def build(self, services: Iterable[Obj], endpoint_slices: Iterable[Obj]) -> list[ServicePort]:
        """The model for exactly these objects, for callers without a watch: each new or
        replaced object becomes an event, each one no longer given a deletion."""
        services, endpoint_slices = list(services), list(endpoint_slices)
        given_services, given_slices = {_key(s) for s in services}, {_key(s) for s in endpoint_slices}
        for key in [k for k in self._services if k not in given_services]:
            self.service_event("DELETED", self._services[key])
        for key in [k for k in self._slice_owner if k not in given_slices]:
            self.slice_event("DELETED", self._slices[self._slice_owner[key]][key[1]])
        for svc in services:
            if self._services.get(_key(svc)) is not svc:
                self.service_event("MODIFIED", svc)
        for sl in endpoint_slices:
            owner = self._slice_owner.get(_key(sl))
            if owner is None or self._slices[owner].get(_key(sl)[1]) is not sl:
                self.slice_event("MODIFIED", sl)
        return self.model()


def _with_endpoints(sp: ServicePort, eps: list[Endpoint]) -> ServicePort:
    return replace(sp, endpoints=_sorted(eps))


@dataclass(frozen=True)
class NodeInfo:
    """What the renderers need to know about the node they program."""

    name: str
    ip: str
    # Traffic from this range is "from a pod" (kube-proxy's ClusterCIDR local
    # detector); anything else reaching a cluster IP is masqueraded.
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    masquerade_all: bool = False
    masquerade_bit: int = 14

    @property
    def masquerade_mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"

    @classmethod
    def from_config(cls, config: Any, index: int) -> NodeInfo:
        """From a :class:`k8snet.lab.config.LabConfig` and a node index."""
        return cls(name=config.node_name(index), ip=config.node_ip(index),
                   cluster_cidr=config.pod_cidr, service_cidr=config.service_cidr)
