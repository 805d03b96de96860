"""The packet tracer on both backends' rendered rules: the same packet must end the same
way in iptables and nftables mode, and the way kube-proxy sends it (a golden outcome
per case), for the fixtures the golden-text tests render."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8snet.lab.config import PROXY_MODES
from k8snet.lab.proxy.backend import backend_class, backend_for
from k8snet.lab.proxy.iptables import rule_count
from k8snet.lab.proxy.iptables_trace import parse_iptables
from k8snet.lab.proxy.model import NodeInfo, build_model
from k8snet.lab.proxy.nft_trace import parse_nft
from k8snet.lab.proxy.tracer import HOOKS, Packet, TracerError, TraceResult
from tests.unit._proxy_fixtures import CASES, NODE

GOLDEN = Path(__file__).parent / "golden" / "proxy"
HOST = "172.31.0.1"  # the machine's address on the node network: an external client
POD = "10.244.0.9"  # a pod on NODE that is no endpoint
# A node with no endpoint of any fixture (they sit on NODE and OTHER_NODE).
EMPTY_NODE = NodeInfo(name="kind-worker2", ip="172.31.0.4", cluster_cidr="10.244.0.0/16")

modes = pytest.mark.parametrize("mode", PROXY_MODES)


def send(mode: str, case: str, src: str, dst: str, dport: int, *, node: NodeInfo = NODE,
         also_local: tuple[str, ...] = (), **packet) -> TraceResult:
    """``also_local``: addresses the node holds besides its own (an announced VIP)."""
    services, slices = CASES[case]()
    backend = backend_for(mode, node)
    text = backend.render(build_model(services, slices, node.name))
    return backend.trace(text, Packet(src, dst, dport, **packet), local_addresses=[node.ip, *also_local])


def draws(n: int) -> list[tuple[float, int]]:
    """Draws across each endpoint's share of [0, 1): its start, middle and end."""
    return [(d, i) for i in range(n) for d in (i / n, (i + 0.5) / n, (i + 1) / n - 1e-9)]


@modes
@pytest.mark.parametrize("draw,index", draws(3))
def test_cluster_ip_draw_picks_each_endpoint(mode, draw, index):
    out = send(mode, "clusterip_three_endpoints", POD, "10.96.0.20", 80, draw=draw)
    # kube-proxy orders endpoints by their "ip:port" string
    assert out.dnat == ["10.244.0.5:80", "10.244.0.6:80", "10.244.1.7:80"][index]
    assert out.verdict == "ACCEPT" and not out.masquerade  # pod -> service: no SNAT
    assert out.hooks == ("prerouting", "forward", "postrouting")


@modes
def test_cluster_ip_from_outside_the_pod_network_is_masqueraded(mode):
    assert send(mode, "clusterip_three_endpoints", HOST, "10.96.0.20", 80).masquerade
    # the node itself connecting: the output path, source is the node's address
    out = send(mode, "clusterip_three_endpoints", NODE.ip, "10.96.0.20", 80, from_node=True, draw=0.9)
    assert (out.dnat, out.masquerade, out.hooks) == ("10.244.1.7:80", True, ("output", "postrouting"))


def test_cluster_ip_path_names_the_chains():
    ipt = send("iptables", "clusterip_three_endpoints", POD, "10.96.0.20", 80, draw=0.5)
    # the SEP chain is 10.244.0.6's (sep_chain of the golden file's names)
    assert ipt.chains == ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-SV7AMNAGZFKZEMQ4", "KUBE-SEP-JF7I3S6U2HQTQR2G",
                          "FORWARD", "POSTROUTING", "KUBE-POSTROUTING"]
    assert "-A KUBE-SEP-JF7I3S6U2HQTQR2G " in (GOLDEN / "clusterip_three_endpoints.iptables").read_text()
    assert ipt.steps[-1].chain == "KUBE-POSTROUTING" and ipt.steps[-1].verdict == "return"
    nft = send("nftables", "clusterip_three_endpoints", POD, "10.96.0.20", 80, draw=0.5)
    assert [s.chain for s in nft.steps if s.hook == "prerouting"][1:3] == [
        "nat-prerouting", "services"]
    assert any(s.verdict == "dnat 10.244.0.6:80" and s.chain.startswith("endpoint-") for s in nft.steps)


