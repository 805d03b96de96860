"""connect/apply/wait/namespace/DataFrames and every measurement, on a live cluster."""

from __future__ import annotations

import time

import pytest

import k8snet
from k8snet import Cluster, WaitTimeout
from k8snet.lab.errors import ApiError


def test_info_and_nodes(cluster: Cluster):
    info = cluster.info()
    assert info.version.startswith("v1.") and info.nodes
    nodes = cluster.nodes()
    assert list(nodes["name"]) == sorted(info.nodes) and nodes["ready"].all()


def test_namespace_is_deleted_afterwards(cluster: Cluster):
    with cluster.namespace("k8snet-test") as name:
        assert cluster.get("Namespace", name, "") is not None
    assert cluster.get("Namespace", name, "") is None


def test_apply_creates_then_updates_and_tables(cluster: Cluster, backends: str):
    ns = backends
    pods = cluster.pods(ns, "app=backends")
    assert len(pods) == 3 and pods["ready"].all() and pods["ip"].notna().all()
    svc = cluster.services(ns)
    assert svc.loc[0, "name"] == "backends" and svc.loc[0, "ports"] == "80/TCP"
    eps = cluster.endpoints(ns, "backends")
    assert sorted(eps["ip"]) == sorted(pods["ip"]) and set(eps["port"]) == {8080}
    updated = cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "backends"},
                             "spec": {"replicas": 2}}, ns)
    assert updated[0]["spec"]["replicas"] == 2
    cluster.wait("Deployment", "backends", namespace=ns, timeout=60, progress=False)
    pods = cluster.pods(ns, "app=backends")
    assert len(pods[~pods["terminating"]]) == 2


def test_wait_explains_a_wrong_selector(cluster: Cluster, ns: str):
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wrong"},
                   "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]}}, ns)
    with pytest.raises(WaitTimeout, match="matches no pod"):
        cluster.wait("svc", "wrong", namespace=ns, timeout=1, progress=False)


def test_wait_explains_a_bad_image(cluster: Cluster, ns: str):
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                   "spec": {"containers": [{"name": "c", "image": "no-such-registry.invalid/none:1"}]}}, ns)
    with pytest.raises(WaitTimeout, match="container c waiting"):
        cluster.wait("pod", "bad", namespace=ns, timeout=5, progress=False)


def test_api_errors_carry_the_status(cluster: Cluster, ns: str):
    with pytest.raises(ApiError) as err:
        cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad_Name"}, "spec": {}}, ns)
    assert err.value.code == 422 and err.value.reason == "Invalid"


def test_exec_logs_env(cluster: Cluster, backends: str):
    pod = cluster.pods(backends).loc[0, "name"]
    assert cluster.exec(pod, ["hostname"], backends).stdout.strip() == pod
    # Ready comes when the process runs; its first line may come a moment later
    deadline = time.monotonic() + 10
    while "8080" not in (log := cluster.logs(pod, backends)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "8080" in log
    env = cluster.env(pod, backends)
    assert env["BACKENDS_SERVICE_PORT"] == "80" and "PATH" not in env


def test_lb_distribution(cluster: Cluster, backends: str):
    df, summary = k8snet.lb_distribution(cluster, "backends", backends, connections=300)
    assert len(df) == 300 and summary["errors"] == 0 and summary["tcp_connections"] == 300
    assert summary["backends_seen"] == summary["backends_expected"] == 3
    assert summary["p_value"] > 1e-4


def test_lb_keepalive_pins_one_backend(cluster: Cluster, backends: str):
    _, summary = k8snet.lb_distribution(cluster, "backends", backends, connections=20, keepalive=True)
    assert summary["tcp_connections"] == 1 and summary["backends_seen"] == 1


def test_dns_latency(cluster: Cluster, backends: str):
    m = k8snet.dns_latency(cluster, ["backends"], backends, samples=3)
    queries = m.summary["queries"]
    # A and AAAA for every name tried, as getaddrinfo(AF_UNSPEC) sends them
    assert queries["short"] == 2 and queries["name.namespace"] == 4 and queries["fqdn"] == 2
    assert queries["external"] >= 8  # ndots:5 walks the search list first
    assert m.summary["answered"]["short"] == 1.0
    cluster_ip = cluster.services(backends).loc[0, "cluster_ip"]
    assert set(m.data.loc[m.data["form"] != "external", "answer"]) == {cluster_ip}


def test_pod_to_pod_sees_no_nat(cluster: Cluster, backends: str):
    src, dst = list(cluster.pods(backends)["name"])[:2]
    m = k8snet.pod_to_pod(cluster, src, dst, backends)
    assert m.summary["reachable"] and not m.summary["nat"]
    assert m.summary["src_ip"] in m.summary["seen_ips"]


def test_env_with_and_without_service_links(cluster: Cluster, backends: str):
    assert "BACKENDS" in k8snet.env(cluster, backends).summary["services"]
    assert "BACKENDS" not in k8snet.env(cluster, backends, enable_service_links=False).summary["services"]


def test_rtt_baseline(cluster: Cluster, ns: str):
    m = k8snet.rtt_baseline(cluster, ns, samples=50)
    assert m.summary["lost"] == 0 and m.summary["udp_p50_us"] > 0
    assert set(m.data["proto"]) == {"udp", "tcp", "tcp-connect"}


def test_lab_facts_come_through_the_api(cluster: Cluster):
    """A k8snet lab says what it is in kube-public/k8snet-lab and kube-system/kube-proxy,
    readable with the same credentials as everything else; other clusters have no facts."""
    import ipaddress

    info = cluster.info()
    if info.kind != "k8snet-lab":
        assert info.lab is None and cluster.lab_facts() is None
        return
    facts = info.lab
    assert facts is not None and facts.proxy_mode == info.proxy_mode in ("iptables", "nftables")
    node_net = ipaddress.ip_network(facts.node_cidr)
    assert ipaddress.ip_address(facts.host_ip) in node_net
    assert facts.loadbalancer_pool and all(ipaddress.ip_address(a) in node_net for a in facts.loadbalancer_pool)
    nodes = cluster.nodes()
    assert all(ipaddress.ip_address(ip) in node_net for ip in nodes["internal_ip"])
    pod_net = ipaddress.ip_network(facts.pod_cidr)
    assert all(ipaddress.ip_network(c).subnet_of(pod_net) for c in nodes["pod_cidr"])
    assert all(n.startswith(facts.name + "-") for n in info.nodes)


def test_namespace_with_kubectl_makes_it_kubectls_current_namespace(cluster: Cluster):
    """The tutorial's commands run as written in a notebook: plain ``kubectl`` talks to the
    notebook's cluster, in its throw-away namespace, and $KUBECONFIG is back afterwards."""
    import os
    import shutil
    import subprocess

    assert shutil.which("kubectl"), "the kit's kubectl (.venv/bin) must be on PATH"
    before = os.environ.get("KUBECONFIG")
    with cluster.namespace("k8snet-test", kubectl=True) as ns:
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}, "data": {"a": "1"}}, ns)
        out = subprocess.run(["kubectl", "get", "configmap", "probe", "-o", "jsonpath={.metadata.namespace}"],
                             capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stdout) == (0, ns), out.stderr
        server = subprocess.run(["kubectl", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
                                capture_output=True, text=True, timeout=30).stdout
        assert server == cluster.server
    assert os.environ.get("KUBECONFIG") == before
