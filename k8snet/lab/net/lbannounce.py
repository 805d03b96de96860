"""Announcing LoadBalancer addresses on the node network, like MetalLB's layer 2 mode.

The LoadBalancer controller (:mod:`k8snet.lab.controllers.loadbalancer`) only writes
``status.loadBalancer.ingress``. This loop, run by the supervisor, makes each such
address answer on the node network: one node holds it as a /32 on its eth0, so it
answers the host's ARP requests; kube-proxy on that node then DNATs the traffic.

Which node: the election MetalLB's speakers run, each node ranked by
sha256("<node>#<ip>"), the first eligible node wins, so the choice is stable and
spreads addresses over nodes. Under ``externalTrafficPolicy: Local`` only nodes with
a ready local endpoint are eligible (kube-proxy drops external traffic on the
others); with none, the address is not announced at all. On a move, the old node
drops the address first and the new one sends a gratuitous ARP so the host's
neighbour entry follows at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import socket
import struct
from typing import Iterable

from k8snet.lab.config import LabConfig
from k8snet.lab.contracts import ApiClient, Obj
from k8snet.lab.events import EventRecorder
from k8snet.lab.net import nsutil
from k8snet.lab.servicewatch import ServiceWatch

log = logging.getLogger(__name__)

NODE_IFACE = "eth0"
COMPONENT = "lb-announcer"
MIN_SYNC_INTERVAL_SECONDS = 0.02


# -- pure decisions ------------------------------------------------------------------

def election_order(ip: str, nodes: Iterable[str]) -> list[str]:
    """Nodes ranked for ``ip`` (MetalLB: sha256 of "<node>#<ip>", lowest first)."""
    return sorted(nodes, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest())


def _ready_endpoint_nodes(slices: Iterable[Obj]) -> set[str]:
    nodes = set()
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            if ep.get("nodeName") and (ep.get("conditions") or {}).get("ready") is not False:
                nodes.add(ep["nodeName"])
    return nodes


def assignments(services: Iterable[Obj], slices: Iterable[Obj], nodes: list[str],
                pool: Iterable[str]) -> dict[str, tuple[str, Obj]]:
    """``{ip: (announcing node, service)}`` for every LoadBalancer address of the
    lab's pool that should answer now."""
    pool = set(pool)
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((meta.get("namespace", ""), owner), []).append(sl)
    out: dict[str, tuple[str, Obj]] = {}
    for svc in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass"):
            continue
        eligible = list(nodes)
        if spec.get("externalTrafficPolicy") == "Local":
            key = (svc["metadata"].get("namespace", ""), svc["metadata"]["name"])
            local = _ready_endpoint_nodes(by_service.get(key, []))
            eligible = [n for n in nodes if n in local]
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            ip = ing.get("ip")
            if ip in pool and ip not in out and eligible:
                out[ip] = (election_order(ip, eligible)[0], svc)
    return out


def garp_frame(mac: bytes, ip: str) -> bytes:
    """A gratuitous ARP request (sender = target = ``ip``), broadcast."""
    addr = ipaddress.IPv4Address(ip).packed
    return (b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\x00" * 6 + addr)


def send_gratuitous_arp(netns: str, ifname: str, ip: str) -> None:
    with nsutil.in_netns(netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    with sock:
        sock.bind((ifname, 0))
        mac = sock.getsockname()[4]
        sock.send(garp_frame(mac, ip))


# -- the loop -------------------------------------------------------------------------

class Announcer:
    def __init__(self, config: LabConfig, client: ApiClient):
        self.config = config
        self.watch = ServiceWatch(client, COMPONENT)
        self.services, self.slices = self.watch.services, self.watch.slices
        self.recorder = EventRecorder(client, COMPONENT)
        self.current: dict[str, str] = {}  # ip -> node now holding it

    async def run(self) -> None:
        """Runs until cancelled."""
        await self.watch.run(self.sync, min_interval=MIN_SYNC_INTERVAL_SECONDS, retry_on=(nsutil.NetError, OSError))

    async def sync(self) -> None:
        want = assignments(self.services.items(), self.slices.items(), self.config.node_names,
                           self.config.loadbalancer_pool)
        # Withdraw first, so two nodes never answer for one address at once.
        for ip, node in list(self.current.items()):
            if ip not in want or want[ip][0] != node:
                await self._ip(node, f"addr del {ip}/32 dev {NODE_IFACE}")
                del self.current[ip]
        for ip, (node, svc) in want.items():
            if self.current.get(ip) == node:
                continue
            await self._ip(node, f"addr replace {ip}/32 dev {NODE_IFACE}")
            self.current[ip] = node
            netns = self.config.node_netns(self.config.node_names.index(node))
            await asyncio.to_thread(send_gratuitous_arp, netns, NODE_IFACE, ip)
            await self.recorder.record(svc, "Normal", "nodeAssigned",
                                       f'announcing from node "{node}" with protocol "layer2"',
                                       kind="Service", api_version="v1")

    async def _ip(self, node: str, command: str) -> None:
        netns = self.config.node_netns(self.config.node_names.index(node))
        try:
            await nsutil.ip_batch([command], netns)
        except nsutil.NetError as err:
            # Already gone (del) is what we wanted; anything else is retried.
            if "Cannot assign requested address" not in str(err):
                raise