@modes
def test_cluster_ip_wrong_port(mode):
    out = send(mode, "clusterip_three_endpoints", POD, "10.96.0.20", 81)
    # nftables rejects traffic to a cluster IP's unused ports; iptables lets it be routed on
    assert (out.verdict, out.dnat) == (("REJECT", None) if mode == "nftables" else ("ACCEPT", None))


@modes
def test_no_endpoints_rejects(mode):
    out = send(mode, "no_endpoints", POD, "10.96.0.30", 8080)
    assert (out.verdict, out.dnat, out.hooks) == ("REJECT", None, ("prerouting", "forward"))
    assert "reject" in out.steps[-1].verdict


@modes
@pytest.mark.parametrize("draw,endpoint", [(0.2, "10.244.0.5:80"), (0.7, "10.244.1.5:80")])
def test_node_port(mode, draw, endpoint):
    out = send(mode, "nodeport", HOST, NODE.ip, 30080, draw=draw)
    assert (out.verdict, out.dnat, out.masquerade) == ("ACCEPT", endpoint, True)
    # a node port on an address that is not the node's is no node port
    assert send(mode, "nodeport", HOST, "172.31.0.99", 30080).dnat is None


@modes
@pytest.mark.parametrize("source,allowed", [("203.0.113.7", True), ("172.31.0.1", True), ("198.51.100.7", False)])
def test_load_balancer_source_ranges(mode, source, allowed):
    out = send(mode, "loadbalancer_source_ranges", source, "172.31.0.210", 80, draw=0.7)
    if allowed:
        assert (out.verdict, out.dnat, out.masquerade) == ("ACCEPT", "10.244.1.5:80", True)
    else:
        # kube-proxy drops it (iptables: KUBE-PROXY-FIREWALL in filter; nftables: the firewall chain)
        assert (out.verdict, out.dnat) == ("DROP", None)
    # the ranges guard the load-balancer IP only: the node port takes anyone
    assert send(mode, "loadbalancer_source_ranges", "198.51.100.7", NODE.ip, 31090).dnat == "10.244.0.5:80"


@modes
@pytest.mark.parametrize("source,allowed", [("172.31.0.5", True), ("172.31.0.100", False)])
def test_load_balancer_source_ranges_are_ranges(mode, source, allowed):
    # 172.31.0.0/28 holds the first, not the second
    assert send(mode, "loadbalancer_source_ranges", source, "172.31.0.210", 80).verdict == (
        "ACCEPT" if allowed else "DROP")


@modes
def test_load_balancer_vip_looping_back_from_the_node_is_allowed(mode):
    # The node holds the VIP (the lab's announcer puts it on eth0), so a process on the
    # node connecting to it gets the VIP as its source. A source range holds the node's
    # address, so kube-proxy allows the VIP as a source too (allowFromNode in both proxiers).
    out = send(mode, "loadbalancer_source_ranges", "172.31.0.210", "172.31.0.210", 80, from_node=True,
               also_local=("172.31.0.210",), draw=0.7)
    assert (out.verdict, out.dnat, out.masquerade) == ("ACCEPT", "10.244.1.5:80", True)
    # ... but only for a node in the ranges
    far = NodeInfo(name="kind-control-plane", ip="172.31.0.50", cluster_cidr="10.244.0.0/16")
    out = send(mode, "loadbalancer_source_ranges", "172.31.0.210", "172.31.0.210", 80, from_node=True,
               node=far, also_local=("172.31.0.210",))
    assert (out.verdict, out.dnat) == ("DROP", None)


@modes
@pytest.mark.parametrize("source", ["198.51.100.7", POD])
def test_load_balancer_source_ranges_without_endpoints(mode, source):
    # Upstream's two proxiers differ here: nftables keeps the firewall chain for a
    # Service with no endpoints (usesFWChain does not look at hasEndpoints), so a
    # source outside the ranges is dropped before the no-endpoints reject; iptables
    # builds KUBE-FW/KUBE-PROXY-FIREWALL only with endpoints, so everyone is rejected.
    out = send(mode, "loadbalancer_source_ranges_no_endpoints", source, "172.31.0.211", 80)
    assert (out.verdict, out.dnat) == ("DROP" if mode == "nftables" else "REJECT", None)
    # a source in the ranges learns that the Service has no endpoints, in both modes
    assert send(mode, "loadbalancer_source_ranges_no_endpoints", "203.0.113.7", "172.31.0.211", 80).verdict == "REJECT"


