"""Benchmark: lab start-up and pod start-up (issue 12, items 3 and 4).

    sudo .venv/bin/python benchmarks/bench_lab.py [--runs 3] [--small 10] [--big 100] [--lab bench]
                                                  [--attach-seconds 5]

Measures, per run, on a fresh lab of 2 nodes:
- ``up_to_ready``: `k8snet lab up` until every node is Ready and DNS answers;
- ``up_to_reachable``: until a first nginx pod answers through its Service by DNS
  name (from a busybox pod: ``wget http://web``). The client waits, as ``kubectl
  rollout status`` would, until the nginx pod is in the Service's endpoints before it
  tries: a connection to a Service with no endpoint is REJECTed with an ICMP port
  unreachable, which reaches the client's ``connect()`` while that call still holds the
  socket, so the kernel keeps it as a soft error and reports the refusal only after
  the SYN's retransmission, 1 s later. A try that still meets the REJECT (kube-proxy's
  sync a few milliseconds behind the endpoints) pays that second, as a user would;
- for a ``--small``- (10) and a ``--big``-replica (100) Deployment: time from apply to all pods
  Running and listed in the endpoints, and each pod's start-up latency
  (first seen by a client-side watch → first seen Ready), as p50/p99;
- over the big Deployment, where the work went: CPU seconds of the lab's supervisor
  process (API server, controllers, kubelets, proxies), of the short-lived processes it
  reaped (``ip``, ``iptables-restore``) and of its live descendants (the containers), and
  the API writes (from the store's event log; each is a SQLite commit and a watch event).

To profile, ``--attach-seconds N`` prints the supervisor's pid and waits N seconds
before the big Deployment, time to attach a profiler by hand (py-spy, from a throw-away
venv: no tool of the project's), e.g.
``py-spy record -p PID -r 100 -f raw --idle --threads -d 15 -o start.raw``.
Writes data/results/lab-bench.csv and lab-bench.json (machine and conditions).
``benchmarks/run.py`` calls :func:`one_run` as its ``lab`` row.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.stream import stream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PodClock, percentile, save, spread, wait  # noqa: E402

from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, list[float]]:
    """(parent pid, [utime, stime, cutime, cstime] in seconds) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), [int(x) / TICK for x in fields[11:15]]


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU of ``root`` itself, of the children it reaped, and of its live descendants."""
    procs: dict[int, tuple[int, list[float]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                procs[int(entry)] = _stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile

    def below_root(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = procs.get(pid, (0, []))[0]
        return False

    own = procs[root][1]
    live = sum(sum(times[:2]) for pid, (_, times) in procs.items() if pid != root and below_root(pid))
    return {"supervisor": own[0] + own[1], "reaped": own[2] + own[3], "containers": live}


def store_writes(db_path: Path, since: int) -> int:
    """API writes after resource version ``since``: the store's event log, one row per write."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM events WHERE rv > ?", (since,)).fetchone()[0])
    finally:
        db.close()


def last_rv(db_path: Path) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT max(rv) FROM events").fetchone()[0] or 0)
    finally:
        db.close()


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
    wait(done, what=f"{replicas} endpoints of {name}")
    total = time.monotonic() - t0
    wait(lambda: len(clock.ready) == replicas, what=f"{replicas} pods of {name} seen Ready")
    return total, clock.startups()


def one_run(name: str = "bench", small: int = 10, big: int = 100, attach_seconds: float = 0.0) -> dict[str, float]:
    """One fresh lab ``name`` (2 nodes): up, a Service reachable by name, a ``small``-
    and a ``big``-replica Deployment; the lab is down again on return."""
    cfg = LabConfig(name=name, nodes=2)
    # The Python client imports an API group's models when it is first used (~0.45 s for
    # CoreV1Api with kubernetes 37): the measuring client's start-up, not the lab's.
    client.CoreV1Api, client.AppsV1Api  # noqa: B018
    t0 = time.monotonic()
    st = lifecycle.up(cfg)
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

        def web_in_endpoints() -> bool:
            try:
                ep = core.read_namespaced_endpoints("web", "default")
                probe = core.read_namespaced_pod("probe", "default")
            except client.ApiException:
                return False  # the Endpoints object (or the client pod) is not there yet
            return probe.status.phase == "Running" and any(s.addresses for s in ep.subsets or [])

        def reachable():
            try:
                out = stream(core.connect_get_namespaced_pod_exec, "probe", "default",
                             command=["wget", "-qO-", "http://web"], stderr=True, stdout=True, stdin=False, tty=False)
            except Exception:
                return False
            return "Welcome to nginx!" in out
        wait(web_in_endpoints, what="the nginx pod in its Service's endpoints")
        wait(reachable, every=0.05, what="nginx reachable through its Service")
        reach = time.monotonic() - t0
        ns = "bench"
        core.create_namespace({"metadata": {"name": ns}})
        tsmall, ssmall = deploy(apps, core, ns, "small", small)
        assert st.pid is not None
        if attach_seconds > 0:
            print(f"supervisor pid {st.pid}: the {big}-replica Deployment starts in {attach_seconds:g} s",
                  file=sys.stderr, flush=True)
            time.sleep(attach_seconds)
        rv0, cpu0 = last_rv(cfg.db_path), cpu_seconds(st.pid)
        tbig, sbig = deploy(apps, core, ns, "big", big)
        cpu1 = cpu_seconds(st.pid)
        time.sleep(1.0)  # the last status and endpoint writes of the big Deployment
        writes = store_writes(cfg.db_path, rv0)
        api.close()
    finally:
        lifecycle.down(name)
    return {"up_to_ready_s": ready, "up_to_reachable_s": reach,
            "deploy_small_all_ready_s": tsmall, "deploy_small_pod_startup_p50_s": percentile(ssmall, 50),
            "deploy_small_pod_startup_p99_s": percentile(ssmall, 99),
            "deploy_big_all_ready_s": tbig, "deploy_big_pod_startup_p50_s": percentile(sbig, 50),
            "deploy_big_pod_startup_p99_s": percentile(sbig, 99),
            **{f"deploy_big_{who}_cpu_s": cpu1[who] - cpu0[who] for who in cpu0},
            "deploy_big_cpu_per_pod_ms": sum(cpu1[who] - cpu0[who] for who in cpu0) / big * 1000,
            "deploy_big_api_writes": float(writes)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=100)
    parser.add_argument("--lab", default="bench", help="the lab's name (up and down once per run)")
    parser.add_argument("--attach-seconds", type=float, default=0.0,
                        help="print the supervisor's pid and wait this long before the big Deployment")
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    load_start = os.getloadavg()[0]  # other work on the machine skews the timings: record it
    rows: list[dict[str, Any]] = [{"run": i, **one_run(args.lab, args.small, args.big, args.attach_seconds)}
                                  for i in range(args.runs)]
    summary = {k: spread([r[k] for r in rows]) for k in rows[0] if k != "run"}
    params = {"runs": args.runs, "small_deployment": args.small, "big_deployment": args.big}
    path = save(rows, "lab-bench", params, cluster={"proxy_mode": "iptables", "nodes": ["2 nodes"]},
                extra={"benchmark": "benchmarks/bench_lab.py", "summary": summary,
                       "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}})
    print(json.dumps({k: v["median"] for k, v in summary.items()}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
