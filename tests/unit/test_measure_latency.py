"""measure.connect_latency's bookkeeping: targets take turns, all probes on one node,
percentiles and the ratio to the first target (the probe itself is run by tests/lab)."""

from __future__ import annotations

from k8snet import measure


def test_connect_latency_alternates_targets_and_reports_ratio(monkeypatch):
    calls = []

    def run_probe(cluster, namespace, args, *, image, node, timeout):
        host = args[args.index("--host") + 1]
        calls.append((host, node))
        base = 100.0 if host == "10.96.0.10" else 50.0
        return [{"i": i, "connect_us": base + i, "total_us": 2 * base, "backend": "web-0"} for i in range(3)]

    monkeypatch.setattr(measure, "run_probe", run_probe)
    m = measure.connect_latency(None, {"ClusterIP": "10.96.0.10", "pod IP": "10.244.0.5"}, "ns",
                                connections=3, rounds=2, node="worker")
    assert calls == [("10.96.0.10", "worker"), ("10.244.0.5", "worker")] * 2
    assert len(m.data) == 12 and set(m.data["round"]) == {0, 1}
    assert m.summary["errors"] == 0
    assert m.summary["percentiles_us"]["ClusterIP"]["p50"] == 101.0
    assert m.summary["ratio_p50"] == {"ClusterIP": 1.0, "pod IP": 51.0 / 101.0}
    assert m.params["node"] == "worker"


class NotALab:
    def lab_facts(self):
        return None  # not a k8snet lab: the default kube-proxy's timing


# wait_backends itself runs against a real API server in test_cluster_watch.py
def test_a_lab_waits_less_for_its_proxy_but_longer_than_its_min_sync_period():
    from k8snet.lab.proxy.proxy import MIN_SYNC_PERIOD_SECONDS

    class OnALab:
        def lab_facts(self):
            return object()

    assert measure.proxy_sync_seconds(NotALab()) == measure.PROXY_SYNC_SECONDS
    assert MIN_SYNC_PERIOD_SECONDS < measure.proxy_sync_seconds(OnALab()) < measure.PROXY_SYNC_SECONDS


def test_probe_pod_carries_the_dns_config():
    dns_config = {"options": [{"name": "ndots", "value": "1"}]}
    pod = measure._probe_pod("p", ["dns"], "python:3.12", node=None, restart="Never", enable_service_links=True,
                             dns_config=dns_config)
    assert pod["spec"]["dnsConfig"] == dns_config
    assert "dnsConfig" not in measure._probe_pod("p", ["dns"], "python:3.12", node=None, restart="Never",
                                                 enable_service_links=True)["spec"]
