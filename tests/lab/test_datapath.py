"""k8snet.datapath on the lab, in both kube-proxy modes: a Service's rules, the rules
one connection went through, and its conntrack entry with the DNAT; and the rules
either mode renders for it, read through the API alone (no lab state, no root)."""

from __future__ import annotations

import re

import pytest

from k8snet import datapath
from k8snet.cluster import Cluster
from k8snet.lab import lifecycle

from .svcprobe import client_pod, connect, hostname_pod, service, wait_answers, wait_endpoints, wait_ready


def test_rules_matched_rules_and_conntrack(proxy_lab, proxy_core, proxy_namespace):
    core, ns = proxy_core, proxy_namespace
    mode = proxy_lab.details.get("proxy_mode")
    for name in ("web-0", "web-1"):
        core.create_namespaced_pod(ns, hostname_pod(name, {"app": "web"}))
    core.create_namespaced_pod(ns, client_pod("client"))
    core.create_namespaced_service(ns, service("web", {"app": "web"}))
    core.create_namespaced_service(ns, service("other", {"app": "web"}))
    pods = wait_ready(core, ns, "app=web", 2)
    client = wait_ready(core, ns, "role=client", 1)[0]
    wait_endpoints(core, ns, "web", 2)
    ip = core.read_namespaced_service("web", ns).spec.cluster_ip
    wait_answers(core, ns, "client", ip, 80, {"web-0", "web-1"})
    pod_ips = {p.status.pod_ip for p in pods}

    # (a) The rules: this Service's, with both endpoints, and not the other Service's.
    text = datapath.service_rules(proxy_lab.name, "web", ns)
    assert f"{ns}/web" in text and f"{ns}/other" not in text
    assert all(f"{pip}:9376" in text for pip in pod_ips), text
    assert ip in text
    if mode == "nftables":
        assert "numgen random mod 2" in text and "service-ips" in text
    else:
        assert "-m statistic --mode random --probability 0.5000000000" in text and "KUBE-SERVICES" in text

    # (b) One connection: it went through the Service's dispatch and exactly one endpoint's DNAT.
    answers: list[str] = []
    hits = datapath.matched_rules(proxy_lab.name, "web", lambda: answers.extend(
        connect(core, ns, "client", ip, 80, 1)), ns)
    assert answers and answers[0] in {"web-0", "web-1"}
    backend_ip = next(p.status.pod_ip for p in pods if p.metadata.name == answers[0])
    dnat = hits[hits.rule.str.contains("DNAT|dnat to", regex=True)]
    assert len(dnat) == 1 and f"{backend_ip}:9376" in dnat.rule.iloc[0], hits.to_string()
    assert set(hits.node) == {client.spec.node_name}, hits.to_string()

    # (c) conntrack: the flow from the client to the cluster IP, answered by the backend.
    flows = datapath.conntrack_entries(proxy_lab.name, "web", ns, node=client.spec.node_name)
    mine = flows[(flows.orig_src == client.status.pod_ip) & (flows.reply_src == backend_ip)]
    assert len(mine) >= 1, flows.to_string()
    row = mine.iloc[0]
    assert row.orig_dst == ip and row.orig_dport == 80 and row.reply_sport == 9376
    assert row.dnat and not row.snat

    # (d) Both modes' rules rendered from the API alone, as a normal user sees the lab:
    # a Cluster without the lab's state (lab=None), and the lab's state out of reach.
    api_only = Cluster.from_kubeconfig(proxy_lab.kubeconfig)
    assert api_only.lab is None

    def no_state(*_args, **_kwargs):
        raise AssertionError("rendered_rules read the lab's state folder")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lifecycle, "status", no_state)
        patch.setattr(lifecycle, "load_config", no_state)
        same = datapath.rendered_rules(api_only, "web", ns)
        ipt = datapath.rendered_rules(api_only, "web", ns, mode="iptables", node=client.spec.node_name)
        nft = datapath.rendered_rules(api_only, "web", ns, mode="nftables", node=1)
    for rendered in (same, ipt, nft):
        assert f"{ns}/web" in rendered and f"{ns}/other" not in rendered and ip in rendered, rendered
        assert all(f"{pip}:9376" in rendered for pip in pod_ips), rendered
    assert ipt.count("-j DNAT --to-destination") == 2 and "--probability 0.5000000000" in ipt, ipt
    assert nft.count("dnat to") == 2 and "numgen random mod 2" in nft, nft
    assert same == (nft if mode == "nftables" else ipt)
    # the kernel's rules for the lab's own mode name the same DNAT targets as the rendering
    targets = r"(?:--to-destination|dnat to) (\S+)"
    assert sorted(re.findall(targets, text)) == sorted(re.findall(targets, same))
    table = datapath.dispatch_probabilities(ipt)
    assert table["kernel_probability"].tolist() == [0.5, 1.0] and table["chosen"].tolist() == [0.5, 0.5]
    api_only.api_client.close()


def test_other_clusters_get_a_lab_only_message():
    class NotALab:
        lab = None
    with pytest.raises(datapath.LabOnlyError, match="lab-only"):
        datapath.service_rules(NotALab(), "web")
