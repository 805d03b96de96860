"""Benchmark: the study's measurements and notebooks (issue: helper and notebooks).

    sudo python3 benchmarks/bench_study.py [--runs 3] [--connections 10000] [--baseline REF] [--no-notebooks]

On a fresh lab, measures side by side in one run:
- ``lb10k_s``: one ``k8snet.lb_distribution`` run of ``--connections`` new
  connections to a 3-replica agnhost Service, end to end (probe ConfigMap and pod
  created, run, log read, pod deleted) — the goal is ≤ 10 s for 10,000;
- ``lb_baseline_s`` (with ``--baseline REF``): the same run by the k8snet of git
  revision REF (e.g. ``HEAD~3``), taking turns with this checkout's on the same lab and
  backends, so old and new measurement paths are compared under the same load;
- ``notebooks_s``: the whole notebook suite under ``pytest --nbval-lax`` as the test
  command runs it, two notebooks at a time (read-only: the committed notebooks are not
  rewritten) — the goal is ≤ 5 minutes.
Writes data/results/study-bench.csv and study-bench.json (machine, load, medians).
``benchmarks/run.py`` calls :func:`one_run` (with ClusterIP vs pod IP connect latency)
as its ``study`` row and :func:`notebooks_run` as its ``notebooks`` row.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, save, spread  # noqa: E402

import k8snet  # noqa: E402
from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

#: notebooks at a time under nbval, as scripts/test.sh runs them (CI)
NBVAL_WORKERS = 2

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


BASELINE_RUN = """
import json, sys, time
import k8snet
cluster = k8snet.connect(lab=sys.argv[1])
t0 = time.monotonic()
_, summary = k8snet.lb_distribution(cluster, "backends", sys.argv[2], connections=int(sys.argv[3]), path="/")
print(json.dumps({"seconds": time.monotonic() - t0, "answered": sum(summary["counts"].values())}))
"""


def checkout(ref: str) -> Path:
    """The k8snet package of git revision ``ref``, unpacked into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="k8snet-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "k8snet"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder)  # our own repository's files
    return folder


def lb_baseline_run(baseline: Path, lab: str, ns: str, connections: int) -> float:
    """``lb_run`` by the baseline's k8snet in its own interpreter (timed there, so its
    imports do not count)."""
    env = {**os.environ, "PYTHONPATH": str(baseline)}
    out = subprocess.run([sys.executable, "-c", BASELINE_RUN, lab, ns, str(connections)], env=env,
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["answered"] != connections:
        raise RuntimeError(f"baseline lost connections: {result}")
    return float(result["seconds"])


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


def deploy_backends(cluster: k8snet.Cluster, ns: str) -> None:
    """The measured Services and their pods, waited for until they serve."""
    cluster.apply(BACKENDS, ns)
    cluster.wait("Deployment", "backends", namespace=ns, timeout=120, progress=False)
    for service in ("backends", "solo"):
        cluster.wait("Service", service, namespace=ns, timeout=60, progress=False)


def one_run(lab: str, connections: int = 10000, latency_connections: int = 300) -> dict[str, float]:
    """A fresh lab ``lab``: one ``lb_distribution`` of ``connections`` and ClusterIP vs
    pod IP connect latency; the lab is down again on return."""
    lifecycle.up(LabConfig(name=lab, nodes=2))
    try:
        cluster = k8snet.connect(lab=lab)
        with cluster.namespace("bench") as ns:
            deploy_backends(cluster, ns)
            return {"lb_s": lb_run(cluster, ns, connections),
                    "clusterip_over_pod_ip_p50": clusterip_over_pod_ip(cluster, ns, latency_connections)}
    finally:
        lifecycle.down(lab)


def notebooks_run(lab: str, workers: int = NBVAL_WORKERS) -> float:
    """Seconds for nbval over every notebook on ``lab``, ``workers`` notebooks at a time
    (scripts/test.sh runs NBVAL_WORKERS; 1 is one after another)."""
    # the kit's kubectl first, as scripts/test.sh has it: a `kubectl` elsewhere on root's PATH may not be one
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # the notebooks' measurements go to a folder that goes with the run, not to data/results
    with tempfile.TemporaryDirectory(prefix="k8snet-bench-results-") as results:
        env = {**os.environ, "PATH": path, "K8SNET_LAB": lab, "PYTHONPATH": str(ROOT), "K8SNET_RESULTS_DIR": results}
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "notebooks/", "-q", "-p", "no:cacheprovider",
                               "--nbval-sanitize-with", "tests/notebooks/sanitize.cfg",
                               *(["-n", str(workers), "--dist", "loadfile"] if workers > 1 else [])],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
    if proc.returncode != 0:  # the failed cells and pytest's summary line; the whole output is too long to keep
        lines = proc.stdout.strip().splitlines()
        raise RuntimeError("; ".join([*(line for line in lines if line.startswith("FAILED ")), *lines[-1:]]))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--baseline", metavar="REF", help="also time lb_distribution as git revision REF has it")
    parser.add_argument("--no-notebooks", action="store_true", help="only the lb_distribution rows")
    parser.add_argument("--lab", default="benchstudy", help="name of the fresh lab brought up for the run")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "results", help="folder for the CSV and JSON")
    args = parser.parse_args()
    baseline = checkout(args.baseline) if args.baseline else None
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    lab = args.lab
    load_start = os.getloadavg()[0]
    lifecycle.up(LabConfig(name=lab))  # 3 nodes, as CI: the notebooks' committed outputs count them
    rows = []
    try:
        cluster = k8snet.connect(lab=lab)
        with cluster.namespace("bench") as ns:
            deploy_backends(cluster, ns)
            for run in range(args.runs):
                row: dict[str, float] = {"run": run, "lb_connections": args.connections}
                # old and new take turns, and which goes first alternates, so drift in the
                # machine's load falls on both alike
                order = ["new", "baseline"] if run % 2 == 0 else ["baseline", "new"]
                for which in order if baseline else ["new"]:
                    if which == "new":
                        row["lb_s"] = lb_run(cluster, ns, args.connections)
                    elif baseline is not None:
                        row["lb_baseline_s"] = lb_baseline_run(baseline, lab, ns, args.connections)
                rows.append(row)
        for row in rows:
            if not args.no_notebooks:
                row["notebooks_s"] = notebooks_run(lab)
    finally:
        lifecycle.down(lab)
        if baseline:
            shutil.rmtree(baseline)
    keys = [k for k in ("lb_s", "lb_baseline_s", "notebooks_s") if k in rows[0]]
    summary = {k: spread([r[k] for r in rows]) for k in keys}
    path = save(rows, "study-bench", {"runs": args.runs, "connections": args.connections, "baseline": args.baseline},
                cluster={"proxy_mode": "iptables", "nodes": ["2 nodes"]}, directory=args.out,
                extra={"benchmark": "benchmarks/bench_study.py", "summary": summary,
                       "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
                       "goals": {"lb_s": 3.0, "notebooks_s": 300.0}})
    print(json.dumps({k: v["median"] for k, v in summary.items()}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
