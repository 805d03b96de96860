"""k8snet.datapath's pure parts: rendering one Service's rules in either proxy mode, the
node facts rendered_rules reads through the API, and the iptables dispatch probabilities
as the kernel applies them (the lab-side views are in tests/lab/test_datapath.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from k8snet import datapath
from tests.unit._proxy_fixtures import NODE, case_clusterip_three_endpoints, endpoint, endpoint_slice, service

HTTP = [{"name": "http", "port": 80, "targetPort": 80}]


def _four_endpoints():
    svc = service("web", HTTP, cluster_ip="10.96.0.50")
    eps = [endpoint(f"10.244.0.{i}") for i in range(1, 5)]
    return svc, [endpoint_slice("web", "aaaaa", [{"name": "http", "port": 80}], eps)]


def test_render_service_iptables_keeps_only_the_service():
    [svc], slices = case_clusterip_three_endpoints()
    text = datapath.render_service(svc, slices, NODE, "iptables")
    assert text.startswith("*nat\n") and text.endswith("COMMIT\n")
    assert "default/my-nginx:http" in text
    assert text.count("-j DNAT --to-destination") == 3
    assert "KUBE-POSTROUTING" not in text  # the shared skeleton is not the Service's


def test_render_service_nftables_has_dispatch_and_its_map_elements():
    [svc], slices = case_clusterip_three_endpoints()
    text = datapath.render_service(svc, slices, NODE, "nftables")
    assert "numgen random mod 3 vmap" in text
    assert "elements = { 10.96.0.20 . tcp . 80 : goto service-" in text
    assert text.count("dnat to") == 3
    # every block that opens closes once: the filtered text is balanced
    assert text.count("{") == text.count("}")


def test_render_service_rejects_unknown_mode():
    [svc], slices = case_clusterip_three_endpoints()
    with pytest.raises(ValueError, match="ipvs"):
        datapath.render_service(svc, slices, NODE, "ipvs")


def test_dispatch_probabilities_give_each_endpoint_one_in_n():
    svc, slices = _four_endpoints()
    table = datapath.dispatch_probabilities(datapath.render_service(svc, slices, NODE, "iptables"))
    # kube-proxy writes 1/(n-i) with 10 decimals; the last rule has no statistic match
    assert table["rule_probability"].tolist() == [0.25, 0.3333333333, 0.5, 1.0]
    assert table["endpoint"].tolist() == [f"10.244.0.{i}:80" for i in range(1, 5)]
    # the kernel compares a 31-bit draw: 1/3 becomes 715827883 / 2^31, the others are exact
    assert table["kernel_probability"].tolist() == [0.25, 715827883 / 2**31, 0.5, 1.0]
    exact = Fraction(715827883, 2**31)
    chosen = [Fraction(1, 4), Fraction(3, 4) * exact, Fraction(3, 4) * (1 - exact) / 2, Fraction(3, 4) * (1 - exact) / 2]
    assert table["chosen"].tolist() == pytest.approx([float(c) for c in chosen], abs=1e-15)
    assert float(chosen[1] - Fraction(1, 4)) == pytest.approx(1.16415321827e-10, rel=1e-9)
    assert table["chosen"].sum() == pytest.approx(1.0, abs=1e-15)
    assert list(table["reached"]) == pytest.approx([1.0, 0.75, float(Fraction(3, 4) * (1 - exact)),
                                                    float(Fraction(3, 4) * (1 - exact) / 2)], abs=1e-15)


def test_kernel_probability_is_a_multiple_of_two_to_the_minus_31():
    # iptables stores lround(p * 0x80000000) and iptables-save prints it with %.11f
    assert f"{datapath.kernel_probability(1 / 3):.11f}" == "0.33333333349"
    assert f"{datapath.kernel_probability(0.3333333333):.11f}" == "0.33333333349"
    assert f"{datapath.kernel_probability(0.2):.11f}" == "0.20000000019"
    assert datapath.kernel_probability(0.5) == 0.5 and datapath.kernel_probability(1.0) == 1.0
    # halves round away from zero, like C's lround (Python's round() would give 0 here)
    assert datapath.kernel_probability(0.5 / 2**31) == 1 / 2**31
    assert datapath.kernel_probability(0.49 / 2**31) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        datapath.kernel_probability(1.5)


class _FakeCluster:
    """What rendered_rules reads from a Cluster besides the API objects."""

    def __init__(self, facts=None):
        self._facts = facts
        self.nodes = [
            {"metadata": {"name": "lab-control-plane"},
             "status": {"addresses": [{"type": "InternalIP", "address": "172.31.0.2"},
                                      {"type": "Hostname", "address": "lab-control-plane"}]}},
            {"metadata": {"name": "lab-worker"}, "status": {"addresses": [{"type": "ExternalIP", "address": "172.31.0.3"},
                                                                          {"type": "InternalIP", "address": "172.31.0.3"}]}},
        ]

    def lab_facts(self):
        return self._facts

    def list(self, kind, namespace="default", selector=None, name=None):
        assert kind == "Node" and namespace is None
        return self.nodes


def test_node_info_comes_from_the_node_object_and_the_lab_facts():
    cluster = _FakeCluster()
    info = datapath._node_info(cluster, "lab-worker", "10.244.0.0/16", "10.96.0.0/16")
    assert (info.name, info.ip, info.cluster_cidr, info.service_cidr) == \
        ("lab-worker", "172.31.0.3", "10.244.0.0/16", "10.96.0.0/16")
    assert datapath._node_info(cluster, 0, "10.244.0.0/16", "10.96.0.0/16").ip == "172.31.0.2"
    with pytest.raises(ValueError, match="no node 'nope'"):
        datapath._node_info(cluster, "nope", "10.244.0.0/16", "10.96.0.0/16")
    with pytest.raises(ValueError, match="out of range"):
        datapath._node_info(cluster, 2, "10.244.0.0/16", "10.96.0.0/16")
    cluster.nodes[1]["status"]["addresses"] = []
    with pytest.raises(ValueError, match="no InternalIP"):
        datapath._node_info(cluster, 1, "10.244.0.0/16", "10.96.0.0/16")


def test_rendered_rules_refuses_a_cluster_that_is_not_a_lab():
    with pytest.raises(datapath.LabOnlyError, match="lab-only"):
        datapath.rendered_rules(_FakeCluster(facts=None), "web")


def test_dispatch_probabilities_reads_iptables_save_with_counters():
    line = ('[3:180] -A KUBE-SVC-ABC -m comment --comment "ns/web:http -> 10.244.1.2:9376" '
            "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-X")
    last = '[1:60] -A KUBE-SVC-ABC -m comment --comment "ns/web:http -> 10.244.1.3:9376" -j KUBE-SEP-Y'
    table = datapath.dispatch_probabilities(f"*nat\n{line}\n{last}\nCOMMIT\n")
    assert table[["endpoint", "chosen"]].values.tolist() == [["10.244.1.2:9376", 0.5], ["10.244.1.3:9376", 0.5]]


def test_dispatch_probabilities_reads_the_kernels_11_decimals():
    rules = "\n".join(
        f'-A KUBE-SVC-ABC -m comment --comment "ns/web:http -> 10.244.1.{i}:9376"{p} -j KUBE-SEP-{i}'
        for i, p in enumerate([" -m statistic --mode random --probability 0.33333333349",
                               " -m statistic --mode random --probability 0.50000000000", ""]))
    table = datapath.dispatch_probabilities(rules)
    assert table["kernel_probability"].tolist() == [715827883 / 2**31, 0.5, 1.0]
    assert table["chosen"].sum() == pytest.approx(1.0, abs=1e-15)


def test_trace_follows_the_live_service_without_root(monkeypatch):
    """datapath.trace: the Service and slices through the API (here: the fixture), the
    node from its Node object, the mode from the lab's facts; no kernel involved."""
    [svc], slices = case_clusterip_three_endpoints()

    class Facts:
        pod_cidr, service_cidr, proxy_mode = "10.244.0.0/16", "10.96.0.0/16", "nftables"

    cluster = _FakeCluster(facts=Facts())
    cluster.api_client = object()
    seen = {}

    def objects(api_client, service, namespace):
        seen["args"] = (api_client, service, namespace)
        return svc, slices

    monkeypatch.setattr(datapath, "_service_objects", objects)
    out = datapath.trace(cluster, "my-nginx", "10.244.0.9", draw=0.9)
    assert seen["args"] == (cluster.api_client, "my-nginx", "default")
    assert (out.mode, out.verdict, out.dnat, out.masquerade) == ("nftables", "ACCEPT", "10.244.1.7:80", False)
    ipt = datapath.trace(cluster, "my-nginx", "172.31.0.1", mode="iptables", draw=0.0)
    assert (ipt.mode, ipt.dnat, ipt.masquerade) == ("iptables", "10.244.0.5:80", True)
    frame = datapath.trace_frame(ipt)
    assert list(frame.columns) == ["hook", "table", "chain", "rule", "verdict"]
    prerouting = frame[frame["hook"] == "prerouting"]
    assert prerouting["chain"].tolist()[:4] == ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-SV7AMNAGZFKZEMQ4", "KUBE-MARK-MASQ"]
    assert prerouting["verdict"].tolist()[-1] == "dnat 10.244.0.5:80"
    with pytest.raises(datapath.LabOnlyError):
        datapath.trace(_FakeCluster(facts=None), "my-nginx", "10.244.0.9")