@modes
@pytest.mark.parametrize("draw", [0.1, 0.6, 0.99])
def test_external_traffic_policy_local_uses_only_the_local_endpoint(mode, draw):
    out = send(mode, "loadbalancer", HOST, "172.31.0.201", 80, draw=draw)
    # ... and keeps the client's address: no masquerade
    assert (out.verdict, out.dnat, out.masquerade) == ("ACCEPT", "10.244.0.5:80", False)
    assert send(mode, "loadbalancer", HOST, NODE.ip, 31081, draw=draw).dnat == "10.244.0.5:80"


@modes
def test_external_traffic_policy_local_without_local_endpoints_drops(mode):
    out = send(mode, "loadbalancer", HOST, "172.31.0.201", 80, node=EMPTY_NODE)
    assert (out.verdict, out.dnat) == ("DROP", None)
    assert send(mode, "loadbalancer", HOST, EMPTY_NODE.ip, 31081, node=EMPTY_NODE).verdict == "DROP"
    # a pod there still reaches it: pod traffic to an external IP short-circuits to the cluster chain
    pod = send(mode, "loadbalancer", "10.244.2.9", "172.31.0.201", 80, node=EMPTY_NODE, draw=0.7)
    assert (pod.verdict, pod.dnat) == ("ACCEPT", "10.244.1.5:80")
    # the Cluster-policy Service on the same node is unaffected (and masqueraded)
    assert send(mode, "loadbalancer", HOST, "172.31.0.200", 80, node=EMPTY_NODE).masquerade


@modes
@pytest.mark.parametrize("draw", [0.0, 0.5, 0.99])
def test_internal_traffic_policy_local(mode, draw):
    assert send(mode, "internal_traffic_policy_local", POD, "10.96.0.100", 80, draw=draw).dnat == "10.244.0.5:80"
    far = send(mode, "internal_traffic_policy_local", POD, "10.96.0.101", 80, draw=draw)
    assert (far.verdict, far.dnat) == ("DROP", None)


@modes
def test_internal_traffic_policy_local_masquerades_sources_outside_the_pod_network(mode):
    # kube-proxy writes the "masquerade off-cluster sources" rule into the chain cluster-IP
    # traffic goes to: with internalTrafficPolicy Local that is the local chain.
    pod = send(mode, "internal_traffic_policy_local", POD, "10.96.0.100", 80)
    assert (pod.dnat, pod.masquerade) == ("10.244.0.5:80", False)
    host = send(mode, "internal_traffic_policy_local", HOST, "10.96.0.100", 80)
    assert (host.dnat, host.masquerade) == ("10.244.0.5:80", True)
    node = send(mode, "internal_traffic_policy_local", NODE.ip, "10.96.0.100", 80, from_node=True)
    assert (node.dnat, node.masquerade, node.hooks) == ("10.244.0.5:80", True, ("output", "postrouting"))


@modes
def test_session_affinity_returns_a_remembered_client(mode):
    new = send(mode, "session_affinity", POD, "10.96.0.50", 80, draw=0.1)
    assert new.dnat == "10.244.0.5:80"
    # remembered for the other endpoint: the draw no longer matters
    for draw in (0.1, 0.9):
        assert send(mode, "session_affinity", POD, "10.96.0.50", 80, draw=draw,
                    affinity="10.244.1.5:80").dnat == "10.244.1.5:80"
    back = send(mode, "session_affinity", POD, "10.96.0.50", 80, draw=0.9, affinity="10.244.0.5:80")
    assert back.dnat == "10.244.0.5:80"
    # the rule that recognised the client is in the path
    assert any(("--rcheck" in s.rule) or ("ip saddr @affinity-" in s.rule) for s in back.steps)


