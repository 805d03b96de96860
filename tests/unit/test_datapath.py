"""k8snet.datapath's pure parts: rendering one Service's rules in either proxy mode and
the iptables dispatch probabilities (the lab-side views are in tests/lab/test_datapath.py)."""

from __future__ import annotations

import pytest

from k8snet import datapath

from tests.unit.test_proxy_fixtures import NODE, case_clusterip_three_endpoints, endpoint, endpoint_slice, service

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
    assert list(table["rule_probability"].round(4)) == [0.25, 0.3333, 0.5, 1.0]
    assert list(table["reached"].round(4)) == [1.0, 0.75, 0.5, 0.25]
    assert table["chosen"].round(10).tolist() == [0.25] * 4
    assert table["endpoint"].tolist() == [f"10.244.0.{i}:80" for i in range(1, 5)]


def test_dispatch_probabilities_reads_iptables_save_with_counters():
    line = ('[3:180] -A KUBE-SVC-ABC -m comment --comment "ns/web:http -> 10.244.1.2:9376" '
            "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-X")
    last = '[1:60] -A KUBE-SVC-ABC -m comment --comment "ns/web:http -> 10.244.1.3:9376" -j KUBE-SEP-Y'
    table = datapath.dispatch_probabilities(f"*nat\n{line}\n{last}\nCOMMIT\n")
    assert table[["endpoint", "chosen"]].values.tolist() == [["10.244.1.2:9376", 0.5], ["10.244.1.3:9376", 0.5]]
