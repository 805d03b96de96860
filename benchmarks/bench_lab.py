"""Benchmark: lab start-up and pod start-up (issue: lab core).

    sudo python3 benchmarks/bench_lab.py [--runs 3] [--big 100]

Measures, per run, on a fresh lab:
- ``up_to_ready``: `k8snet lab up` until every node is Ready and DNS answers;
- ``up_to_reachable``: until a first nginx pod answers through its Service by DNS
  name (from a busybox pod: ``wget http://web``);
- for a 10-replica and a ``--big``-replica Deployment: time from apply to all pods
  Running and listed in the endpoints, and each pod's start-up latency
  (first seen by a client-side watch → first seen Ready), as p50/p99.
Writes data/results/lab-bench.csv and lab-bench.json (machine and conditions).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.stream import stream

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "data" / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def parse_ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait(pred, timeout=300.0, every=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(every)
    raise TimeoutError


class PodClock:
    """Watches pods from the client side and records, per pod, when it was first
    seen and when it was first Ready (API timestamps have whole-second resolution)."""

    def __init__(self, core, namespace: str, selector: str):
        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace, selector), daemon=True)
        self._thread.start()

    def _run(self, core, namespace, selector):
        try:
            self._watch_pods(core, namespace, selector)
        except Exception:  # the lab going down ends the watch; nothing to report
            pass

    def _watch_pods(self, core, namespace, selector):
        for event in self._watch.stream(core.list_namespaced_pod, namespace, label_selector=selector, timeout_seconds=600):
            now, pod = time.monotonic(), event["object"]
            name = pod.metadata.name
            self.seen.setdefault(name, now)
            conditions = pod.status.conditions or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                self.ready.setdefault(name, now)

    def startups(self) -> list[float]:
        self._watch.stop()
        return [self.ready[n] - self.seen[n] for n in self.ready]


def deploy(apps, core, ns: str, name: str, replicas: int) -> tuple[float, list[float]]:
    body = {"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}
    core.create_namespaced_service(ns, {"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}})
    clock = PodClock(core, ns, f"app={name}")
    time.sleep(0.2)  # let the watch start before the pods exist
    t0 = time.monotonic()
    apps.create_namespaced_deployment(ns, body)

    def done():
        ep = core.read_namespaced_endpoints(name, ns)
        return sum(len(s.addresses or []) for s in (ep.subsets or [])) == replicas
    wait(done)
    total = time.monotonic() - t0
    wait(lambda: len(clock.ready) == replicas)
    return total, clock.startups()


def one_run(run: int, big: int) -> dict:
    name = f"bench{run}"
    t0 = time.monotonic()
    st = lifecycle.up(LabConfig(name=name, nodes=2))
    ready = time.monotonic() - t0
    try:
        api = config.new_client_from_config(config_file=str(st.kubeconfig))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespaced_pod("default", {"metadata": {"name": "probe"}, "spec": {"containers": [
            {"name": "probe", "image": "busybox", "command": ["sleep", "3600"]}]}})
        core.create_namespaced_service("default", {"metadata": {"name": "web"},
                                                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        core.create_namespaced_pod("default", {"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}})

        def reachable():
            try:
                out = stream(core.connect_get_namespaced_pod_exec, "probe", "default",
                             command=["wget", "-qO-", "http://web"], stderr=True, stdout=True, stdin=False, tty=False)
            except Exception:
                return False
            return "Welcome to nginx!" in out
        wait(reachable, every=0.05)
        reach = time.monotonic() - t0
        ns = "bench"
        core.create_namespace({"metadata": {"name": ns}})
        t10, s10 = deploy(apps, core, ns, "ten", 10)
        tbig, sbig = deploy(apps, core, ns, "big", big)
        api.close()
    finally:
        lifecycle.down(name)
    return {"run": run, "up_to_ready_s": ready, "up_to_reachable_s": reach,
            "deploy10_all_ready_s": t10, "deploy10_pod_startup_p50_s": percentile(s10, 50),
            "deploy10_pod_startup_p99_s": percentile(s10, 99),
            f"deploy{big}_all_ready_s": tbig, f"deploy{big}_pod_startup_p50_s": percentile(sbig, 50),
            f"deploy{big}_pod_startup_p99_s": percentile(sbig, 99)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    load_start = os.getloadavg()[0]  # other work on the machine skews the timings: record it
    rows = [one_run(i, args.big) for i in range(args.runs)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "lab-bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "run"}
    provenance = {
        "benchmark": "benchmarks/bench_lab.py", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": args.runs, "big_deployment": args.big, "nodes": 2, "proxy_mode": "iptables",
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "loadavg_1m_start": load_start, "loadavg_1m_end": os.getloadavg()[0]},
        "median_of_runs": summary,
        "goals": {"up_to_reachable_s": 3.0, "pod_startup_p99_s": 1.0},
    }
    (RESULTS / "lab-bench.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
