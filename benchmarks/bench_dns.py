"""Benchmark: the lab's cluster DNS against dnsmasq, side by side in one run (issue 12).

    sudo python3 benchmarks/bench_dns.py [--runs 3] [--seconds 10] [--rate 10000] [--name dnsbench]

Starts a lab, creates ``--services`` ClusterIP Services and a busybox client pod, and
runs ``dnsperf`` from the client pod's network namespace (A queries for the Services'
FQDNs, one query file for every server) against:

- ``lab-svc``: the cluster DNS through the ``kube-dns`` ClusterIP, as pods ask it;
- ``lab-pod``: the cluster DNS at the coredns pod's own address (port 53);
- ``dnsmasq``: a dnsmasq started inside the coredns pod's network namespace (port
  5353), serving the same names from a hosts file with the same 30 s TTL, so it and
  ``lab-pod`` differ only in the server answering.

Per server and round, two dnsperf runs: ``throughput`` (``-q 100``: as many queries
as 100 outstanding allow) and ``fixed`` (``-Q --rate``: per-query latency from
``-v``, p50/p99). The order of the servers alternates between rounds. Writes
data/results/dns-bench.csv (one row per dnsperf run) and dns-bench.json (medians,
the ratio lab-pod ÷ dnsmasq, machine and conditions). :func:`one_run` is the same
measurement as ``benchmarks/run.py``'s ``dns`` row.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from k8snet.lab import lifecycle  # noqa: E402
from k8snet.lab.config import LabConfig  # noqa: E402
from k8snet.lab.net.podnet import pod_netns_name  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "data" / "results"
DOMAIN = "cluster.local"
DNSMASQ_PORT = 5353
OUTSTANDING = 100  # dnsperf -q, as in the measurement


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def wait(pred, timeout=120.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(every)
    raise TimeoutError


def in_netns(netns: str, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)


def answers(netns: str, server: str, port: int, name: str) -> bool:
    out = in_netns(netns, "dig", "+short", "+time=1", "+tries=1", "-p", str(port), f"@{server}", name, "A").stdout
    return bool(re.fullmatch(r"\d+\.\d+\.\d+\.\d+\n", out))


def pod_of(core, ns: str, selector: str):
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    return pods[0] if pods and pods[0].status.phase == "Running" and pods[0].status.pod_ip else None


def dnsperf(netns: str, server: str, port: int, queries: Path, seconds: float, rate: int | None) -> dict:
    """One dnsperf run; ``rate`` None is the throughput mode, otherwise a fixed rate with
    every query's latency (``-v``) for the percentiles."""
    argv = ["dnsperf", "-s", server, "-p", str(port), "-d", str(queries), "-l", str(seconds), "-q", str(OUTSTANDING)]
    if rate is not None:
        argv += ["-Q", str(rate), "-v"]
    out = in_netns(netns, *argv, timeout=seconds + 60).stdout

    def stat(label: str) -> float:
        found = re.search(rf"^\s*{label}:\s+([\d.]+)", out, re.M)
        if found is None:
            raise RuntimeError(f"dnsperf printed no {label!r}:\n{out[-2000:]}")
        return float(found.group(1))

    row = {"qps": stat("Queries per second"), "sent": int(stat("Queries sent")),
           "lost": int(stat("Queries lost")), "avg_ms": stat(r"Average Latency \(s\)") * 1000}
    if rate is not None:
        latencies = [float(m) * 1000 for m in re.findall(r"^> NOERROR \S+ A ([\d.]+)$", out, re.M)]
        row.update(p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99))
    return row


