"""Benchmark: where a Deployment's pod start-up goes (docs/performance.md, "Pod start-up").

    sudo .venv/bin/python benchmarks/bench_podstart.py [--runs 3] [--small 10] [--big 100] [--lab pstart]
                                                       [--attach-seconds 3]

Per run, on a fresh 2-node lab: a ``--small`` and then a ``--big`` nginx Deployment
(``bench_lab.deploy``: time until all are in the endpoints, per-pod start-up first seen
→ Ready, p50/p99), and, over the big one: the CPU seconds of the lab's supervisor
process (API server, controllers, kubelets, proxies), of the short-lived processes it
waited for (``ip``, ``iptables-restore``) and of its live descendants (the containers:
their init and nginx), and the API writes by resource and type, read from the store's
event log. To profile, ``--attach-seconds N`` prints the supervisor's pid and waits N
seconds before the big Deployment, time to attach a profiler by hand (py-spy, from a
throw-away venv: it is no tool of the project's):
``py-spy record -p PID -r 100 -f raw --idle --threads -d 15 -o start.raw``.

To compare with an older commit, copy this file into a worktree of that commit and run
it from there, taking turns with this checkout (the script measures the ``k8snet`` of
the checkout it lives in). Prints one JSON line per run; writes nothing else.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lab import deploy  # noqa: E402
from common import percentile  # noqa: E402

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
    return {"supervisor": own[0] + own[1], "reaped_children": own[2] + own[3], "live_descendants": live}


def store_writes(db: sqlite3.Connection, since: int) -> dict[str, int]:
    rows = db.execute("SELECT key, type, count(*) FROM events WHERE rv > ? GROUP BY key, type", (since,))
    return {f"{key} {etype}": n for key, etype, n in rows}


def one_run(name: str, small: int, big: int, attach_seconds: float) -> dict[str, Any]:
    cfg = LabConfig(name=name, nodes=2)
    st = lifecycle.up(cfg)
    try:
        assert st.pid is not None
        api = config.new_client_from_config(config_file=str(st.kubeconfig))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespace({"metadata": {"name": "bench"}})
        small_all, small_startups = deploy(apps, core, "bench", "small", small)
        db = sqlite3.connect(f"file:{cfg.db_path}?mode=ro", uri=True)
        rv0 = db.execute("SELECT max(rv) FROM events").fetchone()[0]
        if attach_seconds > 0:
            print(f"supervisor pid {st.pid}: the {big}-replica Deployment starts in {attach_seconds:g} s",
                  file=sys.stderr, flush=True)
            time.sleep(attach_seconds)
        load = os.getloadavg()[0]
        cpu0 = cpu_seconds(st.pid)
        big_all, big_startups = deploy(apps, core, "bench", "big", big)
        cpu1 = cpu_seconds(st.pid)
        time.sleep(1.0)  # the last status and endpoint writes
        writes = store_writes(db, rv0)
        db.close()
        api.close()
    finally:
        lifecycle.down(name)
    return {"load_average_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
            "small_all_in_endpoints_s": round(small_all, 3),
            "small_startup_p50_s": round(percentile(small_startups, 50), 3),
            "small_startup_p99_s": round(percentile(small_startups, 99), 3),
            "big_all_in_endpoints_s": round(big_all, 3),
            "big_startup_p50_s": round(percentile(big_startups, 50), 3),
            "big_startup_p99_s": round(percentile(big_startups, 99), 3),
            "big_cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
            "big_api_writes": sum(writes.values()), "big_api_writes_by_kind": writes}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=100)
    parser.add_argument("--lab", default="pstart", help="the lab's name (up and down once per run)")
    parser.add_argument("--attach-seconds", type=float, default=0.0,
                        help="print the supervisor's pid and wait this long before the big Deployment")
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    for _ in range(args.runs):
        print(json.dumps(one_run(args.lab, args.small, args.big, args.attach_seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
