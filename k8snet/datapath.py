"""Seeing a Service's data path on the lab: the node's rules for it, which rules a
connection went through, and the conntrack entries with their NAT translation.

Lab-only: the kernel views read the state inside the lab's node network namespaces (as
root, on the machine that runs the lab, via ``ip netns exec``). On any other cluster
the functions raise :class:`LabOnlyError` — the nodes of kind, minikube or a cloud
cluster are not namespaces on this machine. :func:`rendered_rules` needs no root: it
reads the Service, its EndpointSlices, the node and the lab's facts through the API
and runs the lab proxy's renderer.

- :func:`rendered_rules` — the rules either proxy mode makes for the Service (any user);
- :func:`trace` — a new connection's path through those rendered rules (any user): the
  rules it matches and where it ends (DNAT to an endpoint, REJECT, DROP, masquerade),
  with the random endpoint choice and session affinity given, so the answer is exact;
- :func:`dispatch_probabilities` — iptables' chained ``--probability`` rules as the kernel
  draws them (multiples of 2⁻³¹) and each endpoint's resulting share;
- :func:`service_rules` — the applied ``iptables-save`` / ``nft list`` text, reduced
  to the Service's chains (and, in nftables mode, its elements of the shared maps);
- :func:`matched_rules` — run an action (e.g. a connection from a pod) and see which
  of those rules it hit: iptables rule packet counters before/after, or an nftables
  trace (``meta nftrace`` set from a temporary table, read with ``nft monitor trace``);
- :func:`conntrack_entries` — ``conntrack -L`` in each node, parsed: original and reply
  tuples, so a DNAT (reply source != original destination) and SNAT show up.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from .lab import lifecycle
from .lab.config import LabConfig, ProxyMode, proxy_mode
from .lab.proxy.backend import backend_class, backend_for
from .lab.proxy.model import NodeInfo, ServicePort, build_model
from .lab.proxy.tracer import Packet, TraceResult

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from .cluster import Cluster

TRACE_TABLE = "k8snet-trace"
LAB_ONLY = ("this view is lab-only: it reads the rules and conntrack table inside the lab's node "
            "network namespaces; {what} is not a k8snet lab (on other clusters, look on a node: "
            "iptables-save, nft list ruleset, conntrack -L)")
CONNTRACK_COLUMNS = ["node", "protocol", "state", "timeout", "orig_src", "orig_sport", "orig_dst", "orig_dport",
                     "reply_src", "reply_sport", "reply_dst", "reply_dport", "dnat", "snat", "flags"]


class LabOnlyError(RuntimeError):
    """The data-path view was asked for a cluster that is not a k8snet lab."""


@dataclass(frozen=True)
class ServiceInfo:
    """What the filters need to know about one Service."""

    namespace: str
    name: str
    ips: tuple[str, ...]  # cluster IP, external IPs, load-balancer IPs
    node_ports: tuple[int, ...]


# -- finding the lab and the Service --------------------------------------------

def lab_config(target: Any) -> LabConfig:
    """The lab behind ``target``: a lab name, a ``LabStatus`` or a :class:`k8snet.cluster.Cluster`."""
    lab = getattr(target, "lab", target)  # a Cluster has .lab (None off the lab)
    name = getattr(lab, "name", lab)
    if not isinstance(name, str) or lifecycle.status(name).phase != "Ready":
        raise LabOnlyError(LAB_ONLY.format(what=repr(target)))
    return lifecycle.load_config(name)


def _service_objects(api_client: ApiClient, service: str, namespace: str
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Service and its EndpointSlices as raw JSON: field names as the API spells
    them (what the proxy's model reads), whatever the client version."""
    from kubernetes import client

    # _preload_content=False returns the raw urllib3 response, not the annotated model
    svc_resp: Any = client.CoreV1Api(api_client).read_namespaced_service(service, namespace, _preload_content=False)
    svc = json.loads(svc_resp.data)
    slices_resp: Any = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}", _preload_content=False)
    return svc, json.loads(slices_resp.data).get("items") or []


