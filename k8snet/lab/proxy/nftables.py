"""The model -> an ``nft -f`` file, shaped like kube-proxy's nftables mode.

Structure after ``pkg/proxy/nftables/proxier.go`` (release-1.32): one table
``ip kube-proxy`` (so no name needs a ``kube-`` prefix); dispatch through verdict
maps instead of a linear chain, so finding a service costs the same with 10 or
10,000 of them:

- ``services``: ``ip daddr . meta l4proto . th dport vmap @service-ips`` for
  cluster, external and load-balancer IPs, then ``@service-nodeports`` for local
  destinations;
- ``service-<hash>-ns/svc/proto/port``: masquerade off-cluster sources, then
  ``numgen random mod N vmap { 0 : goto endpoint-..., ... }`` picks an endpoint;
- ``endpoint-<hash>-...``: hairpin masquerade, then ``dnat to ip:port``;
- services with no endpoints are rejected from the filter hooks through
  ``@no-endpoint-services`` / ``@no-endpoint-nodeports``.

The file starts with ``add table`` + ``delete table`` and then declares the
whole table, so ``nft -f`` replaces it in a single transaction.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from functools import lru_cache

from .model import Endpoint, NodeInfo, ServicePort

TABLE = "kube-proxy"
REJECT_CHAIN = "reject-chain"
MARK_MASQ = "mark-for-masquerade"
# Base chains: (name, type, hook, priority). Numeric priorities: dstnat = -100,
# srcnat = 100; the filter chains run just before DNAT (-110) so they see the
# original destination, and filter-output-post-dnat just after it (-90).
BASE_CHAINS = (
    ("filter-prerouting", "filter", "prerouting", -110),
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
# (from base chain, to chain, extra match) like nftablesJumpChains.
JUMPS = (
    ("filter-prerouting", "firewall-check", "ct state new"),
    ("filter-input", "nodeport-endpoints-check", "ct state new"),
    ("filter-input", "service-endpoints-check", "ct state new"),
    ("filter-forward", "service-endpoints-check", "ct state new"),
    ("filter-forward", "cluster-ips-check", "ct state new"),
    ("filter-output", "service-endpoints-check", "ct state new"),
    ("filter-output", "firewall-check", "ct state new"),
    ("filter-output-post-dnat", "cluster-ips-check", "ct state new"),
    ("nat-prerouting", "services", ""),
    ("nat-output", "services", ""),
    ("nat-postrouting", "masquerading", ""),
)
ADDR_PROTO_PORT = "ipv4_addr . inet_proto . inet_service"


# Names are recomputed on every sync for every service; caching them (and hashing
# only the bytes we keep) took a 10,000-service render from 0.8 s to a fraction.
@lru_cache(maxsize=1 << 17)
def hash_and_truncate(name: str) -> str:
    """8 chars of base32(sha256) + the readable name: unique even when truncated."""
    # base32 turns each 5 bytes into 8 characters on their own, so encoding just
    # the first 5 bytes of the digest gives the same 8 characters as the whole.
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    name = f"{digest}-{name}"
    return name if len(name) <= 200 else name[:200] + "..."


def _base(sp: ServicePort) -> str:
    # "/" cannot occur in Kubernetes names, so it separates the parts unambiguously.
    return f"{sp.namespace}/{sp.name}/{sp.proto}/{sp.port_name}"


def service_chain(sp: ServicePort) -> str:
    return "service-" + hash_and_truncate(_base(sp))


def local_chain(sp: ServicePort) -> str:
    return "local-" + hash_and_truncate(_base(sp))


def external_chain(sp: ServicePort) -> str:
    return "external-" + hash_and_truncate(_base(sp))


def firewall_chain(sp: ServicePort) -> str:
    return "firewall-" + hash_and_truncate(_base(sp))


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return "endpoint-" + hash_and_truncate(f"{_base(sp)}__{ep.ip}/{ep.port}")


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return "affinity-" + hash_and_truncate(f"{_base(sp)}__{ep.ip}/{ep.port}")


# (set or map name, element as written): one cluster IP is an element of every
# port of its Service, so table-wide each element has a count.
ElementKey = tuple[str, str]
_serials = itertools.count(1)  # NftTable.serial


class NftRuleset:
    """Sets, map elements and chains of table ``ip kube-proxy``, in the order they are written.

    Also used for one service's share of the table (a fragment): its elements of the
    shared maps, its own chains and affinity sets. Fragments merge with
    :meth:`extend`, which keeps every order, so the merged text is the same as if
    everything had been rendered into one ruleset.
    """

    def __init__(self) -> None:
        self.sets: dict[str, str] = {}  # name -> declaration ("set type ...; ...")
        self.elements: dict[str, list[str]] = {}  # set name -> elements, possibly of another fragment's set
        self.chains: dict[str, list[str]] = {}

    def declare(self, name: str, decl: str) -> None:
        self.sets.setdefault(name, decl)

    def element(self, name: str, elem: str) -> None:
        self.elements.setdefault(name, []).append(elem)

    def chain(self, name: str) -> list[str]:
        return self.chains.setdefault(name, [])

    @classmethod
    def merge(cls, parts: Iterable[NftRuleset]) -> NftRuleset:
        """One ruleset holding ``parts`` in order (each order kept, as :meth:`extend` does)."""
        rs = cls()
        for part in parts:
            rs.extend(part)
        return rs

    def extend(self, other: NftRuleset) -> None:
        for name, decl in other.sets.items():
            self.sets.setdefault(name, decl)
        for name, elems in other.elements.items():
            self.elements.setdefault(name, []).extend(elems)
        for name, rules in other.chains.items():
            self.chains.setdefault(name, []).extend(rules)

    def text(self) -> str:
        """The ``nft -f`` file: re-create the table and declare all of it in one transaction."""
        out = [f"add table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
               '\tcomment "rules for kube-proxy"']
        for name, decl in self.sets.items():
            out.append(f"\t{decl.split()[0]} {name} {{")
            out += [f"\t\t{line}" for line in decl.split(" ", 1)[1].split("; ")]
            elems = self.elements.get(name)
            if elems:
                out.append("\t\telements = {")
                out += [f"\t\t\t{e}," for e in elems]
                out.append("\t\t}")
            out.append("\t}")
        for name, rules in self.chains.items():
            out.append(f"\tchain {name} {{")
            out += [f"\t\t{r}" for r in rules]
            out.append("\t}")
        out.append("}")
        return "\n".join(out) + "\n"

    def count(self) -> int:
        """Rules plus set/map elements, like :func:`nft_rule_count` on :meth:`text`."""
        rules = sum(len(r) - (1 if r and r[0].startswith("type ") else 0) for r in self.chains.values())
        return rules + sum(len(e) for e in self.elements.values())

    def count_elements(self, counts: dict[ElementKey, int], step: int) -> None:
        """Adds ``step`` to ``counts`` for each of this ruleset's elements."""
        for name, elems in self.elements.items():
            for elem in elems:
                n = counts.get((name, elem), 0) + step
                if n:
                    counts[name, elem] = n
                else:
                    del counts[name, elem]  # so elements that went do not pile up


