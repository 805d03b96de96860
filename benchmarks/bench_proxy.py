"""Benchmark: kube-proxy's data path at scale, iptables vs nftables mode.

    sudo python3 benchmarks/bench_proxy.py [--sizes 100,1000,5000,10000] [--connections 1000]

For each number of Services and each mode, in throwaway namespaces (``k8snet-tb…``):
the lab's own renderers turn N synthetic ClusterIP Services (one endpoint each: a real
TCP server) into a full ruleset, ``apply_ruleset`` loads it into a node namespace
(timed: render + apply = "programming"), and a client namespace opens new TCP
connections to a few of the Services spread over the list. The connect() time (SYN
out, through the node's nat PREROUTING -> DNAT, SYN-ACK back) is the first-packet
latency; p50/p99 in µs. A direct connection to the endpoint (no Service) is the
baseline. Both modes are measured side by side in one run, on the same machine.
"Programming" is the initial sync (a fresh renderer, nothing cached); ``add_one_s``
is the next sync after one more Service appears, done as the lab's kube-proxy
does it: nftables sends only the new chains and map elements (a partial sync),
iptables re-renders from its per-service cache and restores both tables whole.

Published anchor (Kubernetes blog, "NFTables mode for kube-proxy", 2025): iptables
p50 grows ~47 -> 272 µs from 5,000 to 30,000 Services; nftables stays ~14 µs.
Goals: nftables flat within 1.2x from 100 to 10,000 Services; 10,000 Services
programmed in <= 2 s. Writes data/results/proxy-bench.csv and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from k8snet import results  # noqa: E402
from k8snet.lab.proxy.iptables import IptablesRenderer  # noqa: E402
from k8snet.lab.proxy.model import NodeInfo, ServicePort, build_model  # noqa: E402
from k8snet.lab.proxy.nftables import NftablesRenderer  # noqa: E402
from k8snet.lab.proxy.nftsync import nft_transaction  # noqa: E402
from k8snet.lab.proxy.proxy import apply_ruleset  # noqa: E402

NODE = NodeInfo(name="bench-node", ip="172.31.0.2", cluster_cidr="10.244.0.0/16")
GATEWAY, SERVER_IP, CLIENT_IP, PORT = "10.244.0.1", "10.244.0.10", "10.244.0.20", 8080
SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")
TARGETS = 5  # services the client dials, spread evenly over the list

SERVER = """
import socket
s = socket.create_server(("0.0.0.0", 8080), backlog=4096)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""
# N new connections round-robin over the targets: connect() times in µs (a warm-up
# round first, so the first-ever ARP/route lookups are not counted).
CLIENT = """
import json, socket, sys, time
targets, n = sys.argv[1].split(","), int(sys.argv[2])
def dial(ip):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\1\\0\\0\\0\\0\\0\\0\\0")
    t = time.perf_counter_ns(); s.connect((ip, 8080)); dt = time.perf_counter_ns() - t
    s.close(); return dt / 1000
for ip in targets: dial(ip)
print(json.dumps([dial(targets[i % len(targets)]) for i in range(n)]))
"""


def sh(*argv: str, input: str | None = None) -> str:
    done = subprocess.run(argv, input=input, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr}")
    return done.stdout