def _lab_service_objects(cfg: LabConfig, service: str, namespace: str
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`_service_objects` through the lab's own kubeconfig (root's view)."""
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=str(cfg.kubeconfig_path))
    try:
        return _service_objects(api_client, service, namespace)
    finally:
        api_client.close()


def service_info(target: Any, service: str, namespace: str = "default") -> ServiceInfo:
    """The Service's addresses and node ports, read from the lab's API."""
    svc, _ = _lab_service_objects(lab_config(target), service, namespace)
    return _info_of(svc)


def _info_of(svc: dict[str, Any]) -> ServiceInfo:
    meta, spec = svc.get("metadata", {}), svc.get("spec", {})
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ips = [spec.get("clusterIP"), *(spec.get("externalIPs") or []), *(i.get("ip") for i in ingress)]
    return ServiceInfo(meta.get("namespace", "default"), meta["name"], tuple(ip for ip in ips if ip and ip != "None"),
                       tuple(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")))


def _node_index(cfg: LabConfig, node: str | int) -> int:
    if isinstance(node, int):
        return node
    return cfg.node_names.index(node)


def _in_node(cfg: LabConfig, index: int, *argv: str, input: str | None = None) -> str:
    done = subprocess.run(["ip", "netns", "exec", cfg.node_netns(index), *argv], input=input,
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {cfg.node_name(index)} failed: {done.stderr.strip()}")
    return done.stdout


# -- (a) the rules ----------------------------------------------------------------

_IPT_SERVICE_CHAIN = re.compile(r"\bKUBE-(?:SVC|SVL|EXT|FW|SEP)-[A-Z0-9]+\b")


def _names_service(line: str, svc: ServiceInfo) -> bool:
    """Does a rule's comment name the Service (``ns/name`` or ``ns/name:port``)?"""
    return re.search(rf'(?:^|[\s"]){re.escape(svc.namespace)}/{re.escape(svc.name)}(?::[^\s"]*)?(?=[\s"]|$)',
                     line) is not None


def filter_iptables(text: str, svc: ServiceInfo) -> str:
    """``iptables-save`` output (counters or not) reduced to the Service's rules and chains."""
    chains: set[str] = set()
    for line in text.splitlines():
        if line.lstrip("[0123456789:] ").startswith("-A") and _names_service(line, svc):
            chains |= set(_IPT_SERVICE_CHAIN.findall(line))
    out: list[str] = []
    for line in text.splitlines():
        rule = line.lstrip("[0123456789:] ") if line.startswith("[") else line
        if line.startswith("*") or line == "COMMIT":
            out.append(line)
        elif line.startswith(":") and line[1:].split()[0] in chains:
            out.append(line)
        elif rule.startswith("-A") and (rule.split()[1] in chains or _names_service(rule, svc)):
            out.append(line)
    # Drop tables that kept nothing of the Service.
    text_out, table = [], []
    for line in out:
        table.append(line)
        if line == "COMMIT":
            if len(table) > 2:
                text_out += table
            table = []
    return "\n".join(text_out) + ("\n" if text_out else "")