class NftTable:
    """Table ``ip kube-proxy`` for one model: the node's skeleton and one fragment per
    ServicePort, in model order.

    The renderer makes each table from its previous one and records what changed on
    the way (the fragments that left and arrived), the rule count and how many
    fragments hold each element, so a partial sync (:mod:`.nftsync`) costs what changed,
    not what the table holds. The merged ruleset and its text are built only for a
    full load (:meth:`merged`, :meth:`text`).
    """

    def __init__(self, node: NodeInfo, skeleton: NftRuleset, fragments: dict[ServicePort, NftRuleset],
                 previous: NftTable | None = None, gone: Sequence[NftRuleset] = (),
                 fresh: Sequence[NftRuleset] = ()) -> None:
        self.node, self.skeleton, self.fragments = node, skeleton, fragments
        self.serial = next(_serials)
        # The previous table's serial, not the table: each table keeping its predecessor
        # alive would keep every past table.
        self._previous = previous.serial if previous else 0
        self._gone, self._fresh = list(gone), list(fresh)
        if previous is None:
            self.rules = skeleton.count() + sum(f.count() for f in fragments.values())
            self._counts: dict[ElementKey, int] | None = None  # counted when first asked
        else:
            self.rules = previous.rules + sum(f.count() for f in fresh) - sum(f.count() for f in gone)
            # The counts move on to this table (updated by what changed); the previous
            # table counts afresh should it ever be asked again.
            counts, previous._counts = previous.element_counts(), None
            for fragment in gone:
                fragment.count_elements(counts, -1)
            for fragment in fresh:
                fragment.count_elements(counts, 1)
            self._counts = counts

    def changes_since(self, old: NftTable) -> tuple[list[NftRuleset], list[NftRuleset]]:
        """(fragments of ``old`` not in this table, fragments of this table not in ``old``)."""
        if self._previous == old.serial:
            return self._gone, self._fresh
        return ([f for sp, f in old.fragments.items() if sp not in self.fragments],
                [f for sp, f in self.fragments.items() if sp not in old.fragments])

    def element_counts(self) -> dict[ElementKey, int]:
        """How many fragments hold each element of the table's sets and maps."""
        if self._counts is None:
            self._counts = {}
            for fragment in self.fragments.values():
                fragment.count_elements(self._counts, 1)
        return self._counts

    def merged(self) -> NftRuleset:
        """The whole table as one ruleset (what a full load declares)."""
        return NftRuleset.merge(itertools.chain([self.skeleton], self.fragments.values()))

    def text(self) -> str:
        """The ``nft -f`` file that replaces the table (:meth:`NftRuleset.text`)."""
        return self.merged().text()


