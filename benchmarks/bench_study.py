"""Benchmark: the study's measurements and notebooks (issue: helper and notebooks).

    sudo python3 benchmarks/bench_study.py [--runs 3] [--connections 10000]

On a fresh lab, measures side by side in one run:
- ``lb10k_s``: one ``k8snet.lb_distribution`` run of ``--connections`` new
  connections to a 3-replica agnhost Service, end to end (probe ConfigMap and pod
  created, run, log read, pod deleted) — the goal is ≤ 10 s for 10,000;
- ``notebooks_s``: the whole notebook suite under ``pytest --nbval-lax`` (read-only:
  the committed notebooks are not rewritten) — the goal is ≤ 5 minutes.
Writes data/results/study-bench.csv and study-bench.json (machine, load, medians).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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
      - name: agnhost
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [serve-hostname]
        ports: [{containerPort: 9376}]
---
apiVersion: v1
kind: Service
metadata: {name: backends}
spec:
  selector: {app: backends}
  ports: [{port: 80, targetPort: 9376}]
"""


def lb_run(cluster: k8snet.Cluster, ns: str, connections: int) -> float:
    t0 = time.monotonic()
    _, summary = k8snet.lb_distribution(cluster, "backends", ns, connections=connections, path="/")
    elapsed = time.monotonic() - t0
    if sum(summary["counts"].values()) != connections:
        raise RuntimeError(f"lost connections: {summary}")
    return elapsed


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
    out = ROOT / "data" / "results"
    with open(out / "study-bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {k: statistics.median(r[k] for r in rows) for k in ("lb_s", "notebooks_s")}
    (out / "study-bench.json").write_text(json.dumps({
        "benchmark": "benchmarks/bench_study.py",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": args.runs, "connections": args.connections, "cluster": "k8snet lab, 2 nodes, iptables",
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}},
        "median_of_runs": summary,
        "goals": {"lb_s": 10.0, "notebooks_s": 300.0},
    }, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