class Topology:
    """node <- veth -> client, node <- veth -> server: pods routed point-to-point, as in the lab."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.node, self.client, self.server = (f"k8snet-tb{tag}{s}" for s in "ncs")
        self.namespaces: list[str] = []
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        for ns in (self.node, self.client, self.server):
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, (ns, ip) in enumerate(((self.server, SERVER_IP), (self.client, CLIENT_IP))):
            sh("ip", "-n", self.node, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.node, "addr", "add", f"{GATEWAY}/32", "dev", f"v{i}")
            sh("ip", "-n", self.node, "link", "set", f"v{i}", "up")
            sh("ip", "-n", self.node, "route", "add", f"{ip}/32", "dev", f"v{i}")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
            sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        # Services are routed towards the node's only way out; DNAT happens before that matters.
        sh("ip", "-n", self.node, "route", "add", str(SERVICE_NET), "dev", "lo")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.server, sys.executable, "-c", SERVER],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def __exit__(self, *_: object) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def synthetic(n: int) -> tuple[list[dict], list[dict]]:
    """N ClusterIP Services (10.96.0.0/16 from .100 on), each with the one real server endpoint."""
    services, slices = [], []
    for i in range(n):
        name = f"svc-{i:05d}"
        services.append({"metadata": {"name": name, "namespace": "bench"},
                         "spec": {"clusterIP": str(SERVICE_NET[100 + i]), "type": "ClusterIP",
                                  "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}]}})
        slices.append({"metadata": {"name": f"{name}-x", "namespace": "bench",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [SERVER_IP], "nodeName": NODE.name,
                                      "conditions": {"ready": True}}]})
    return services, slices


def program(topo: Topology, mode: str, model: list[ServicePort]) -> tuple[float, float, float]:
    """Initial sync, then one more Service; returns (render_s, apply_s, add_one_s).

    Clears the other mode's rules first.
    """
    other = "nftables" if mode == "iptables" else "iptables"
    clear = "flush ruleset\n" if other == "nftables" else "*filter\nCOMMIT\n*nat\nCOMMIT\n"
    asyncio.run(apply_ruleset(topo.node, other, clear))
    nft, ipt = NftablesRenderer(NODE), IptablesRenderer(NODE)
    t0 = time.perf_counter()
    rules = nft.ruleset(model) if mode == "nftables" else None
    text = rules.text() if rules is not None else ipt.render(model)
    t1 = time.perf_counter()
    asyncio.run(apply_ruleset(topo.node, mode, text))
    t2 = time.perf_counter()
    n = len(model)
    extra = dataclasses.replace(model[-1], name=f"svc-{n:05d}", cluster_ip=str(SERVICE_NET[100 + n]))
    if rules is not None:
        text = nft_transaction(rules, nft.ruleset(model + [extra])) or ""
    else:
        text = ipt.render(model + [extra])
    asyncio.run(apply_ruleset(topo.node, mode, text))
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def dial(topo: Topology, targets: list[str], n: int) -> list[float]:
    out = sh("ip", "netns", "exec", topo.client, sys.executable, "-c", CLIENT, ",".join(targets), str(n))
    return json.loads(out)


def percentile(values: list[float], q: float) -> float:
    return float(pd.Series(values).quantile(q / 100))


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "iptables": sh("iptables", "--version").strip(), "nft": sh("nft", "--version").strip(),
            "python": sys.version.split()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000,10000")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--modes", default="iptables,nftables")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with Topology() as topo:
        for n in sizes:
            model = build_model(*synthetic(n), NODE.name)
            targets = [model[min(n - 1, round(k * (n - 1) / (TARGETS - 1)))].cluster_ip for k in range(TARGETS)]
            for mode in args.modes.split(","):
                render_s, apply_s, add_one_s = program(topo, mode, model)
                lat = dial(topo, targets, args.connections)
                direct = dial(topo, [SERVER_IP], args.connections // 2)
                row = {"mode": mode, "services": n, "connections": len(lat),
                       "p50_us": round(percentile(lat, 50), 1), "p99_us": round(percentile(lat, 99), 1),
                       "direct_p50_us": round(percentile(direct, 50), 1),
                       "render_s": round(render_s, 3), "apply_s": round(apply_s, 3),
                       "program_s": round(render_s + apply_s, 3), "add_one_s": round(add_one_s, 3),
                       "load_avg_1m": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    df = pd.DataFrame(rows)
    info = {"kind": "k8snet proxy renderers in throwaway namespaces", "proxy_mode": args.modes, "nodes": [NODE.name]}
    params = {"sizes": sizes, "connections": args.connections, "endpoints_per_service": 1,
              "targets": TARGETS, "machine": machine()}
    path = results.save(df, "proxy-bench", params, info)
    nft = df[df["mode"] == "nftables"].set_index("services")
    if len(nft) > 1:
        flat = nft["p50_us"].iloc[-1] / nft["p50_us"].iloc[0]
        print(f"nftables p50 {nft['p50_us'].iloc[-1]} / {nft['p50_us'].iloc[0]} µs = {flat:.2f}x (goal <= 1.2x)")
    for mode, part in df[df["services"] == max(sizes)].groupby("mode"):
        print(f"{mode}: {max(sizes)} services programmed in {part['program_s'].iloc[0]:.2f} s (goal <= 2 s), "
              f"one more in {part['add_one_s'].iloc[0] * 1000:.0f} ms")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
