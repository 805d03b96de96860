"""kube-proxy's rendered rules, loaded into a real node-like namespace (root).

Topology (as in docs/lab-architecture.md, without the rest of the lab): a node
namespace with eth0 towards a wire namespace and a default route, three endpoint namespaces and a
client namespace, each a /32 routed point-to-point through the node. The rules
come from the same functions the lab's kube-proxy uses.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Iterator

import pytest

from k8snet.lab.proxy.iptables import render_iptables
from k8snet.lab.proxy.model import NodeInfo, build_model
from k8snet.lab.proxy.nftables import render_nftables
from k8snet.lab.proxy.proxy import apply_ruleset

from .kube import assert_uniform

NODE = NodeInfo(name="t-node", ip="172.31.0.2", cluster_cidr="10.244.0.0/16")
GATEWAY = "10.244.0.1"
CLUSTER_IP, EMPTY_IP, NODE_PORT = "10.96.0.100", "10.96.0.101", 30080
ENDPOINT_IPS = ["10.244.0.10", "10.244.0.11", "10.244.0.12"]
CLIENT_IP = "10.244.0.20"

# Answers every connection with its namespace's name, then closes.
SERVER = """
import socket, sys
s = socket.create_server(("0.0.0.0", 8080), backlog=512)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode()); c.close()
"""
# Opens N new connections to host:port and prints {"answers": {...}, "errors": {...}}.
CLIENT = """
import collections, json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
answers, errors = collections.Counter(), collections.Counter()
for _ in range(n):
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=3) as c:
            answers[c.recv(64).decode()] += 1
    except OSError as e:
        errors[f"{type(e).__name__} after {time.monotonic() - t:.1f}s"] += 1
print(json.dumps({"answers": answers, "errors": errors}))
"""


def sh(*argv: str, input: str | None = None) -> str:
    done = subprocess.run(argv, input=input, text=True, capture_output=True)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


def run_in(ns: str, code: str, *args: str) -> dict:
    return json.loads(sh("ip", "netns", "exec", ns, sys.executable, "-c", code, *args))


class Topology:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.node = f"k8snet-t{tag}n"
        self.endpoints = [f"k8snet-t{tag}e{i}" for i in range(len(ENDPOINT_IPS))]
        self.client = f"k8snet-t{tag}c"
        self.wire = f"k8snet-t{tag}w"
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen] = []

    def add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build(self) -> None:
        self.add_ns(self.node)
        self.add_ns(self.wire)
        # eth0 to a stand-in wire namespace, as in the lab: the node IP is local,
        # and the default route makes cluster IPs routable, so unmatched ones reach FORWARD.
        sh("ip", "-n", self.node, "link", "add", "eth0", "type", "veth", "peer", "name", "n0", "netns", self.wire)
        sh("ip", "-n", self.wire, "addr", "add", "172.31.0.1/24", "dev", "n0")
        sh("ip", "-n", self.wire, "link", "set", "n0", "up")
        sh("ip", "-n", self.node, "addr", "add", f"{NODE.ip}/24", "dev", "eth0")
        sh("ip", "-n", self.node, "link", "set", "eth0", "up")
        sh("ip", "-n", self.node, "route", "add", "default", "via", "172.31.0.1", "dev", "eth0")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, (ns, ip) in enumerate(zip(self.endpoints + [self.client], ENDPOINT_IPS + [CLIENT_IP])):
            self.add_ns(ns)
            veth = f"v{i}"
            sh("ip", "-n", self.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.node, "addr", "add", f"{GATEWAY}/32", "dev", veth)
            sh("ip", "-n", self.node, "link", "set", veth, "up")
            sh("ip", "-n", self.node, "route", "add", f"{ip}/32", "dev", veth)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
            sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        for ns in self.endpoints:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, ns],
                                    stdout=subprocess.PIPE, text=True)
            self.servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def destroy(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


@pytest.fixture()
def topo() -> Iterator[Topology]:
    t = Topology()
    try:
        t.build()
        yield t
    finally:
        t.destroy()


def objects() -> tuple[list[dict], list[dict]]:
    def svc(name: str, ip: str, **spec: object) -> dict:
        return {"metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                                     "targetPort": 8080, **spec}],
                         "type": "NodePort" if spec else "ClusterIP"}}
    ready = {"ready": True, "serving": True, "terminating": False}
    slices = [{"metadata": {"name": "web-x1", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "web"}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
               "endpoints": [{"addresses": [ip], "nodeName": NODE.name, "conditions": ready}
                             for ip in ENDPOINT_IPS]}]
    return [svc("web", CLUSTER_IP, nodePort=NODE_PORT), svc("empty", EMPTY_IP)], slices


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_service_rules_in_a_node(topo: Topology, mode: str) -> None:
    services, slices = objects()
    model = build_model(services, slices, NODE.name)
    text = render_iptables(model, NODE) if mode == "iptables" else render_nftables(model, NODE)
    asyncio.run(apply_ruleset(topo.node, mode, text))

    # 300 new connections: every endpoint answers, and the spread is uniform.
    result = run_in(topo.client, CLIENT, CLUSTER_IP, "80", "300")
    assert result["errors"] == {}
    counts = [result["answers"].get(ns, 0) for ns in topo.endpoints]
    assert all(counts), counts
    assert_uniform(counts)

    # Hairpin: an endpoint reaching its own service gets an answer (maybe from itself).
    result = run_in(topo.endpoints[0], CLIENT, CLUSTER_IP, "80", "20")
    assert result["errors"] == {} and sum(result["answers"].values()) == 20

    # NodePort on the node's own address.
    result = run_in(topo.client, CLIENT, NODE.ip, str(NODE_PORT), "10")
    assert result["errors"] == {} and sum(result["answers"].values()) == 10

    # No endpoints: refused at once (REJECT), not a timeout.
    t = time.monotonic()
    result = run_in(topo.client, CLIENT, EMPTY_IP, "80", "3")
    assert list(result["errors"]) and all(k.startswith("ConnectionRefusedError") for k in result["errors"]), result
    assert time.monotonic() - t < 2.5