class Dnsmasq:
    """dnsmasq serving ``hosts`` on ``ip:port`` inside ``netns``, nothing else: no upstream,
    no /etc/hosts, no DHCP, logs and pid file in ``workdir`` (the host stays as it was)."""

    def __init__(self, netns: str, ip: str, port: int, hosts: Path, ttl: int, workdir: Path):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}", f"--local-ttl={ttl}", "--bind-interfaces",
             f"--listen-address={ip}", f"--port={port}", f"--pid-file={workdir / 'dnsmasq.pid'}",
             f"--log-facility={workdir / 'dnsmasq.log'}", "--user=root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def measure(lab_name: str, workdir: Path, *, services: int, runs: int, seconds: float, rate: int,
            ttl: int = 30, keep: bool = False) -> tuple[list[dict], dict]:
    """A fresh lab ``lab_name`` (down again on return unless ``keep``): ``runs`` rounds of
    dnsperf against each server; one row per dnsperf run, and the conditions."""
    lab_config = LabConfig(name=lab_name, nodes=2)
    t0 = time.monotonic()
    status = lifecycle.up(lab_config)
    conditions = {"lab_up_s": round(time.monotonic() - t0, 2)}
    dnsmasq = None
    try:
        api = config.new_client_from_config(config_file=str(status.kubeconfig))
        core = client.CoreV1Api(api)
        names = []
        for i in range(services):
            svc = core.create_namespaced_service("default", {"metadata": {"name": f"bench-{i}"}, "spec": {
                "selector": {"app": f"bench-{i}"}, "ports": [{"port": 80}]}})
            names.append((f"bench-{i}.default.svc.{DOMAIN}", svc.spec.cluster_ip))
        core.create_namespaced_pod("default", {"metadata": {"name": "dnsperf", "labels": {"app": "dnsperf"}},
                                               "spec": {"containers": [{"name": "c", "image": "busybox",
                                                                        "command": ["sleep", "36000"]}]}})
        wait(lambda: pod_of(core, "default", "app=dnsperf") is not None)
        client_ns = pod_netns_name(lab_config, pod_of(core, "default", "app=dnsperf").metadata.uid)
        dns_pod = pod_of(core, "kube-system", "k8s-app=kube-dns")
        dns_ns, dns_ip = pod_netns_name(lab_config, dns_pod.metadata.uid), dns_pod.status.pod_ip
        api.close()

        queries, hosts = workdir / "queries.txt", workdir / "hosts"
        queries.write_text("".join(f"{name} A\n" for name, _ in names))
        hosts.write_text("".join(f"{ip} {name}\n" for name, ip in names))
        dnsmasq = Dnsmasq(dns_ns, dns_ip, DNSMASQ_PORT, hosts, ttl, workdir)
        targets = {"lab-svc": (lab_config.dns_service_ip, 53), "lab-pod": (dns_ip, 53),
                   "dnsmasq": (dns_ip, DNSMASQ_PORT)}
        for server, port in targets.values():
            wait(lambda server=server, port=port: answers(client_ns, server, port, names[-1][0]))

        rows = []
        for run in range(runs):
            order = list(targets) if run % 2 == 0 else list(reversed(targets))
            for target in order:
                server, port = targets[target]
                for mode, mode_rate in (("throughput", None), ("fixed", rate)):
                    row = {"run": run, "target": target, "mode": mode, "rate": mode_rate or "",
                           **dnsperf(client_ns, server, port, queries, seconds, mode_rate),
                           "loadavg_1m": os.getloadavg()[0]}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        conditions.update(client_netns=client_ns, dns_netns=dns_ns, dns_pod_ip=dns_ip)
        return rows, conditions
    finally:
        if dnsmasq is not None:
            dnsmasq.stop()
        if not keep:
            lifecycle.down(lab_name)


