"""Golden-text tests for the iptables renderer (K8SNET_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from k8snet.lab.proxy.iptables import probability, render_iptables, rule_count, sep_chain, svc_chain
from k8snet.lab.proxy.model import build_model
from tests.unit._proxy_fixtures import CASES, NODE

GOLDEN = Path(__file__).parent / "golden" / "proxy"


def render(case: str) -> str:
    services, slices = CASES[case]()
    return render_iptables(build_model(services, slices, NODE.name), NODE)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("K8SNET_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    check_golden(f"{case}.iptables", render(case))


def test_render_is_deterministic_under_input_order() -> None:
    services, slices = CASES["multiple_slices"]()
    forward = render_iptables(build_model(services, slices, NODE.name), NODE)
    backward = render_iptables(build_model(services[::-1], slices[::-1], NODE.name), NODE)
    assert forward == backward


def test_chain_names_match_kube_proxy() -> None:
    # Expected values from kube-proxy's own proxier_test.go (ns1/svc1:p80, ns4/svc4:p80).
    from k8snet.lab.proxy.model import Endpoint, ServicePort
    sp = ServicePort(namespace="ns1", name="svc1", port_name="p80", protocol="TCP", cluster_ip="172.30.0.41", port=80)
    assert svc_chain(sp) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    sp4 = ServicePort(namespace="ns4", name="svc4", port_name="p80", protocol="TCP", cluster_ip="172.30.0.44", port=80)
    assert sep_chain(sp4, "10.180.0.5:80") == "KUBE-SEP-C6EBXVWJJZMIWKLZ"
    assert str(Endpoint("10.180.0.5", 80, None, False, True, True, False)) == "10.180.0.5:80"


def test_probabilities_give_each_endpoint_one_nth() -> None:
    text = render("clusterip_three_endpoints")
    probs = re.findall(r"--probability (\S+)", text)
    assert probs == ["0.3333333333", "0.5000000000"]
    assert probability(7) == "0.1428571429"


def test_no_endpoints_rejects_in_filter_only() -> None:
    text = render("no_endpoints")
    nat, filt = text.split("*filter")
    assert '-A KUBE-SERVICES -m comment --comment "default/lonely has no endpoints" -m tcp -p tcp ' \
           "-d 10.96.0.30 --dport 8080 -j REJECT --reject-with icmp-port-unreachable" in filt
    assert "KUBE-SVC-" not in nat and "10.96.0.30" not in nat


def test_rule_count() -> None:
    assert rule_count(render("clusterip_three_endpoints")) == render("clusterip_three_endpoints").count("\n-A ")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.parametrize("case", sorted(CASES))
def test_iptables_restore_accepts(case: str, netns: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--test"],
                          input=render(case), text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