def test_trace_service_destinations_and_ports():
    [svc], slices = case_clusterip_three_endpoints()
    with pytest.raises(ValueError, match="no node port"):
        datapath.trace_service(svc, slices, NODE, "iptables", "10.244.0.9", dest="node-port")
    with pytest.raises(ValueError, match="no port 'grpc'; its ports are http=80"):
        datapath.trace_service(svc, slices, NODE, "iptables", "10.244.0.9", port="grpc")
    with pytest.raises(ValueError, match="dest must be one of"):
        datapath.trace_service(svc, slices, NODE, "iptables", "10.244.0.9", dest="somewhere")
    with pytest.raises(ValueError, match="proxy mode must be iptables or nftables, not 'ipvs'"):
        datapath.trace_service(svc, slices, NODE, "ipvs", "10.244.0.9")
    by_name = datapath.trace_service(svc, slices, NODE, "iptables", "10.244.0.9", port="http", draw=0.5)
    by_ip = datapath.trace_service(svc, slices, NODE, "iptables", "10.244.0.9", dest="10.96.0.20", port=80, draw=0.5)
    assert by_name.dnat == by_ip.dnat == "10.244.0.6:80"
    lb = service("lb", [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 31080}], type="LoadBalancer",
                 cluster_ip="10.96.0.80", status={"loadBalancer": {"ingress": [{"ip": "172.31.0.200", "ipMode": "VIP"}]}})
    lb_slices = [endpoint_slice("lb", "a", [{"name": "http", "port": 80}], [endpoint("10.244.0.5")])]
    for dest in ("load-balancer", "node-port", "cluster-ip"):
        assert datapath.trace_service(lb, lb_slices, NODE, "nftables", "172.31.0.1", dest=dest).dnat == "10.244.0.5:80"
    with pytest.raises(ValueError, match="no external-ip address"):
        datapath.trace_service(lb, lb_slices, NODE, "nftables", "172.31.0.1", dest="external-ip")