def _skeleton(rs: NftRuleset, node: NodeInfo) -> None:
    rs.declare("cluster-ips", 'set type ipv4_addr; comment "Active ClusterIPs"')
    rs.declare("service-ips", f'map type {ADDR_PROTO_PORT} : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"')
    rs.declare("service-nodeports", 'map type inet_proto . inet_service : verdict; comment "NodePort traffic"')
    rs.declare("no-endpoint-services", f'map type {ADDR_PROTO_PORT} : verdict; comment "vmap to drop or reject packets to services with no endpoints"')
    rs.declare("no-endpoint-nodeports", 'map type inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to service nodeports with no endpoints"')
    rs.declare("firewall-ips", f'map type {ADDR_PROTO_PORT} : verdict; comment "destinations that are subject to LoadBalancerSourceRanges"')
    for name, ctype, hook, prio in BASE_CHAINS:
        rs.chain(name).append(f"type {ctype} hook {hook} priority {prio}; policy accept;")
    for src, dst, extra in JUMPS:
        rs.chain(src).append(f"{extra} jump {dst}".strip())
    mark = node.masquerade_mark
    rs.chain(MARK_MASQ).append(f"mark set mark or {mark}")
    rs.chain("masquerading").extend([
        f"mark and {mark} == 0 return",
        # Clear the mark so a packet that traverses the stack again is not masqueraded twice.
        f"mark set mark xor {mark}",
        "masquerade fully-random",
    ])
    rs.chain("services").extend([
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
    ])
    rs.chain("firewall-check").append("ip daddr . meta l4proto . th dport vmap @firewall-ips")
    rs.chain(REJECT_CHAIN).append('reject comment "helper for @no-endpoint-services / @no-endpoint-nodeports"')
    rs.chain("nodeport-endpoints-check").append(
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports")
    rs.chain("service-endpoints-check").append("ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    rs.chain("cluster-ips-check").extend([
        'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
        f'ip daddr {node.service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"',
    ])


def render_nftables(model: list[ServicePort], node: NodeInfo) -> str:
    """A complete ``nft -f`` file that replaces table ``ip kube-proxy``."""
    return NftablesRenderer(node).ruleset(model).text()


class NftablesRenderer:
    """Renders one node's table, remembering each service's fragment between calls.

    A service's rules depend only on its model entry (a frozen, hashable
    :class:`ServicePort`, endpoints included) and the node, so a resync re-renders
    only the services that changed; with 10,000 services that is the difference
    between rendering everything and rendering one. Each :meth:`ruleset` is an
    :class:`NftTable` made from the previous one.
    """

    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        skeleton = NftRuleset()
        _skeleton(skeleton, node)
        self._table = NftTable(node, skeleton, {})

    def ruleset(self, model: list[ServicePort]) -> NftTable:
        previous = self._table.fragments
        fragments: dict[ServicePort, NftRuleset] = {}
        fresh = []
        for sp in model:
            fragment = previous.get(sp)
            if fragment is None:
                fragment = NftRuleset()
                _render_service(fragment, sp, self.node)
                fresh.append(fragment)
            fragments[sp] = fragment  # only the current services stay cached
        # Every kept fragment is one of the previous ones: look for the gone only if some are.
        kept = len(fragments) - len(fresh)
        gone = [f for sp, f in previous.items() if sp not in fragments] if kept < len(previous) else []
        self._table = NftTable(self.node, self._table.skeleton, fragments, self._table, gone, fresh)
        return self._table


