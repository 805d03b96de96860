"""Benchmark: kube-proxy's data path at scale, iptables vs nftables mode.

    sudo python3 benchmarks/bench_proxy.py [--sizes 100,1000,5000,10000] [--connections 1000]

For each number of Services and each mode, in throwaway namespaces (``k8snet-tb…``,
one node/client/server set per number of Services): the lab's own renderers turn N
synthetic ClusterIP Services (one endpoint each: a real TCP server) into a full
ruleset, ``apply_ruleset`` loads it into a node namespace (timed: render + apply =
"programming"), and a client namespace opens new TCP connections to a few of the
Services spread over the list. The connect() time (SYN out, through the node's nat
PREROUTING -> DNAT, SYN-ACK back) is the first-packet latency; p50/p99 in µs. A
direct connection to the endpoint (no Service) is the baseline. Every size of a mode
is programmed before any is dialled, and the sizes are then dialled in turns, a
fifth of the connections at a time, so the ratio between two sizes compares
connections made in the same seconds (dialled one size after the other, the ratio
moved with whatever the machine did in between: 0.62-1.85 within one benchmark).
Both modes are measured in one run, on the same machine.
Every sync runs the lab's kube-proxy code (model builder + backend): "programming"
is the initial full sync of a fresh proxy (nothing cached; render_s = model +
render, apply_s = the loader); ``add_one_s`` is the next sync after one more
Service appears and ``endpoint_change_s`` the one after a Service gains an
endpoint, both partial syncs (nftables: only the changed chains and map elements;
iptables: ``--noflush`` with only the changed chains); ``add_one_full_s`` loads the
add-one change whole, as iptables mode did on every sync before partial syncs (and
as a full resync still does), so before and after sit side by side in one run.

Published anchor (Kubernetes blog, "NFTables mode for kube-proxy", 2025): iptables
p50 grows ~47 -> 272 µs from 5,000 to 30,000 Services; nftables stays ~14 µs.
Goals (issue 12): nftables p50 flat within 1.2x from 100 to 10,000 Services; 10,000
Services programmed in < 1 s; one more in <= 0.2 s (iptables), <= 0.05 s (nftables).
Writes data/results/proxy-bench.csv and .json.
``benchmarks/run.py`` calls :func:`measure` as its ``proxy`` row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, percentile  # noqa: E402

from k8snet import results  # noqa: E402
from k8snet.lab.proxy.backend import apply_ruleset, backend_for  # noqa: E402
from k8snet.lab.proxy.model import ModelBuilder, NodeInfo, build_model  # noqa: E402

NODE = NodeInfo(name="bench-node", ip="172.31.0.2", cluster_cidr="10.244.0.0/16")
GATEWAY, SERVER_IP, CLIENT_IP, PORT = "10.244.0.1", "10.244.0.10", "10.244.0.20", 8080
SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")
TARGETS = 5  # services the client dials, spread evenly over the list

# The server and the client run on different CPUs (when there are two). connect()
# returns once the SYN-ACK is back, all of it processed in the client's own system
# call, but that path wakes the server's accept(): on the client's CPU the server
# would preempt the client first and add its accept()+close() (~8 µs here) to about
# half of the runs at random, which made the p50 bimodal (~10 or ~18 µs) whatever the
# number of Services. Pinned apart, the figure is the path through the rules alone.
_CPUS = sorted(os.sched_getaffinity(0))
CLIENT_CPU, SERVER_CPU = _CPUS[0], _CPUS[-1]  # one and the same on a one-CPU machine

SERVER = f"""
import os, socket
os.sched_setaffinity(0, {{{SERVER_CPU}}})
s = socket.create_server(("0.0.0.0", 8080), backlog=4096)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""
# N new connections round-robin over the targets: connect() times in µs (a warm-up
# round first, so the first-ever ARP/route lookups are not counted).
CLIENT = f"""
import json, os, socket, sys, time
os.sched_setaffinity(0, {{{CLIENT_CPU}}})
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

    def __init__(self, suffix: str = "") -> None:
        tag = f"{os.getpid() % 100000}{suffix}"
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
        # resourceVersions as the API server sets them: the proxy's model builder keys on them.
        services.append({"metadata": {"name": name, "namespace": "bench", "resourceVersion": "1"},
                         "spec": {"clusterIP": str(SERVICE_NET[100 + i]), "type": "ClusterIP",
                                  "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}]}})
        slices.append({"metadata": {"name": f"{name}-x", "namespace": "bench", "resourceVersion": "1",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [SERVER_IP], "nodeName": NODE.name,
                                      "conditions": {"ready": True}}]})
    return services, slices


@dataclasses.dataclass
class Programming:
    """Seconds for one mode at one size; each sync runs as in the lab's kube-proxy
    (model from the API objects, render, load)."""

    render_s: float  # initial sync: model + render (a fresh proxy, nothing cached)
    apply_s: float  # initial sync: iptables-restore / nft -f of the whole ruleset
    add_one_s: float  # next sync after one more Service appears (a partial sync)
    add_one_render_s: float  # its model + render + diff part
    endpoint_change_s: float  # next sync after one Service gains an endpoint (a partial sync)
    add_one_full_s: float  # the add-one change loaded whole (iptables mode before partial syncs)


def program(topo: Topology, mode: str, objects: tuple[list[dict], list[dict]]) -> Programming:
    """Initial sync, then the changes; clears the other mode's rules first."""
    other = "nftables" if mode == "iptables" else "iptables"
    clear = "flush ruleset\n" if other == "nftables" else "*filter\nCOMMIT\n*nat\nCOMMIT\n"
    asyncio.run(apply_ruleset(topo.node, other, clear))
    builder, backend = ModelBuilder(NODE.name), backend_for(mode, NODE)

    def sync(events: list[tuple[str, str, dict]], partial: bool = True) -> tuple[float, float]:
        """Feeds the watch events to the model as the lab's kube-proxy does, then syncs;
        (whole sync, model + render + diff) seconds."""
        start = time.perf_counter()
        for kind, etype, obj in events:
            (builder.service_event if kind == "service" else builder.slice_event)(etype, obj)
        model = builder.model()
        model_s = time.perf_counter() - start
        done = asyncio.run(backend.apply(topo.node, model))
        assert done.changed and done.full != partial, done
        return time.perf_counter() - start, model_s + done.render_s

    services, slices = objects
    initial_s, render_s = sync([("service", "ADDED", o) for o in services] +
                               [("slice", "ADDED", o) for o in slices], partial=False)
    n = len(services)
    more_services, more_slices = synthetic(n + 1)
    services1, slices1 = services + more_services[-1:], slices + more_slices[-1:]
    add_one_s, add_one_render_s = sync([("service", "ADDED", services1[-1]), ("slice", "ADDED", slices1[-1])])
    # One Service in the middle gains a second endpoint (a new version of its slice).
    grown = slices1[n // 2]
    grown = {**grown, "metadata": {**grown["metadata"], "resourceVersion": "2"},
             "endpoints": grown["endpoints"] + [{"addresses": ["10.244.0.99"], "nodeName": NODE.name,
                                                 "conditions": {"ready": True}}]}
    endpoint_change_s, _ = sync([("slice", "MODIFIED", grown)])
    # The add-one change again, loaded whole: what iptables mode did on every sync
    # before partial syncs, and what any full resync costs now.
    asyncio.run(apply_ruleset(topo.node, mode, backend.render(build_model(services, slices, NODE.name))))
    model1 = build_model(services1, slices1, NODE.name)
    start = time.perf_counter()
    asyncio.run(apply_ruleset(topo.node, mode, backend.render(model1)))
    add_one_full_s = time.perf_counter() - start
    backend.close()
    return Programming(render_s, initial_s - render_s, add_one_s, add_one_render_s, endpoint_change_s,
                       add_one_full_s)


def dial(topo: Topology, targets: list[str], n: int) -> list[float]:
    out = sh("ip", "netns", "exec", topo.client, sys.executable, "-c", CLIENT, ",".join(targets), str(n))
    return json.loads(out)


def measure(sizes: list[int], connections: int = 1000, modes: tuple[str, ...] = ("iptables", "nftables"),
            *, echo: bool = False, rounds: int = 5) -> list[dict]:
    """One row per (size, mode): a throwaway topology per size, all up at once; in each
    mode every size is programmed, then dialled in turns (``rounds`` rounds)."""
    rows = []
    with contextlib.ExitStack() as stack:
        topos = {n: stack.enter_context(Topology(suffix=f"x{i}")) for i, n in enumerate(sizes)}
        objects = {n: synthetic(n) for n in sizes}
        targets = {}
        for n in sizes:
            model = build_model(*objects[n], NODE.name)
            targets[n] = [model[min(n - 1, round(k * (n - 1) / (TARGETS - 1)))].cluster_ip for k in range(TARGETS)]
        per_round = max(connections // rounds, 1)
        for mode in modes:
            programmed = {n: program(topos[n], mode, objects[n]) for n in sizes}
            lat: dict[int, list[float]] = {n: [] for n in sizes}
            direct: dict[int, list[float]] = {n: [] for n in sizes}
            for _ in range(rounds):
                for n in sizes:
                    lat[n] += dial(topos[n], targets[n], per_round)
                    direct[n] += dial(topos[n], [SERVER_IP], max(per_round // 2, 1))
            for n in sizes:
                p = programmed[n]
                row = {"mode": mode, "services": n, "connections": len(lat[n]),
                       "p50_us": round(percentile(lat[n], 50), 1), "p99_us": round(percentile(lat[n], 99), 1),
                       "direct_p50_us": round(percentile(direct[n], 50), 1),
                       "render_s": round(p.render_s, 3), "apply_s": round(p.apply_s, 3),
                       "program_s": round(p.render_s + p.apply_s, 3), "add_one_s": round(p.add_one_s, 3),
                       "add_one_render_s": round(p.add_one_render_s, 3),
                       "endpoint_change_s": round(p.endpoint_change_s, 3),
                       "add_one_full_s": round(p.add_one_full_s, 3),
                       "load_avg_1m": round(os.getloadavg()[0], 2)}
                rows.append(row)
                if echo:
                    print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000,10000")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--modes", default="iptables,nftables")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    df = pd.DataFrame(measure(sizes, args.connections, tuple(args.modes.split(",")), echo=True))
    info = {"kind": "k8snet proxy renderers in throwaway namespaces", "proxy_mode": args.modes, "nodes": [NODE.name]}
    params = {"sizes": sizes, "connections": args.connections, "endpoints_per_service": 1,
              "targets": TARGETS, "machine": machine()}
    path = results.save(df, "proxy-bench", params, info)
    nft = df[df["mode"] == "nftables"].set_index("services")
    if len(nft) > 1:
        flat = nft["p50_us"].iloc[-1] / nft["p50_us"].iloc[0]
        print(f"nftables p50 {nft['p50_us'].iloc[-1]} / {nft['p50_us'].iloc[0]} µs = {flat:.2f}x (goal <= 1.2x)")
    for mode, part in df[df["services"] == max(sizes)].groupby("mode"):
        print(f"{mode}: {max(sizes)} services programmed in {part['program_s'].iloc[0]:.2f} s (goal <= 1 s), "
              f"one more in {part['add_one_s'].iloc[0] * 1000:.0f} ms (loaded whole: "
              f"{part['add_one_full_s'].iloc[0] * 1000:.0f} ms), an endpoint change in "
              f"{part['endpoint_change_s'].iloc[0] * 1000:.0f} ms")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