@modes
def test_hairpin_is_masqueraded(mode):
    # 10.244.0.5 is the first of three endpoints: a draw below 1/3 sends it to itself
    to_itself = send(mode, "clusterip_three_endpoints", "10.244.0.5", "10.96.0.20", 80, draw=0.1)
    assert (to_itself.dnat, to_itself.masquerade) == ("10.244.0.5:80", True)
    assert any(s.verdict in ("masquerade",) for s in to_itself.steps)
    to_other = send(mode, "clusterip_three_endpoints", "10.244.0.5", "10.96.0.20", 80, draw=0.5)
    assert (to_other.dnat, to_other.masquerade) == ("10.244.0.6:80", False)


@modes
def test_udp_is_not_tcp(mode):
    assert send(mode, "kube_dns", POD, "10.96.0.10", 53, protocol="udp").dnat in ("10.244.0.2:53", "10.244.0.3:53")
    assert send(mode, "kube_dns", POD, "10.96.0.10", 9153, protocol="udp").dnat is None


@pytest.mark.parametrize("path", sorted(GOLDEN.iterdir()), ids=lambda p: p.name)
def test_every_golden_ruleset_parses(path):
    # A renderer change that writes something the tracer does not model fails here.
    text = path.read_text()
    rs = parse_iptables(text) if path.suffix == ".iptables" else parse_nft(text)
    rules = sum(len(r) for r in rs.chains.values())
    if path.suffix == ".iptables":
        assert rules == rule_count(text)  # every rule was understood, none skipped
    else:
        assert rules == sum(1 for line in text.splitlines() if line.startswith("\t\t") and not line.startswith(
            ("\t\t\t", "\t\ttype ", "\t\tcomment ", "\t\telements", "\t\tflags", "\t\ttimeout", "\t\t}")))
    assert {b.hook for b in rs.base_chains} <= set(HOOKS)


@pytest.mark.parametrize("text,what", [
    ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m physdev --physdev-is-bridged -j ACCEPT\nCOMMIT\n",
     "match module 'physdev'"),
    ("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j SNAT --to-source 1.2.3.4\nCOMMIT\n", "target 'SNAT"),
    ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i eth0 -j ACCEPT\nCOMMIT\n", "option '-i'"),
    ("*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", "table 'mangle'"),
    ("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j KUBE-NOPE\nCOMMIT\n", "target 'KUBE-NOPE'"),
])
def test_iptables_refuses_what_it_does_not_model(text, what):
    with pytest.raises(TracerError, match=what):
        parse_iptables(text)


NFT_HEAD = "table ip t {\n\tchain c {\n\t\ttype nat hook prerouting priority -100; policy accept;\n"


@pytest.mark.parametrize("rule,what", [
    ("ct mark 1 drop", "expression 'ct'"),
    ("iifname eth0 accept", "expression 'iifname'"),
    ("snat to 1.2.3.4", "expression 'snat'"),
    ("jump nowhere", "unknown chain 'nowhere'"),
    ("reject with icmp type host-unreachable", "reject with"),
    ("ip daddr . tcp dport 80", "concatenation outside a vmap"),
])
def test_nft_refuses_what_it_does_not_model(rule, what):
    with pytest.raises(TracerError, match=what):
        parse_nft(NFT_HEAD + f"\t\t{rule}\n\t}}\n}}\n")


def test_nft_refuses_other_families_and_policies():
    with pytest.raises(TracerError, match="family 'inet'"):
        parse_nft("table inet t {\n}\n")
    with pytest.raises(TracerError, match="policy drop"):
        parse_nft("table ip t {\n\tchain c {\n\t\ttype filter hook input priority 0; policy drop;\n\t}\n}\n")


def test_a_jump_loop_is_an_error_not_a_hang():
    text = "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n-A PREROUTING -j A\n-A A -j A\nCOMMIT\n"
    with pytest.raises(TracerError, match="loop"):
        backend_class("iptables").trace(text, Packet(POD, "10.96.0.1", 80), [NODE.ip])


def test_packet_checks_its_fields():
    with pytest.raises(ValueError, match="draw"):
        Packet(POD, "10.96.0.1", 80, draw=1.0)
    with pytest.raises(ValueError):
        Packet("not-an-ip", "10.96.0.1", 80)