def _render_service(rs: NftRuleset, sp: ServicePort, node: NodeInfo) -> None:
    cat = sp.categorize()
    proto, port = sp.proto, sp.port
    svc, loc, ext, fw = service_chain(sp), local_chain(sp), external_chain(sp), firewall_chain(sp)

    route = sp.routing(cat)
    internal_chain = loc if route.internal_local else svc
    external_policy = loc if route.external_local else svc
    has_internal, has_external, uses_ext = route.has_internal, route.has_external, route.uses_ext
    # Unlike iptables mode, the firewall does not wait for endpoints: it runs in
    # filter-prerouting, before the no-endpoints reject, so a source outside the
    # ranges is dropped rather than told the Service has no endpoints.
    uses_fw = sp.firewalled
    # What to do with traffic that has no endpoint to go to.
    int_verdict = "goto " + REJECT_CHAIN if not cat.has_any else "drop"
    ext_verdict = int_verdict

    rs.element("cluster-ips", sp.cluster_ip)
    if has_internal:
        rs.element("service-ips", f"{sp.cluster_ip} . {proto} . {port} : goto {internal_chain}")
    else:
        rs.element("no-endpoint-services", f"{sp.cluster_ip} . {proto} . {port} : {int_verdict}")
    for ip in sp.external_ips + sp.load_balancer_ips:
        if uses_ext:
            rs.element("service-ips", f"{ip} . {proto} . {port} : goto {ext}")
        if not has_external:
            rs.element("no-endpoint-services", f"{ip} . {proto} . {port} : {ext_verdict}")
    if uses_fw:
        for ip in sp.load_balancer_ips:
            rs.element("firewall-ips", f"{ip} . {proto} . {port} : goto {fw}")
    if sp.node_port:
        if uses_ext:
            rs.element("service-nodeports", f"{proto} . {sp.node_port} : goto {ext}")
        if not has_external:
            rs.element("no-endpoint-nodeports", f"{proto} . {sp.node_port} : {ext_verdict}")

    if uses_fw:
        sources = ", ".join(sp.firewall_sources(node.ip))
        rs.chain(fw).append(f'ip saddr != {{ {sources} }} drop comment "other traffic to {sp.name_string} is not accepted"')

    if uses_ext:
        rules = rs.chain(ext)
        if not sp.external_policy_local:
            rules.append(f'jump {MARK_MASQ} comment "masquerade traffic for {sp.name_string} external destinations"')
        else:
            rules += [f'ip saddr {node.cluster_cidr} goto {svc} comment "short-circuit pod traffic"',
                      f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"',
                      f'fib saddr type local goto {svc} comment "short-circuit local traffic"']
        if has_external:
            rules.append(f"goto {external_policy}")

    if has_internal:
        # Cluster-IP traffic from outside the pod network (the node itself, or a client
        # that routes the service range to this node) is masqueraded so replies come
        # back here. The rule goes where cluster-IP traffic goes: the local chain under
        # internalTrafficPolicy Local. The cluster chain then has no such rule; traffic
        # short-circuited into it from the external chain does not target the cluster IP.
        match = f"ip daddr {sp.cluster_ip} {proto} dport {port}"
        source = "" if node.masquerade_all else f" ip saddr != {node.cluster_cidr}"
        rs.chain(internal_chain).append(f"{match}{source} jump {MARK_MASQ}")
    if cat.cluster and sp.uses_cluster_endpoints:
        _dispatch(rs.chain(svc), sp, cat.cluster)
    if cat.local and sp.uses_local_endpoints:
        _dispatch(rs.chain(loc), sp, cat.local)

    for ep in cat.reachable:
        rules = rs.chain(endpoint_chain(sp, ep))
        # Hairpin: a pod reaching itself through the service must be masqueraded.
        rules.append(f"ip saddr {ep.ip} jump {MARK_MASQ}")
        if sp.affinity_seconds:
            name = affinity_set(sp, ep)
            rs.declare(name, f"set type ipv4_addr; flags dynamic,timeout; timeout {sp.affinity_seconds}s")
            rules.append(f"update @{name} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")


def _dispatch(rules: list[str], sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> None:
    if sp.affinity_seconds:
        # A client with a live affinity entry goes back to the same endpoint.
        rules += [f"ip saddr @{affinity_set(sp, ep)} goto {endpoint_chain(sp, ep)}" for ep in endpoints]
    if len(endpoints) == 1:
        # Every "numgen ... vmap { }" is an anonymous set, and loading thousands of
        # them costs quadratic time in nft (5,000 services: 4.9 s vs 0.6 s
        # without, benchmarks/bench_proxy.py); a lone endpoint needs no choice.
        rules.append(f"goto {endpoint_chain(sp, endpoints[0])}")
        return
    targets = ", ".join(f"{i} : goto {endpoint_chain(sp, ep)}" for i, ep in enumerate(endpoints))
    rules.append(f"numgen random mod {len(endpoints)} vmap {{ {targets} }}")


def nft_rule_count(text: str) -> int:
    """Rules plus map/set elements: the units an nft transaction carries."""
    count, in_elements, in_chain = 0, False, False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            in_chain = True
        elif line == "elements = {":
            in_elements = True
        elif line == "}":
            if in_elements:
                in_elements = False
            else:
                in_chain = False
        elif in_elements or (in_chain and not line.startswith("type ")):
            count += 1
    return count