def measure_in_tempdir(lab_name: str, **sizes: Any) -> tuple[list[dict], dict]:
    """:func:`measure` with the query file, hosts file and dnsmasq's files in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="k8snet-dnsbench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        return measure(lab_name, workdir, **sizes)


def summarize(rows: list[dict]) -> dict:
    summary: dict[str, dict] = {}
    for target in dict.fromkeys(r["target"] for r in rows):
        mine = [r for r in rows if r["target"] == target]
        thr = [r for r in mine if r["mode"] == "throughput"]
        fixed = [r for r in mine if r["mode"] == "fixed"]
        summary[target] = {
            "throughput_qps": {"min": min(r["qps"] for r in thr), "median": statistics.median(r["qps"] for r in thr),
                               "max": max(r["qps"] for r in thr)},
            "fixed_rate_qps_median": statistics.median(r["qps"] for r in fixed),
            "fixed_rate_p50_ms_median": statistics.median(r["p50_ms"] for r in fixed),
            "fixed_rate_p99_ms_median": statistics.median(r["p99_ms"] for r in fixed),
            "fixed_rate_lost_median": statistics.median(r["lost"] for r in fixed),
        }
    return summary


def ratio_of(summary: dict) -> float:
    """lab-pod ÷ dnsmasq median throughput: the two differ only in the server answering."""
    return summary["lab-pod"]["throughput_qps"]["median"] / summary["dnsmasq"]["throughput_qps"]["median"]


def one_run(lab: str, services: int = 10, seconds: float = 10, rate: int = 10000, rounds: int = 2) -> dict[str, float]:
    """``benchmarks/run.py``'s ``dns`` row: a fresh lab ``lab`` (down again on return),
    ``rounds`` rounds of the servers (the order alternates between rounds), medians per
    server: throughput QPS, and QPS / p50 / p99 / lost at the fixed ``rate``."""
    rows, _ = measure_in_tempdir(lab, services=services, runs=rounds, seconds=seconds, rate=rate)
    summary = summarize(rows)
    out = {"qps_ratio": ratio_of(summary)}
    for target, s in summary.items():
        key = target.replace("-", "_")
        out |= {f"{key}_qps": s["throughput_qps"]["median"], f"{key}_fixed_qps": s["fixed_rate_qps_median"],
                f"{key}_p50_ms": s["fixed_rate_p50_ms_median"], f"{key}_p99_ms": s["fixed_rate_p99_ms_median"],
                f"{key}_lost": s["fixed_rate_lost_median"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="length of each dnsperf run")
    parser.add_argument("--rate", type=int, default=10000, help="queries per second of the fixed-rate runs")
    parser.add_argument("--services", type=int, default=10, help="Services, one query-file line each")
    parser.add_argument("--ttl", type=int, default=30, help="dnsmasq's TTL, the lab DNS's (kubeadm's ttl 30)")
    parser.add_argument("--name", default="dnsbench", help="name of the lab the benchmark starts")
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--out", default="dns-bench", help="file stem under data/results/")
    args = parser.parse_args()
    os.environ.setdefault("K8SNET_STATE_ROOT", "/tmp/k8snet-bench")
    load_start = os.getloadavg()[0]  # other work on the machine skews the figures: record it
    rows, conditions = measure_in_tempdir(args.name, services=args.services, runs=args.runs, seconds=args.seconds,
                                          rate=args.rate, ttl=args.ttl, keep=args.keep)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fields = ["run", "target", "mode", "rate", "qps", "sent", "lost", "avg_ms", "p50_ms", "p99_ms", "loadavg_1m"]
    with open(RESULTS / f"{args.out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows)
    ratio = ratio_of(summary)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    usage = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True)
    dnsperf_version = re.search(r"Version (\S+)", usage.stdout + usage.stderr)
    provenance = {
        "benchmark": "benchmarks/bench_dns.py", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "runs": args.runs, "seconds_per_dnsperf_run": args.seconds, "outstanding": OUTSTANDING,
        "fixed_rate_qps": args.rate, "services": args.services, "query": "A for a Service FQDN",
        "dnsperf": dnsperf_version.group(1) if dnsperf_version else None,
        "conditions": conditions,
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "loadavg_1m_start": load_start, "loadavg_1m_end": os.getloadavg()[0]},
        "median_of_runs": summary,
        "ratio_lab_pod_to_dnsmasq_throughput": round(ratio, 3),
        "goals": {"ratio_lab_pod_to_dnsmasq_throughput": 0.5, "fixed_rate_qps": 10000, "fixed_rate_p99_ms": 1.0},
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps({"median_of_runs": summary, "ratio_lab_pod_to_dnsmasq": round(ratio, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
