"""The model -> ``iptables-restore`` input, shaped like kube-proxy's iptables mode.

Chain names, rule order and comments follow ``pkg/proxy/iptables/proxier.go``
(release-1.32), so what a learner sees with ``iptables-save`` inside a lab node
reads like a real node's:

- nat ``KUBE-SERVICES`` matches each cluster IP / external IP / load-balancer IP
  and port, and jumps to the service's ``KUBE-SVC-<hash>`` (or ``KUBE-EXT-<hash>``
  for external destinations); its last rule sends local destinations to
  ``KUBE-NODEPORTS``.
- ``KUBE-SVC-<hash>`` spreads *new connections* over ``KUBE-SEP-<hash>`` chains with
  ``-m statistic --mode random --probability 1/n, 1/(n-1), ... 1/2`` and a final
  catch-all rule; each ``KUBE-SEP`` DNATs to one endpoint.
- services without endpoints get a filter-table ``REJECT`` instead, so clients
  see "connection refused" at once rather than a timeout.

One difference: kube-proxy shares the node's tables with other software, so it
installs its jump rules from the built-in chains one by one. A lab node's
namespace holds nothing but kube-proxy's rules, so the full ruleset covers the
*whole* filter and nat tables, jump rules included, and a plain restore replaces
them atomically (stale chains disappear with it). Later syncs send only what
changed (:mod:`.iptsync`, ``--noflush``).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Iterable

from .model import NodeInfo, ServicePort

SERVICES = "KUBE-SERVICES"
EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
NODEPORTS = "KUBE-NODEPORTS"
POSTROUTING = "KUBE-POSTROUTING"
MARK_MASQ = "KUBE-MARK-MASQ"
FORWARD = "KUBE-FORWARD"
PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"

# (table, built-in chain, our chain, comment, extra match) in kube-proxy's
# iptablesJumpChains order. kube-proxy *prepends* each rule, so a built-in chain
# ends up holding them in reverse order; render_iptables reproduces that.
JUMP_CHAINS: tuple[tuple[str, str, str, str, str], ...] = (
    ("filter", "INPUT", EXTERNAL_SERVICES, "kubernetes externally-visible service portals", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", EXTERNAL_SERVICES, "kubernetes externally-visible service portals", "-m conntrack --ctstate NEW"),
    ("filter", "INPUT", NODEPORTS, "kubernetes health check service ports", ""),
    ("filter", "FORWARD", SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "OUTPUT", SERVICES, "kubernetes service portals", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", FORWARD, "kubernetes forwarding rules", ""),
    ("filter", "INPUT", PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("filter", "OUTPUT", PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("filter", "FORWARD", PROXY_FIREWALL, "kubernetes load balancer firewall", "-m conntrack --ctstate NEW"),
    ("nat", "OUTPUT", SERVICES, "kubernetes service portals", ""),
    ("nat", "PREROUTING", SERVICES, "kubernetes service portals", ""),
    ("nat", "POSTROUTING", POSTROUTING, "kubernetes postrouting rules", ""),
)
BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}


@lru_cache(maxsize=1 << 17)
def _hash16(text: str) -> str:
    """base32(sha256(text))[:16]: iptables chain names must stay <= 28 characters."""
    # Cached: every sync names every chain again. base32 encodes each 5 bytes
    # independently, so 10 bytes of digest give exactly the first 16 characters.
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + _hash16(sp.name_string + sp.proto)


def svl_chain(sp: ServicePort) -> str:
    return "KUBE-SVL-" + _hash16(sp.name_string + sp.proto)


def ext_chain(sp: ServicePort) -> str:
    return "KUBE-EXT-" + _hash16(sp.name_string + sp.proto)


def fw_chain(sp: ServicePort) -> str:
    return "KUBE-FW-" + _hash16(sp.name_string + sp.proto)


def sep_chain(sp: ServicePort, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash16(sp.name_string + sp.proto + endpoint)


def probability(n: int) -> str:
    """1/n with 10 decimals: 5 made the steps repeat from 319 endpoints (kubernetes#83599)."""
    return f"{1.0 / n:0.10f}"


def _q(text: str) -> str:
    return f'"{text}"'


class TablePart:
    """Chain declarations and rules of one table (or of one service's share of it), in
    the order they are written."""

    def __init__(self, name: str, chains: Iterable[str]):
        self.name = name
        self.chains: list[str] = list(chains)  # declared here: this part owns them
        self.rules: list[str] = []
        self._owned: dict[str, list[str]] | None = None
        self._shared: dict[str, list[str]] | None = None

    def chain(self, name: str) -> None:
        self.chains.append(name)

    def add(self, *parts: str) -> None:
        self.rules.append(" ".join(p for p in parts if p))

    def owned(self) -> dict[str, list[str]]:
        """Rules of the chains this part declares, by chain (an empty chain maps to [])."""
        if self._owned is None:
            self._group()
        assert self._owned is not None
        return self._owned

    def shared(self) -> dict[str, list[str]]:
        """Rules this part adds to chains declared elsewhere (KUBE-SERVICES, ...), by chain."""
        if self._shared is None:
            self._group()
        assert self._shared is not None
        return self._shared

    def _group(self) -> None:
        # Once per part: a service's part is cached and compared on every later sync.
        owned: dict[str, list[str]] = {c: [] for c in self.chains}
        shared: dict[str, list[str]] = {}
        for rule in self.rules:
            chain = rule.split(" ", 2)[1]  # "-A CHAIN ..."
            (owned[chain] if chain in owned else shared.setdefault(chain, [])).append(rule)
        self._owned, self._shared = owned, shared


def _jump_rules(table: TablePart) -> None:
    for builtin in BUILTIN_CHAINS[table.name]:
        jumps = [j for j in JUMP_CHAINS if j[0] == table.name and j[1] == builtin]
        for _, src, dst, comment, extra in reversed(jumps):
            table.add("-A", src, extra, "-m comment --comment", _q(comment), "-j", dst)


def render_iptables(model: list[ServicePort], node: NodeInfo) -> str:
    """Full ``iptables-restore`` input (nat, then filter) for ``node``."""
    return IptablesRenderer(node).render(model)


# The two tables in the order a restore commits them. nat first: a connection that
# arrives between the two commits is then already redirected (or still rejected by
# the old filter rules), never left un-NATed and pinned that way by conntrack.
TABLE_ORDER = ("nat", "filter")


class IptablesRuleset:
    """Both tables as parts: the node's fixed head rules, one part per service port
    (in model order), then the fixed tail rules. :meth:`text` is the full restore input;
    :mod:`.iptsync` compares two rulesets part by part for a partial sync."""

    def __init__(self, node: NodeInfo, head: dict[str, TablePart], tail: dict[str, TablePart],
                 services: dict[ServicePort, dict[str, TablePart]]) -> None:
        self.node = node
        self.head, self.tail, self.services = head, tail, services
        self._shared: dict[str, dict[str, list[str]]] = {}

    def parts(self, table: str) -> list[TablePart]:
        return [self.head[table], *(p[table] for p in self.services.values()), self.tail[table]]

    def shared(self, table: str) -> dict[str, list[str]]:
        """Each shared chain's rules in order (every chain the head declares, built-ins included)."""
        if table not in self._shared:
            chains: dict[str, list[str]] = {c: [] for c in (*BUILTIN_CHAINS[table], *self.head[table].chains)}
            for part in self.parts(table):
                for chain, rules in part.shared().items():
                    chains[chain].extend(rules)
                if part is self.head[table]:
                    for chain, rules in part.owned().items():
                        chains[chain].extend(rules)
            self._shared[table] = chains
        return self._shared[table]

    def rule_count(self) -> int:
        return sum(len(part.rules) for table in TABLE_ORDER for part in self.parts(table))

    def text(self) -> str:
        out: list[str] = []
        for table in TABLE_ORDER:
            parts = self.parts(table)
            out.append(f"*{table}")
            out += [f":{c} ACCEPT [0:0]" for c in BUILTIN_CHAINS[table]]
            out += [f":{c} - [0:0]" for part in parts for c in part.chains]
            for part in parts:
                out += part.rules
            out.append("COMMIT")
        return "\n".join(out) + "\n"


class IptablesRenderer:
    """Renders one node's tables, remembering each service's rules between calls.

    A service's rules depend only on its (frozen, hashable) model entry and the
    node, so a resync re-renders only the services that changed.
    """

    def __init__(self, node: NodeInfo) -> None:
        self.node = node
        self._head = {t: TablePart(t, chains) for t, chains in (
            ("filter", [SERVICES, EXTERNAL_SERVICES, FORWARD, NODEPORTS, PROXY_FIREWALL]),
            ("nat", [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ]))}
        _head_rules(self._head["filter"], self._head["nat"], node)
        self._tail = {t: TablePart(t, ()) for t in TABLE_ORDER}
        _tail_rules(self._tail["filter"], self._tail["nat"], node)
        self._fragments: dict[ServicePort, dict[str, TablePart]] = {}

    def ruleset(self, model: list[ServicePort]) -> IptablesRuleset:
        previous, self._fragments = self._fragments, {}
        for sp in model:
            fragment = previous.get(sp)
            if fragment is None:
                fragment = {t: TablePart(t, ()) for t in TABLE_ORDER}
                _render_service(sp, self.node, fragment["filter"], fragment["nat"])
            self._fragments[sp] = fragment  # only the current services stay cached
        return IptablesRuleset(self.node, self._head, self._tail, dict(self._fragments))

    def render(self, model: list[ServicePort]) -> str:
        return self.ruleset(model).text()


def _head_rules(filt: TablePart, nat: TablePart, node: NodeInfo) -> None:
    """Jumps from the built-in chains and the masquerading machinery: before any service."""
    _jump_rules(filt)
    _jump_rules(nat)
    mark = node.masquerade_mark
    nat.add("-A", POSTROUTING, "-m mark ! --mark", f"{mark}/{mark}", "-j RETURN")
    # Clear the mark so a packet that traverses the stack again is not masqueraded twice.
    nat.add("-A", POSTROUTING, "-j MARK --xor-mark", mark)
    nat.add("-A", POSTROUTING, "-m comment --comment", _q("kubernetes service traffic requiring SNAT"),
            "-j MASQUERADE --random-fully")
    nat.add("-A", MARK_MASQ, "-j MARK --or-mark", mark)


def _tail_rules(filt: TablePart, nat: TablePart, node: NodeInfo) -> None:
    """Rules that must come after every service's."""
    mark = node.masquerade_mark
    # Must stay the last rule of KUBE-SERVICES: every other match is more specific.
    # Loopback is excluded because localhost NodePorts would need route_localnet.
    nat.add("-A", SERVICES, "-m comment --comment",
            _q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
            "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8", "-j", NODEPORTS)
    # Without nf_conntrack_tcp_be_liberal, out-of-window packets are INVALID and
    # would otherwise reach a pod un-NATed and get answered with a RST (kubernetes#74839).
    filt.add("-A", FORWARD, "-m conntrack --ctstate INVALID -j DROP")
    filt.add("-A", FORWARD, "-m comment --comment", _q("kubernetes forwarding rules"),
             "-m mark --mark", f"{mark}/{mark}", "-j ACCEPT")
    filt.add("-A", FORWARD, "-m comment --comment", _q("kubernetes forwarding conntrack rule"),
             "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")


def _render_service(sp: ServicePort, node: NodeInfo, filt: TablePart, nat: TablePart) -> None:
    cat = sp.categorize()
    name = sp.name_string
    match = f"-m {sp.proto} -p {sp.proto}"
    svc, svl, ext, fw = svc_chain(sp), svl_chain(sp), ext_chain(sp), fw_chain(sp)
    uses_cluster_chain = bool(cat.cluster) and sp.uses_cluster_endpoints
    uses_local_chain = bool(cat.local) and sp.uses_local_endpoints

    route = sp.routing(cat)
    internal_chain = svl if route.internal_local else svc
    external_policy_chain = svl if route.external_local else svc
    has_internal, has_external, uses_ext, uses_fw = route.has_internal, route.has_external, route.uses_ext, route.uses_fw
    lb_chain = fw if uses_fw else ext

    if not cat.has_any:
        int_target = ext_target = "REJECT"
        int_comment = ext_comment = _q(f"{name} has no endpoints")
    else:
        int_target = ext_target = ""
        int_comment = ext_comment = _q(f"{name} has no local endpoints")
        if not has_internal:
            int_target = "DROP"
        if not has_external:
            ext_target = "DROP"

    # Capture the cluster IP.
    dest = f"-d {sp.cluster_ip} --dport {sp.port}"
    if has_internal:
        nat.add("-A", SERVICES, "-m comment --comment", _q(f"{name} cluster IP"), match, dest,
                "-j", internal_chain)
    else:
        filt.add("-A", SERVICES, "-m comment --comment", int_comment, match, dest,
                 "-j", int_target, _reject_with(int_target))

    for ip in sp.external_ips:
        if cat.has_any:
            nat.add("-A", SERVICES, "-m comment --comment", _q(f"{name} external IP"), match,
                    f"-d {ip} --dport {sp.port}", "-j", ext)
        if not has_external:
            filt.add("-A", EXTERNAL_SERVICES, "-m comment --comment", ext_comment, match,
                     f"-d {ip} --dport {sp.port}", "-j", ext_target, _reject_with(ext_target))

    for ip in sp.load_balancer_ips:
        if cat.has_any:
            nat.add("-A", SERVICES, "-m comment --comment", _q(f"{name} loadbalancer IP"), match,
                    f"-d {ip} --dport {sp.port}", "-j", lb_chain)
        if uses_fw:
            filt.add("-A", PROXY_FIREWALL, "-m comment --comment", _q(f"{name} traffic not accepted by {fw}"),
                     match, f"-d {ip} --dport {sp.port}", "-j DROP")
    if not has_external:
        for ip in sp.load_balancer_ips:
            filt.add("-A", EXTERNAL_SERVICES, "-m comment --comment", ext_comment, match,
                     f"-d {ip} --dport {sp.port}", "-j", ext_target, _reject_with(ext_target))

    if sp.node_port:
        if cat.has_any:
            nat.add("-A", NODEPORTS, "-m comment --comment", name, match, f"--dport {sp.node_port}", "-j", ext)
        if not has_external:
            filt.add("-A", EXTERNAL_SERVICES, "-m comment --comment", ext_comment,
                     "-m addrtype --dst-type LOCAL", match, f"--dport {sp.node_port}",
                     "-j", ext_target, _reject_with(ext_target))

    if sp.health_check_node_port:
        filt.add("-A", NODEPORTS, "-m comment --comment", _q(f"{name} health check node port"),
                 "-m tcp -p tcp", f"--dport {sp.health_check_node_port}", "-j ACCEPT")

    # Internal traffic: masquerade what did not come from a pod, so the reply
    # comes back through this node (a static route to the service range may
    # have sent it here from outside the cluster).
    if has_internal:
        capture = f"-m comment --comment {_q(name + ' cluster IP')} {match} {dest}"
        if node.masquerade_all:
            nat.add("-A", internal_chain, capture, "-j", MARK_MASQ)
        else:
            nat.add("-A", internal_chain, capture, f"! -s {node.cluster_cidr}", "-j", MARK_MASQ)

    if uses_ext:
        nat.chain(ext)
        if not sp.external_policy_local:
            # Endpoints may be on another node: masquerade so replies return here.
            nat.add("-A", ext, "-m comment --comment", _q(f"masquerade traffic for {name} external destinations"),
                    "-j", MARK_MASQ)
        else:
            # Pod -> external IP is treated as if it went out to the load
            # balancer and came back: subject to neither traffic policy.
            nat.add("-A", ext, "-m comment --comment", _q(f"pod traffic for {name} external destinations"),
                    f"-s {node.cluster_cidr}", "-j", svc)
            # The node itself picks the (local) external IP as source: masquerade it.
            nat.add("-A", ext, "-m comment --comment", _q(f"masquerade LOCAL traffic for {name} external destinations"),
                    "-m addrtype --src-type LOCAL", "-j", MARK_MASQ)
            nat.add("-A", ext, "-m comment --comment", _q(f"route LOCAL traffic for {name} external destinations"),
                    "-m addrtype --src-type LOCAL", "-j", svc)
        if has_external:
            nat.add("-A", ext, "-j", external_policy_chain)

    if uses_fw:
        nat.chain(fw)
        head = f"-A {fw} -m comment --comment {_q(name + ' loadbalancer IP')}"
        for source in sp.firewall_sources(node.ip):
            nat.add(head, f"-s {source}", "-j", ext)
        # Whatever falls off the end is not DNATed and KUBE-PROXY-FIREWALL drops it.
        nat.add("-A", fw, "-m comment --comment", _q(f"other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"))

    if uses_cluster_chain:
        nat.chain(svc)
        _endpoint_jumps(nat, sp, svc, cat.cluster)
    if uses_local_chain:
        nat.chain(svl)
        _endpoint_jumps(nat, sp, svl, cat.local)

    for ep in cat.reachable:
        sep = sep_chain(sp, str(ep))
        nat.chain(sep)
        # Hairpin: a pod reaching itself through the service is masqueraded, or
        # its reply would go straight back to itself with the wrong source.
        nat.add("-A", sep, "-m comment --comment", name, f"-s {ep.ip}", "-j", MARK_MASQ)
        affinity = f"-m recent --name {sep} --set" if sp.affinity_seconds else ""
        nat.add("-A", sep, "-m comment --comment", name, affinity, match, f"-j DNAT --to-destination {ep}")


def _endpoint_jumps(nat: TablePart, sp: ServicePort, chain: str, endpoints: tuple) -> None:
    """Affinity checks first (a client seen recently returns to its endpoint), then the random spread."""
    if sp.affinity_seconds:
        for ep in endpoints:
            sep = sep_chain(sp, str(ep))
            nat.add("-A", chain, "-m comment --comment", _q(f"{sp.name_string} -> {ep}"),
                    f"-m recent --name {sep} --rcheck --seconds {sp.affinity_seconds} --reap", "-j", sep)
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        # 1/n, 1/(n-1), ... 1/2 for the first n-1 rules gives each endpoint 1/n overall;
        # the last rule always matches.
        spread = f"-m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        nat.add("-A", chain, "-m comment --comment", _q(f"{sp.name_string} -> {ep}"), spread,
                "-j", sep_chain(sp, str(ep)))


def _reject_with(target: str) -> str:
    # kube-proxy writes a bare "-j REJECT"; iptables' default for it is
    # icmp-port-unreachable, which we spell out so iptables-save shows the same.
    return "--reject-with icmp-port-unreachable" if target == "REJECT" else ""


def rule_count(text: str) -> int:
    """How many rules a rendered ruleset holds (its ``-A`` lines)."""
    return sum(1 for line in text.splitlines() if line.startswith("-A "))
