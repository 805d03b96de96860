"""The cluster's DNS records, computed from Services and EndpointSlices (pure, no I/O).

Follows the Kubernetes DNS spec (https://github.com/kubernetes/dns/blob/master/docs/specification.md, schema 1.1.0
as CoreDNS reports it) and, where the spec leaves room, CoreDNS's ``kubernetes``
plugin as kubeadm configures it (``pods insecure``, ``ttl 30``):

- ``<svc>.<ns>.svc.<zone>``: A/AAAA with the ClusterIP(s); for a headless Service,
  one record per *ready* endpoint address (NXDOMAIN when there is none, as the spec
  says); for an ExternalName Service, a CNAME to the external name.
- ``<hostname>.<svc>.<ns>.svc.<zone>``: each ready endpoint, by its ``hostname`` or,
  without one, its address with dashes (``10-244-1-5``), CoreDNS's identifier.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for named ports, targeting the
  Service name, or every endpoint name for a headless Service (N x M records), with
  the targets' addresses in the additional section. An SRV query for the bare
  Service name lists every port, as CoreDNS does.
- PTR in ``in-addr.arpa``/``ip6.arpa`` for ClusterIPs and for ready endpoint addresses.
- ``a-b-c-d.<ns>.pod.<zone>`` A records for any address (CoreDNS ``pods insecure``:
  no Pod lookup, so no Pod watch is needed).
- ``dns-version.<zone>`` TXT, the zone apex SOA and NS, and ``ns.dns.<zone>`` A
  pointing at the ``kube-system/kube-dns`` Service.

Negative answers carry the zone's SOA in the authority section (RFC 2308) so
resolvers can cache them: NXDOMAIN for names that do not exist, NOERROR with no
answer (NODATA) for names that exist without records of the asked type, among them
the "empty non-terminals" ``svc.<zone>``, ``<ns>.svc.<zone>``, ``pod.<zone>`` and
``<ns>.pod.<zone>``, which CoreDNS answers NODATA (any namespace is "exposed").

Names outside the cluster domain and the reverse zones are **not forwarded**: the
lab has no route out of the machine (docs/lab-architecture.md, "No traffic leaves the machine"),
so they are answered ``outside_rcode``, REFUSED by default ("not my zone, ask
someone else"), which a stub resolver reports at once instead of waiting for a
timeout. Reverse lookups of addresses that are not the cluster's get NXDOMAIN, as
CoreDNS's ``kubernetes cluster.local in-addr.arpa ip6.arpa`` line answers them when
its upstream has no record.

TTL: 30 s, the value kubeadm writes into the CoreDNS Corefile (``ttl 30``); the
plugin's own default is 5 s. Both are constructor arguments.

Thread safety: :meth:`update`/:meth:`replace` may be called from a watch thread
while the server resolves on its event loop; one lock guards the indexes, which
are rebuilt lazily (once per batch of changes, not per query). :attr:`generation`
counts the changes, so a reply built from the records can be kept until it moves.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.reversename
import dns.rrset

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SERVICES = "services"
ENDPOINTSLICES = "discovery.k8s.io/endpointslices"
KINDS = (SERVICES, ENDPOINTSLICES)

SCHEMA_VERSION = "1.1.0"  # what CoreDNS's kubernetes plugin answers for dns-version
DEFAULT_TTL = 30
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")
# SOA timers CoreDNS puts in its synthesized SOA (plugin/backend_lookup.go).
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400
MAX_CNAME_CHAIN = 8
MAX_PARSED = 10000
DNS_SERVICE = ("kube-system", "kube-dns")


@dataclass
class Answer:
    """What the server puts in a response: rcode and the three record sections."""

    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    authoritative: bool = True


@dataclass(frozen=True)
class _Endpoint:
    hostname: str
    ip: str
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port) from its slice


@dataclass
class _Node:
    """Everything a single owner name has: addresses, CNAME target, SRV records."""

    addrs: list[str] = field(default_factory=list)
    cname: str | None = None
    srv: list[tuple[int, str]] = field(default_factory=list)  # (port, target fqdn)


def _ip_version(ip: str) -> int | None:
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return None


def _dashed(ip: str) -> str:
    """CoreDNS's endpoint name when it has no hostname: dots/colons become dashes."""
    return ip.replace(".", "-").replace(":", "-")


