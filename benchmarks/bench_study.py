"""Benchmark: the study's measurements and notebooks (issue: helper and notebooks).

    sudo python3 benchmarks/bench_study.py [--runs 3] [--connections 10000]

On a fresh lab, measures side by side in one run:
- ``lb10k_s``: one ``k8snet.lb_distribution`` run of ``--connections`` new
  connections to a 3-replica agnhost Service, end to end (probe ConfigMap and pod
  created, run, log read, pod deleted) — the goal is ≤ 10 s for 10,000;
- ``notebooks_s``: the whole notebook suite under ``pytest --nbval-lax`` (read-only:
  the committed notebooks are not rewritten) — the goal is ≤ 5 minutes.
Writes data/results/study-bench.csv and study-bench.json (machine, load, medians).
``benchmarks/run.py`` calls :func:`one_run` (with ClusterIP vs pod IP connect latency)
as its ``study`` row and :func:`notebooks_run` as its ``notebooks`` row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, save, spread  # noqa: E402

import k8snet  # noqa: E402
from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

BACKENDS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: backends}
spec:
  replicas: 3
  selector: {matchLabels: {app: backends}}
  template:
    metadata: {labels: {app: backends}}
    spec:
      containers:
      - {name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [serve-hostname], ports: [{containerPort: 9376}]}
---
apiVersion: v1
kind: Service
metadata: {name: backends}
spec:
  selector: {app: backends}
  ports: [{port: 80, targetPort: 9376}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  containers:
  - {name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [serve-hostname], ports: [{containerPort: 9376}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: solo}
  ports: [{port: 9376}]
"""


def lb_run(cluster: k8snet.Cluster, ns: str, connections: int) -> float:
    t0 = time.monotonic()
    _, summary = k8snet.lb_distribution(cluster, "backends", ns, connections=connections, path="/")
    elapsed = time.monotonic() - t0
    if sum(summary["counts"].values()) != connections:
        raise RuntimeError(f"lost connections: {summary}")
    return elapsed


def clusterip_over_pod_ip(cluster: k8snet.Cluster, ns: str, connections: int) -> float:
    """Median TCP connect time to pod ``solo`` through its ClusterIP over straight to its
    pod IP, from a probe on another node, the two taking turns (notebook 08's measure)."""
    solo = cluster.pods(ns, "app=solo").iloc[0]
    other = next(n for n in cluster.nodes()["name"] if n != solo["node"])
    targets = {"pod IP": solo["ip"], "ClusterIP": cluster.core.read_namespaced_service("solo", ns).spec.cluster_ip}
    latency = k8snet.measure.connect_latency(cluster, targets, ns, port=9376, connections=connections, node=other)
    if latency.summary["errors"]:
        raise RuntimeError(f"connect_latency: {latency.summary['errors']} failed connections")
    return latency.summary["ratio_p50"]["ClusterIP"]


def one_run(lab: str, connections: int = 10000, latency_connections: int = 300) -> dict[str, float]:
    """A fresh lab ``lab``: one ``lb_distribution`` of ``connections`` and ClusterIP vs
    pod IP connect latency; the lab is down again on return."""
    lifecycle.up(LabConfig(name=lab, nodes=2))
    try:
        cluster = k8snet.connect(lab=lab)
        with cluster.namespace("bench") as ns:
            cluster.apply(BACKENDS, ns)
            cluster.wait("Deployment", "backends", namespace=ns, timeout=120, progress=False)
            cluster.wait("Service", "backends", namespace=ns, timeout=60, progress=False)
            cluster.wait("Service", "solo", namespace=ns, timeout=60, progress=False)
            return {"lb_s": lb_run(cluster, ns, connections),
                    "clusterip_over_pod_ip_p50": clusterip_over_pod_ip(cluster, ns, latency_connections)}
    finally:
        lifecycle.down(lab)


def notebooks_run(lab: str) -> float:
    env = {**os.environ, "K8SNET_LAB": lab, "PYTHONPATH": str(ROOT),
           "K8SNET_RESULTS_DIR": tempfile.mkdtemp(prefix="k8snet-bench-results-")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "notebooks/", "-q", "-p", "no:cacheprovider",
                           "--nbval-sanitize-with", "tests/notebooks/sanitize.cfg"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:])
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10000)
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    lab = "benchstudy"
    load_start = os.getloadavg()[0]
    lifecycle.up(LabConfig(name=lab, nodes=2))
    rows = []
    try:
        cluster = k8snet.connect(lab=lab)
        with cluster.namespace("bench") as ns:
            cluster.apply(BACKENDS, ns)
            cluster.wait("Deployment", "backends", namespace=ns, timeout=120, progress=False)
            cluster.wait("Service", "backends", namespace=ns, timeout=60, progress=False)
            for run in range(args.runs):
                rows.append({"run": run, "lb_connections": args.connections, "lb_s": lb_run(cluster, ns, args.connections)})
        for row in rows:
            row["notebooks_s"] = notebooks_run(lab)
    finally:
        lifecycle.down(lab)
    summary = {k: spread([r[k] for r in rows]) for k in ("lb_s", "notebooks_s")}
    path = save(rows, "study-bench", {"runs": args.runs, "connections": args.connections},
                cluster={"proxy_mode": "iptables", "nodes": ["2 nodes"]},
                extra={"benchmark": "benchmarks/bench_study.py", "summary": summary,
                       "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
                       "goals": {"lb_s": 10.0, "notebooks_s": 300.0}})
    print(json.dumps({k: v["median"] for k, v in summary.items()}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
