"""Benchmark: how many pods a lab holds on this machine (issue 12, item 8).

    sudo .venv/bin/python benchmarks/bench_scale.py [--runs 1] [--pods 1000] [--nodes 4] [--lab bench]

Per run, on a fresh lab of ``--nodes`` nodes: one Deployment of ``--pods`` busybox
``sleep`` pods, spread over the nodes by the lab's scheduler. Measures

- ``ready_p50_s`` / ``ready_p99_s``: each pod's start-up, first seen by a client-side
  watch → first seen Ready (the watch's clock, as in ``bench_lab.py``);
- ``all_ready_s``: the Deployment created → every pod seen Ready;
- ``memory_per_pod_kib``: what the pods added, divided by their number — the resident
  memory (RSS) of the lab's processes (the supervisor with its API server, controllers
  and kubelets, and every container process below it) plus the kernel's memory for
  them, both as the difference between just before the Deployment and after every
  pod is Ready. The kernel's part is read from /proc/meminfo: ``SUnreclaim`` (network
  namespaces, veths, sockets, netfilter rules, mount and pid namespaces live in
  unreclaimable slab), ``PageTables`` and ``KernelStack`` (per process), and ``Shmem``
  (each container's root and /dev are tmpfs). ``SReclaimable`` (dentry and inode
  caches the kernel drops under pressure) is recorded but not counted. The lab uses
  no cgroups, so /proc/meminfo is the only ledger: it is machine-wide, and other
  work on the machine during the run shows up in it — run this on a quiet machine.
  ``memory_pss_per_pod_kib`` counts the processes' PSS instead, which divides shared
  pages (busybox, libc, the supervisor's Python) among the processes that map them,
  where RSS counts them once in every process: RSS + kernel is an upper bound, PSS +
  kernel what another pod really costs;
- ``down_s``: ``lab down`` with every pod still running (``down_forced_removals``: what
  its cleanup had to remove by force, when the supervisor did not finish in the grace time).

The lab's nodes do not enforce kubelet's max-pods (110): 1,000 pods on 4 nodes is a
load test of this machine, not a shape a real cluster would accept.
``benchmarks/run.py`` calls :func:`one_run` as its ``scale`` row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PodClock, percentile, save, spread, wait  # noqa: E402

from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402

#: /proc/meminfo fields counted as the kernel's memory for the pods (see the docstring).
KERNEL_FIELDS = ("SUnreclaim", "PageTables", "KernelStack", "Shmem")


def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value.split()[0])
    return out


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (the lab's supervisor and its containers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the command may contain spaces and parentheses: the fields follow the last ")"
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def process_memory(pids: list[int]) -> dict[str, int]:
    """Summed RSS and PSS (KiB) of ``pids`` from smaps_rollup; processes that exited are skipped."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {"rss": rss, "pss": pss, "processes": len(pids)}


def snapshot(supervisor: int) -> dict[str, int]:
    info = meminfo()
    procs = process_memory(descendants(supervisor))
    return {"rss": procs["rss"], "pss": procs["pss"], "processes": procs["processes"],
            "kernel": sum(info.get(k, 0) for k in KERNEL_FIELDS), "slab_reclaimable": info.get("SReclaimable", 0),
            **{k: info.get(k, 0) for k in KERNEL_FIELDS}}


def sleepers(replicas: int) -> dict[str, Any]:
    return {"metadata": {"name": "sleepers"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "sleepers"}},
                     "template": {"metadata": {"labels": {"app": "sleepers"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                      {"name": "sleep", "image": "busybox", "command": ["sleep", "36000"]}]}}}}


def one_run(name: str = "bench", pods: int = 1000, nodes: int = 4) -> dict[str, float]:
    """A fresh lab ``name`` of ``nodes`` nodes holding ``pods`` sleeping pods; it is down on return."""
    st = lifecycle.up(LabConfig(name=name, nodes=nodes))
    try:
        assert st.pid is not None and st.kubeconfig is not None
        api = config.new_client_from_config(config_file=str(st.kubeconfig))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        ns = "scale"
        core.create_namespace({"metadata": {"name": ns}})
        clock = PodClock(core, ns, "app=sleepers")
        time.sleep(0.2)  # let the watch start before the pods exist
        before = snapshot(st.pid)
        t0 = time.monotonic()
        apps.create_namespaced_deployment(ns, sleepers(pods))
        # ~50 ms of CPU per pod on a 2-core machine; a stuck lab still fails within bounds
        wait(lambda: len(clock.ready) >= pods, timeout=max(120.0, pods * 0.6), every=0.1,
             what=f"{pods} pods seen Ready")
        all_ready = time.monotonic() - t0
        time.sleep(1.0)  # let the last status writes and log lines settle before reading memory
        after = snapshot(st.pid)
        placed = Counter(p.spec.node_name for p in core.list_namespaced_pod(ns, label_selector="app=sleepers").items)
        startups = clock.startups()
        api.close()
    except BaseException:
        lifecycle.down(name)
        raise
    t1 = time.monotonic()
    forced = lifecycle.down(name)  # what `k8snet lab down` calls, with its 15 s grace before SIGKILL
    down = time.monotonic() - t1
    delta = {k: after[k] - before[k] for k in before}
    return {"pods": pods, "nodes_used": len(placed), "pods_per_node_max": max(placed.values()),
            "ready_p50_s": percentile(startups, 50), "ready_p99_s": percentile(startups, 99),
            "all_ready_s": all_ready,
            "memory_per_pod_kib": (delta["rss"] + delta["kernel"]) / pods,
            "memory_pss_per_pod_kib": (delta["pss"] + delta["kernel"]) / pods,
            "rss_per_pod_kib": delta["rss"] / pods, "pss_per_pod_kib": delta["pss"] / pods,
            "kernel_per_pod_kib": delta["kernel"] / pods,
            **{f"{k.lower()}_per_pod_kib": delta[k] / pods for k in KERNEL_FIELDS},
            "slab_reclaimable_per_pod_kib": delta["slab_reclaimable"] / pods,
            "processes_per_pod": delta["processes"] / pods, "down_s": down,
            "down_forced_removals": len(forced)}  # > 0: the supervisor missed the grace and was killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--lab", default="bench", help="the lab's name (up and down once per run)")
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    rows: list[dict[str, Any]] = [{"run": i, **one_run(args.lab, args.pods, args.nodes)} for i in range(args.runs)]
    summary = {k: spread([r[k] for r in rows]) for k in rows[0] if k != "run"}
    path = save(rows, "scale-bench", {"runs": args.runs, "pods": args.pods, "nodes": args.nodes},
                cluster={"proxy_mode": "iptables", "nodes": [f"{args.nodes} nodes"]},
                extra={"benchmark": "benchmarks/bench_scale.py", "summary": summary})
    print(json.dumps({k: round(v["median"], 3) for k, v in summary.items()}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