def _pod_ip(label: str) -> str | None:
    """``10-244-1-5`` → ``10.244.1.5``; ``fd00--1`` style → IPv6 (CoreDNS's rule)."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", "") or "", meta.get("name", "") or ""


class ClusterRecords:
    """The in-memory zone: feed it API objects, ask it questions."""

    def __init__(self, domain: str = "cluster.local", *, ttl: int = DEFAULT_TTL,
                 outside_rcode: int = dns.rcode.REFUSED, synced: bool = True):
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self.outside_rcode = outside_rcode
        self.zone = dns.name.from_text(self.domain)
        self._reverse = [dns.name.from_text(z) for z in REVERSE_ZONES]
        self._services: dict[tuple[str, str], Obj] = {}
        self._slices: dict[tuple[str, str], Obj] = {}
        self._lock = threading.RLock()
        self._dirty = True
        self._serial = 1
        self._generation = 0
        self._names: dict[dns.name.Name, _Node] = {}
        self._ptr: dict[dns.name.Name, list[str]] = {}
        self._by_service: dict[tuple[str, str], list[Obj]] = {}
        self._parsed: dict[tuple[dns.rdatatype.RdataType, tuple[str, ...]], dns.rdataset.Rdataset] = {}
        self._synced = threading.Event()
        if synced:
            self._synced.set()

    # -- feeding -------------------------------------------------------------
    def update(self, kind: str, event_type: str, obj: Obj) -> None:
        """Applies one watch event (``ADDED``/``MODIFIED``/``DELETED``) of ``kind``
        (:data:`SERVICES` or :data:`ENDPOINTSLICES`). BOOKMARK/ERROR are ignored."""
        store = self._store(kind)
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            return
        with self._lock:
            if event_type == "DELETED":
                store.pop(_meta(obj), None)
            else:
                store[_meta(obj)] = obj
            self._changed()

    def replace(self, kind: str, items: Iterable[Obj]) -> None:
        """Replaces every object of ``kind`` with a fresh list (after a relist)."""
        store = self._store(kind)
        with self._lock:
            store.clear()
            store.update((_meta(o), o) for o in items)
            self._changed()

    def mark_synced(self) -> None:
        """Called once every kind has been listed; until then unknown names are
        SERVFAIL, not NXDOMAIN (CoreDNS does the same before its informers sync),
        so a resolver does not cache a negative answer for a name that exists."""
        with self._lock:
            self._synced.set()
            self._generation += 1  # SERVFAIL answers become NXDOMAIN: replies built before are stale

    @property
    def generation(self) -> int:
        """Goes up on every change of what :meth:`resolve` answers, so a reply built from
        these records can be kept until the number moves (the UDP fast path does)."""
        return self._generation

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def _store(self, kind: str) -> dict[tuple[str, str], Obj]:
        if kind == SERVICES:
            return self._services
        if kind == ENDPOINTSLICES:
            return self._slices
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")

    def _changed(self) -> None:
        self._dirty = True
        self._generation += 1
        # CoreDNS's serial is the time of the last change; never let it go backwards.
        self._serial = max(self._serial + 1, int(time.time()))

    # -- index ---------------------------------------------------------------
    def _name(self, *labels: str) -> dns.name.Name:
        return dns.name.Name([lab.lower().encode() for lab in labels] + list(self.zone.labels))

    def _ready_endpoints(self, svc: Obj, ns: str, name: str) -> list[_Endpoint]:
        spec = svc.get("spec") or {}
        annotations = (svc.get("metadata") or {}).get("annotations") or {}
        # The spec's "ready": listed as ready, or the Service asks for unready ones too.
        tolerate = bool(spec.get("publishNotReadyAddresses")) or \
            annotations.get("service.alpha.kubernetes.io/tolerate-unready-endpoints") == "true"
        found: dict[tuple[str, str], _Endpoint] = {}
        for sl in self._by_service.get((ns, name), []):
            if sl.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
                continue  # FQDN slices have no addresses DNS can serve
            ports = tuple((p.get("name") or "", (p.get("protocol") or "TCP"), int(p["port"]))
                          for p in sl.get("ports") or [] if p.get("port") is not None)
            for ep in sl.get("endpoints") or []:
                # A nil ready condition means "unknown" and must be read as ready (API docs).
                if (ep.get("conditions") or {}).get("ready") is False and not tolerate:
                    continue
                for ip in ep.get("addresses") or []:
                    if _ip_version(ip) is None:
                        continue
                    host = ep.get("hostname") or _dashed(ip)
                    found.setdefault((host, ip), _Endpoint(host, ip, ports))
        return list(found.values())

    def _rebuild(self) -> None:
        names: dict[dns.name.Name, _Node] = {}
        ptr: dict[dns.name.Name, list[str]] = {}

        def node(n: dns.name.Name) -> _Node:
            return names.setdefault(n, _Node())

        def add_ptr(ip: str, target: dns.name.Name) -> None:
            targets = ptr.setdefault(dns.reversename.from_address(ip), [])
            if target.to_text() not in targets:
                targets.append(target.to_text())

        # EndpointSlices name their Service in a label; several slices may share one.
        self._by_service = {}
        for (ns, _), sl in sorted(self._slices.items()):
            owner = ((sl.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                self._by_service.setdefault((ns, owner), []).append(sl)
        for (ns, name), svc in sorted(self._services.items()):
            try:
                self._index_service(ns, name, svc, node, add_ptr)
            except (KeyError, TypeError, ValueError, AttributeError, dns.exception.DNSException) as err:
                # One malformed object must not take every other name down with it.
                log.warning("ignoring Service %s/%s for DNS: %r", ns, name, err)

        dns_svc = self._services.get(DNS_SERVICE)
        if dns_svc is not None:
            ips = [ip for ip in ((dns_svc.get("spec") or {}).get("clusterIPs")
                                 or [(dns_svc.get("spec") or {}).get("clusterIP")]) if ip and _ip_version(ip)]
            node(self._name("ns", "dns")).addrs.extend(ips)
        self._names, self._ptr, self._dirty = names, ptr, False
        self._parsed = {}  # drop what the old data needed (keys are the texts, so never stale)

    def _index_service(self, ns: str, name: str, svc: Obj, node: Callable[[dns.name.Name], _Node],
                       add_ptr: Callable[[str, dns.name.Name], None]) -> None:
        spec = svc.get("spec") or {}
        svc_name = self._name(name, ns, "svc")
        if spec.get("type") == "ExternalName":
            if spec.get("externalName"):
                node(svc_name).cname = spec["externalName"].rstrip(".") + "."
            return
        endpoints = self._ready_endpoints(svc, ns, name)
        # Endpoint names exist for every Service (CoreDNS answers them for ClusterIP
        # Services too), and so do their PTRs.
        for ep in endpoints:
            ep_name = self._name(ep.hostname, name, ns, "svc")
            node(ep_name).addrs.append(ep.ip)
            add_ptr(ep.ip, ep_name)
        headless = spec.get("clusterIP") == "None"
        if headless:
            if not endpoints:
                return  # no ready endpoint: the name does not exist (NXDOMAIN)
            node(svc_name).addrs.extend(dict.fromkeys(ep.ip for ep in endpoints))
            for ep in endpoints:
                target = self._name(ep.hostname, name, ns, "svc")
                for pname, proto, port in ep.ports:
                    self._add_srv(node, svc_name, pname, proto, port, target)
        else:
            ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
                   if ip and _ip_version(ip)]
            if not ips:
                return  # not allocated yet
            node(svc_name).addrs.extend(ips)
            for ip in ips:
                add_ptr(ip, svc_name)
            for p in spec.get("ports") or []:
                self._add_srv(node, svc_name, p.get("name") or "", p.get("protocol") or "TCP",
                              int(p["port"]), svc_name)

    @staticmethod
    def _add_srv(node: Callable[[dns.name.Name], _Node], svc_name: dns.name.Name, pname: str, proto: str, port: int,
                 target: dns.name.Name) -> None:
        entry = (port, target.to_text())
        # Every port answers an SRV query for the bare Service name (CoreDNS's
        # wildcard port); only named ports get their own _port._proto name (spec).
        if entry not in node(svc_name).srv:
            node(svc_name).srv.append(entry)
        if pname:
            owner = dns.name.Name([f"_{pname}".lower().encode(), f"_{proto}".lower().encode()]
                                  + list(svc_name.labels))
            if entry not in node(owner).srv:
                node(owner).srv.append(entry)

    # -- answering ------------------------------------------------------------
    def resolve(self, qname: str | dns.name.Name, qtype: int,
                qclass: int = dns.rdataclass.IN) -> Answer:
        """The answer to one question. Never raises for a well-formed name."""
        name = qname if isinstance(qname, dns.name.Name) else dns.name.from_text(qname)
        if qclass != dns.rdataclass.IN:
            return Answer(rcode=self.outside_rcode, authoritative=False)
        with self._lock:
            if self._dirty:
                self._rebuild()
            if name.is_subdomain(self.zone):
                return self._resolve_cluster(name, qtype)
            for zone in self._reverse:
                if name.is_subdomain(zone):
                    return self._resolve_reverse(name, qtype, zone)
        return Answer(rcode=self.outside_rcode, authoritative=False)

    def _soa(self, zone: dns.name.Name) -> dns.rrset.RRset:
        text = (f"ns.dns.{self.domain}. hostmaster.{self.domain}. {self._serial} "
                f"{SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {self.ttl}")
        return self._rrset(zone, dns.rdatatype.SOA, [text])

    def _negative(self, rcode: int, zone: dns.name.Name) -> Answer:
        if rcode == dns.rcode.NXDOMAIN and not self.synced:
            return Answer(rcode=dns.rcode.SERVFAIL, authoritative=False)
        return Answer(rcode=rcode, authority=[self._soa(zone)])

    def _rrset(self, owner: dns.name.Name, rdtype: dns.rdatatype.RdataType, texts: Iterable[str]) -> dns.rrset.RRset:
        # Parsing rdata text is the costliest step of an answer; the same data is asked
        # for again and again, so parsed rdatasets are kept (bounded: pod names are
        # unbounded) and only the owner name, in the question's case, is new each time.
        key = (rdtype, tuple(texts))
        rdataset = self._parsed.get(key)
        if rdataset is None:
            if len(self._parsed) >= MAX_PARSED:
                self._parsed.clear()
            rdataset = dns.rrset.from_text_list(owner, self.ttl, "IN", rdtype, list(key[1])).to_rdataset()
            self._parsed[key] = rdataset
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
        rrset.update(rdataset)
        return rrset

    def _resolve_reverse(self, name: dns.name.Name, qtype: int, zone: dns.name.Name) -> Answer:
        targets = self._ptr.get(name.canonicalize())
        if not targets:
            return self._negative(dns.rcode.NXDOMAIN, zone)
        if qtype not in (dns.rdatatype.PTR, dns.rdatatype.ANY):
            return self._negative(dns.rcode.NOERROR, zone)
        return Answer(answer=[self._rrset(name, dns.rdatatype.PTR, targets)])

    def _resolve_cluster(self, name: dns.name.Name, qtype: int, depth: int = 0) -> Answer:
        key = name.canonicalize()
        rel = key.relativize(self.zone).labels if key != self.zone else ()
        if not rel:
            return self._apex(name, qtype)
        if rel == (b"dns-version",):
            if qtype in (dns.rdatatype.TXT, dns.rdatatype.ANY):
                return Answer(answer=[self._rrset(name, dns.rdatatype.TXT, [f'"{SCHEMA_VERSION}"'])])
            return self._negative(dns.rcode.NOERROR, self.zone)
        kind = rel[-1]
        if kind == b"pod" and len(rel) == 3:
            return self._pod(name, rel[0].decode(errors="replace"), qtype)
        if kind in (b"svc", b"pod") and len(rel) <= 2:
            return self._negative(dns.rcode.NOERROR, self.zone)  # empty non-terminal
        found = self._names.get(key)
        if found is None:
            return self._negative(dns.rcode.NXDOMAIN, self.zone)
        if found.cname is not None:
            return self._cname(name, found.cname, qtype, depth)
        return self._positive(name, found, qtype)

    def _apex(self, name: dns.name.Name, qtype: int) -> Answer:
        if qtype == dns.rdatatype.SOA:
            return Answer(answer=[self._soa(name)])
        if qtype == dns.rdatatype.NS:
            ns_name = self._name("ns", "dns")
            server = self._names.get(ns_name, _Node())
            glue = [rr for rr in (self._addr_rrset(ns_name, server.addrs, v) for v in (4, 6)) if rr]
            return Answer(answer=[self._rrset(name, dns.rdatatype.NS, [ns_name.to_text()])],
                          additional=glue)
        return self._negative(dns.rcode.NOERROR, self.zone)

    def _pod(self, name: dns.name.Name, label: str, qtype: int) -> Answer:
        ip = _pod_ip(label)
        if ip is None:
            return self._negative(dns.rcode.NXDOMAIN, self.zone)
        return self._positive(name, _Node(addrs=[ip]), qtype)

    def _addr_rrset(self, owner: dns.name.Name, addrs: list[str], version: int) -> dns.rrset.RRset | None:
        chosen = [ip for ip in addrs if _ip_version(ip) == version]
        if not chosen:
            return None
        return self._rrset(owner, dns.rdatatype.A if version == 4 else dns.rdatatype.AAAA, chosen)

    def _positive(self, name: dns.name.Name, found: _Node, qtype: int) -> Answer:
        answer: list[dns.rrset.RRset] = []
        additional: list[dns.rrset.RRset] = []
        any_type = qtype == dns.rdatatype.ANY
        for version, rdtype in ((4, dns.rdatatype.A), (6, dns.rdatatype.AAAA)):
            if qtype == rdtype or any_type:
                rrset = self._addr_rrset(name, found.addrs, version)
                if rrset is not None:
                    answer.append(rrset)
        if (qtype == dns.rdatatype.SRV or any_type) and found.srv:
            weight = max(1, 100 // len(found.srv))  # equal share, like CoreDNS
            answer.append(self._rrset(name, dns.rdatatype.SRV,
                                      [f"0 {weight} {port} {target}" for port, target in found.srv]))
            for target in dict.fromkeys(t for _, t in found.srv):
                target_name = dns.name.from_text(target)
                node = self._names.get(target_name)
                for version in (4, 6):
                    rrset = self._addr_rrset(target_name, node.addrs, version) if node else None
                    if rrset is not None:
                        additional.append(rrset)
        if not answer:
            return self._negative(dns.rcode.NOERROR, self.zone)
        return Answer(answer=answer, additional=additional)

    def _cname(self, name: dns.name.Name, target: str, qtype: int, depth: int) -> Answer:
        cname = self._rrset(name, dns.rdatatype.CNAME, [target])
        if qtype == dns.rdatatype.CNAME:
            return Answer(answer=[cname])
        target_name = dns.name.from_text(target)
        # Chase only inside our own zone: outside names are not forwarded (see module
        # docstring), so the stub gets the CNAME alone and reports the target.
        if depth >= MAX_CNAME_CHAIN or not target_name.is_subdomain(self.zone):
            return Answer(answer=[cname])
        chased = self._resolve_cluster(target_name, qtype, depth + 1)
        # RFC 6604: the rcode describes the last name of the chain.
        return Answer(rcode=chased.rcode, answer=[cname, *chased.answer],
                      authority=chased.authority, additional=chased.additional)