def _nft_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """Top-level blocks of ``nft list table`` output: (kind, name, lines)."""
    blocks: list[tuple[str, str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        m = re.match(r"^\t(chain|set|map) (\S+) \{$", line)
        if m:
            current = [line]
            blocks.append((m.group(1), m.group(2), current))
        elif current is not None:
            current.append(line)
            if line == "\t}":
                current = None
    return blocks


def filter_nftables(text: str, svc: ServiceInfo) -> str:
    """``nft list table ip kube-proxy`` reduced to the Service's chains and sets, and its
    elements of the shared verdict maps (service-ips, no-endpoint-services, ...)."""
    marker = f"-{svc.namespace}/{svc.name}/"
    out = ["table ip kube-proxy {"]
    for kind, name, lines in _nft_blocks(text):
        if marker in name:
            out += lines
            continue
        body = "\n".join(lines)
        m = re.search(r"elements = \{(.*?)\}", body, re.S)
        if kind == "chain" or not m:
            continue
        # An element belongs to the Service when it jumps to one of its chains or
        # names one of its addresses (ip . proto . port) or node ports (proto . port).
        mine = [e.strip() for e in m.group(1).split(",")
                if marker in e or _element_key(e) in svc.ips or _element_key(e) in map(str, svc.node_ports)]
        if mine:
            header = [ln for ln in lines[1:] if ln.startswith("\t\t") and not ln.startswith("\t\t\t")
                      and "elements =" not in ln and ln.strip() != "}"]  # a multi-line elements block's end
            out += [lines[0], *header, "\t\telements = { " + ",\n\t\t\t     ".join(mine) + " }", "\t}"]
    out.append("}")
    return "\n".join(out) + "\n"


def _element_key(element: str) -> str:
    """An element's address ("10.96.0.10 . udp . 53 : ...") or node port ("tcp . 30080 : ...")."""
    parts = element.split(":")[0].split(" . ")
    return parts[0].strip() if len(parts) == 3 else parts[-1].strip()


def service_rules(target: Any, service: str, namespace: str = "default", node: str | int = 0) -> str:
    """The rules ``node``'s kube-proxy applied for the Service, as the kernel lists them."""
    cfg = lab_config(target)
    svc = service_info(target, service, namespace)
    index = _node_index(cfg, node)
    return SERVICE_FILTERS[cfg.proxy_mode](backend_class(cfg.proxy_mode).read_live(cfg.node_netns(index)), svc)


#: Each mode's reduction of a whole ruleset to one Service's share of it.
SERVICE_FILTERS: dict[ProxyMode, Callable[[str, ServiceInfo], str]] = {
    "iptables": filter_iptables, "nftables": filter_nftables}


def render_node_rules(service: dict[str, Any], endpoint_slices: list[dict[str, Any]], node: NodeInfo,
                      mode: str) -> str:
    """The whole ruleset kube-proxy in ``mode`` programs on ``node`` when this Service
    is the only one: the shared skeleton (hooks, masquerading) and the Service's rules."""
    return backend_for(mode, node).render(build_model([service], endpoint_slices, node.name))


def render_service(service: dict[str, Any], endpoint_slices: list[dict[str, Any]], node: NodeInfo,
                   mode: str) -> str:
    """What kube-proxy in ``mode`` ("iptables" or "nftables") programs on ``node`` for
    one Service (its API object and EndpointSlices), reduced to that Service's rules as
    :func:`service_rules` shows them. Pure: the lab's own renderers, no kernel."""
    text = render_node_rules(service, endpoint_slices, node, mode)
    return SERVICE_FILTERS[proxy_mode(mode)](text, _info_of(service))


def _node_info(cluster: Cluster, node: str | int, pod_cidr: str, service_cidr: str) -> NodeInfo:
    """What the renderer needs about a node, from its Node object (``node``: a name, or
    an index into the nodes as the API lists them, sorted by name)."""
    nodes = cluster.list("Node", None)
    names = [n["metadata"]["name"] for n in nodes]
    if isinstance(node, int):
        if not 0 <= node < len(nodes):
            raise ValueError(f"node index {node} out of range: the cluster has {len(nodes)} nodes")
        obj = nodes[node]
    elif node in names:
        obj = nodes[names.index(node)]
    else:
        raise ValueError(f"no node {node!r}; the nodes are {', '.join(names)}")
    addresses = (obj.get("status") or {}).get("addresses") or []
    internal = [a["address"] for a in addresses if a.get("type") == "InternalIP"]
    if not internal:
        raise ValueError(f"node {obj['metadata']['name']} reports no InternalIP")
    return NodeInfo(name=obj["metadata"]["name"], ip=internal[0], cluster_cidr=pod_cidr, service_cidr=service_cidr)


def rendered_rules(cluster: Cluster, service: str, namespace: str = "default", mode: str | None = None,
                   node: str | int = 0) -> str:
    """The rules for the Service as ``mode``'s renderer makes them from the live Service
    and EndpointSlices (default: the lab's mode) for ``node``. For the other mode this
    is what the lab would program if it ran in that mode; the text is the renderer's
    input format (``iptables-restore`` / ``nft -f``), close to what the kernel lists.

    Needs no root: everything comes through ``cluster``'s API client — the objects, the
    Node's InternalIP, and the pod and Service networks from the lab's published facts
    (:meth:`k8snet.cluster.Cluster.lab_facts`). Raises :class:`LabOnlyError` on a
    cluster that is not a k8snet lab (its kube-proxy is not this renderer).
    """
    facts = cluster.lab_facts()
    if facts is None:
        raise LabOnlyError(LAB_ONLY.format(what=repr(cluster)))
    svc, slices = _service_objects(cluster.api_client, service, namespace)
    return render_service(svc, slices, _node_info(cluster, node, facts.pod_cidr, facts.service_cidr),
                          mode or facts.proxy_mode)


# -- (a') a packet's path through the rendered rules, without root -------------------

#: Where :func:`trace` sends the packet: the Service's own addresses by role, or an address.
DESTINATIONS = ("cluster-ip", "node-port", "load-balancer", "external-ip")


def _destination(sp: ServicePort, dest: str, node: NodeInfo) -> tuple[str, int]:
    """(address, port) of the Service port ``sp`` as a client reaches it by ``dest``."""
    if dest == "cluster-ip":
        return sp.cluster_ip, sp.port
    if dest == "node-port":
        if not sp.node_port:
            raise ValueError(f"{sp.name_string} has no node port (type {sp.type})")
        return node.ip, sp.node_port
    addresses = {"load-balancer": sp.load_balancer_ips, "external-ip": sp.external_ips}.get(dest)
    if addresses is not None:
        if not addresses:
            raise ValueError(f"{sp.name_string} has no {dest} address")
        return addresses[0], sp.port
    try:
        ipaddress.IPv4Address(dest)
    except ValueError:
        raise ValueError(f"dest must be one of {', '.join(DESTINATIONS)} or an IPv4 address, not {dest!r}") from None
    return dest, sp.port


def trace_service(service: dict[str, Any], endpoint_slices: list[dict[str, Any]], node: NodeInfo, mode: str,
                  source: str, *, dest: str = "cluster-ip", port: int | str | None = None,
                  from_node: bool = False, draw: float = 0.0, affinity: str | None = None) -> TraceResult:
    """The path of a new connection from ``source`` to the Service through the rules
    kube-proxy in ``mode`` renders on ``node`` (:func:`render_node_rules`): the rules it
    matches and the outcome (DNAT to an endpoint, REJECT, DROP; masqueraded or not).

    ``dest``: one of :data:`DESTINATIONS` or an address; ``port``: the Service port's name
    or number (default: its first port); ``from_node``: the node itself opens the
    connection (else it arrives from a pod or from outside); ``draw`` in [0, 1) decides
    the random endpoint choice (endpoint ``floor(draw * n)``); ``affinity``: the endpoint
    ``ip:port`` session affinity remembers this client for. Pure, like
    :func:`render_service`.
    """
    model = build_model([service], endpoint_slices, node.name)
    if not model:
        raise ValueError(f"service {service['metadata'].get('name')!r} is not proxied (headless or ExternalName)")
    ports = [sp for sp in model if port is None or port in (sp.port_name, sp.port)]
    if not ports:
        raise ValueError(f"service has no port {port!r}; its ports are "
                         + ", ".join(f"{sp.port_name or '-'}={sp.port}" for sp in model))
    sp = ports[0]
    address, dport = _destination(sp, dest, node)
    backend = backend_for(mode, node)
    packet = Packet(src=source, dst=address, dport=dport, protocol=sp.proto, from_node=from_node, draw=draw,
                    affinity=affinity)
    return backend.trace(backend.render(model), packet, local_addresses=[node.ip])


def trace(cluster: Cluster, service: str, source: str, namespace: str = "default", *, dest: str = "cluster-ip",
          port: int | str | None = None, mode: str | None = None, node: str | int = 0, from_node: bool = False,
          draw: float = 0.0, affinity: str | None = None) -> TraceResult:
    """:func:`trace_service` for the live Service and EndpointSlices, on ``node``
    (default the first), in ``mode`` (default the lab's). Needs no root, like
    :func:`rendered_rules`; :func:`trace_frame` shows the path as a DataFrame."""
    facts = cluster.lab_facts()
    if facts is None:
        raise LabOnlyError(LAB_ONLY.format(what=repr(cluster)))
    svc, slices = _service_objects(cluster.api_client, service, namespace)
    info = _node_info(cluster, node, facts.pod_cidr, facts.service_cidr)
    return trace_service(svc, slices, info, mode or facts.proxy_mode, source, dest=dest, port=port,
                         from_node=from_node, draw=draw, affinity=affinity)


def trace_frame(result: TraceResult) -> pd.DataFrame:
    """A trace's matched rules, one row each: hook, table, chain, rule, verdict."""
    return pd.DataFrame([vars(step) for step in result.steps], columns=["hook", "table", "chain", "rule", "verdict"])


_DISPATCH = re.compile(r'^-A (KUBE-SVC-\S+) .*-> (\S+?)"?(?: .*--probability ([0-9.]+))? -j KUBE-SEP-')

#: xt_statistic draws ``get_random_u32() & 0x7FFFFFFF`` (31 bits) and matches when the
#: draw is below ``probability``, which iptables stores as ``lround(p * 0x80000000)``
#: (libxt_statistic.c); iptables-save prints that integer / 0x80000000 with 11 decimals.
STATISTIC_SCALE = 1 << 31


def kernel_probability(p: float) -> float:
    """``--probability p`` as the kernel applies it: p rounded (half away from zero, as
    C's lround) to a multiple of 2⁻³¹. 1/3 becomes 715827883 / 2³¹ = 0.33333333349 (11 decimals)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability is between 0 and 1, not {p}")
    return math.floor(p * STATISTIC_SCALE + 0.5) / STATISTIC_SCALE


def dispatch_probabilities(iptables_text: str) -> pd.DataFrame:
    """The endpoint rules of each ``KUBE-SVC-`` chain, in order, with the chance each is
    taken: rule i of n matches with probability 1/(n-i) *if reached* (the last, with no
    statistic match, always), and is reached only when every earlier rule missed, so
    each endpoint gets 1/n in exact arithmetic.

    ``rule_probability`` is the number the rule text carries (kube-proxy writes 10
    decimals, iptables-save prints the kernel's value with 11); ``kernel_probability``
    is what the kernel compares with (:func:`kernel_probability`); ``reached`` and
    ``chosen`` follow from the kernel's values, so they show the 2⁻³¹ rounding.

    Columns: chain, endpoint, rule_probability, kernel_probability, reached, chosen.
    """
    rows: list[dict[str, Any]] = []
    reached: dict[str, float] = {}
    for line in iptables_text.splitlines():
        m = _DISPATCH.match(line.lstrip("[0123456789:] "))
        if not m:
            continue
        chain, endpoint, prob = m.group(1), m.group(2), float(m.group(3) or 1.0)
        kernel = kernel_probability(prob)
        before = reached.get(chain, 1.0)
        rows.append({"chain": chain, "endpoint": endpoint, "rule_probability": prob, "kernel_probability": kernel,
                     "reached": before, "chosen": before * kernel})
        reached[chain] = before * (1.0 - kernel)
    return pd.DataFrame(rows, columns=["chain", "endpoint", "rule_probability", "kernel_probability", "reached",
                                       "chosen"])


# -- (b) which rules a connection matched -------------------------------------------

def iptables_counters(text: str) -> dict[tuple[str, str], int]:
    """``iptables-save -c`` -> {(table, rule): packets}."""
    counts: dict[tuple[str, str], int] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        m = re.match(r"^\[(\d+):\d+\] (-A .*)$", line)
        if m:
            counts[(table, m.group(2))] = int(m.group(1))
    return counts


_TRACE = re.compile(r"^trace id (\S+) ip (\S+) (\S+) rule (.*?)(?: \(verdict (.*)\))?$")


def parse_trace(text: str, table: str = "kube-proxy") -> list[dict[str, str]]:
    """``nft monitor trace`` lines -> the rules of ``table`` that packets matched."""
    rows = []
    for line in text.splitlines():
        m = _TRACE.match(line.strip())
        if m and m.group(2) == table:
            rows.append({"trace": m.group(1), "chain": m.group(3), "rule": m.group(4),
                         "verdict": m.group(5) or ""})
    return rows


def _trace_table(svc: ServiceInfo) -> str:
    """A table that flags packets to the Service for tracing, before conntrack and NAT see them."""
    matches = [f"ip daddr {{ {', '.join(svc.ips)} }} meta nftrace set 1"] if svc.ips else []
    if svc.node_ports:
        matches.append(f"th dport {{ {', '.join(map(str, svc.node_ports))} }} meta nftrace set 1")
    chains = "\n".join(f"  chain {hook} {{ type filter hook {hook} priority -350; policy accept;\n"
                       + "\n".join(f"    {m}" for m in matches) + "\n  }" for hook in ("prerouting", "output"))
    return f"table ip {TRACE_TABLE} {{\n{chains}\n}}\n"


def matched_rules(target: Any, service: str, action: Callable[[], object], namespace: str = "default"
                  ) -> pd.DataFrame:
    """Runs ``action`` and returns the Service's rules it went through, on every node.

    Columns: node, table, chain, rule, packets (iptables: counter increase;
    nftables: how many traced packets matched the rule), verdict (nftables).
    Only the Service's own rules count, so other traffic in the lab does not show up.
    """
    cfg = lab_config(target)
    svc = service_info(target, service, namespace)
    nodes = range(cfg.nodes)
    if cfg.proxy_mode == "nftables":
        return _traced(cfg, svc, nodes, action)
    read = backend_class(cfg.proxy_mode).read_live
    before = {i: iptables_counters(filter_iptables(read(cfg.node_netns(i), counters=True), svc)) for i in nodes}
    action()
    rows = []
    for i in nodes:
        after = iptables_counters(filter_iptables(read(cfg.node_netns(i), counters=True), svc))
        for (table, rule), packets in after.items():
            delta = packets - before[i].get((table, rule), 0)
            if delta > 0:
                rows.append({"node": cfg.node_name(i), "table": table, "chain": rule.split()[1], "rule": rule,
                             "packets": delta, "verdict": ""})
    return pd.DataFrame(rows, columns=["node", "table", "chain", "rule", "packets", "verdict"])


def _traced(cfg: LabConfig, svc: ServiceInfo, nodes: range, action: Callable[[], object]) -> pd.DataFrame:
    monitors: dict[int, subprocess.Popen[str]] = {}
    try:
        for i in nodes:
            _in_node(cfg, i, "nft", "-f", "-", input=_trace_table(svc))
            monitors[i] = subprocess.Popen(["ip", "netns", "exec", cfg.node_netns(i), "nft", "monitor", "trace"],
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # nft monitor gives no "subscribed" signal; give it a moment to join the netlink group.
        time.sleep(0.3)
        action()
        time.sleep(0.3)  # let the last trace events arrive
    finally:
        for proc in monitors.values():
            proc.terminate()
        for i in nodes:
            subprocess.run(["ip", "netns", "exec", cfg.node_netns(i), "nft", "delete", "table", "ip", TRACE_TABLE],
                           capture_output=True)
    rows = []
    for i, proc in monitors.items():
        out, _ = proc.communicate(timeout=10)
        for r in parse_trace(out):
            rows.append({"node": cfg.node_name(i), "table": "kube-proxy", **r})
    df = pd.DataFrame(rows, columns=["node", "table", "trace", "chain", "rule", "verdict"])
    grouped = df.groupby(["node", "table", "chain", "rule", "verdict"], sort=False).size()
    return grouped.rename("packets").reset_index()[["node", "table", "chain", "rule", "packets", "verdict"]]


# -- (c) conntrack -------------------------------------------------------------------

def parse_conntrack(text: str) -> list[dict[str, Any]]:
    """``conntrack -L`` lines -> rows with the original and the reply tuple."""
    rows = []
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 4 or "=" not in line:
            continue
        row: dict[str, Any] = {"protocol": tokens[0], "timeout": int(tokens[2]),
                               "state": tokens[3] if "=" not in tokens[3] else ""}
        seen: dict[str, int] = {}
        flags = []
        for tok in tokens[3:]:
            if tok.startswith("["):
                flags.append(tok.strip("[]"))
                continue
            key, _, value = tok.partition("=")
            if key in ("src", "dst", "sport", "dport"):
                side = "orig" if seen.get(key, 0) == 0 else "reply"
                seen[key] = seen.get(key, 0) + 1
                row[f"{side}_{key}"] = int(value) if key.endswith("port") else value
        if "reply_src" not in row:
            continue
        # The reply comes from whoever really answered: not the address dialled -> DNAT;
        # it goes to someone other than the sender -> SNAT (masquerade).
        row["dnat"] = row["reply_src"] != row["orig_dst"]
        row["snat"] = row["reply_dst"] != row["orig_src"]
        row["flags"] = ",".join(flags)
        rows.append(row)
    return rows


def conntrack_entries(target: Any, service: str | None = None, namespace: str = "default",
                      node: str | int | None = None) -> pd.DataFrame:
    """The conntrack table of one node (or every node), optionally only the flows to ``service``.

    Columns: node, protocol, state, timeout, orig_src/sport/dst/dport,
    reply_src/sport/dst/dport, dnat, snat, flags.
    """
    cfg = lab_config(target)
    svc = service_info(target, service, namespace) if service else None
    indices = range(cfg.nodes) if node is None else [_node_index(cfg, node)]
    rows = []
    for i in indices:
        for row in parse_conntrack(_in_node(cfg, i, "conntrack", "-L")):
            if svc and row.get("orig_dst") not in svc.ips and row.get("orig_dport") not in svc.node_ports:
                continue
            rows.append({"node": cfg.node_name(i), **row})
    return pd.DataFrame(rows, columns=CONNTRACK_COLUMNS)
