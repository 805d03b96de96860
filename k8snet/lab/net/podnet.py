"""Pod network namespaces on one node, wired kindnet-"ptp" style.

Each pod gets its own namespace ``<lab prefix>p<hash>`` and a veth pair: ``eth0``
in the pod with a /32 from the node's pod CIDR, ``v<hash>`` in the node namespace
with the node's gateway address (.1/32, shared by all pod veths) and a /32 route to
the pod. Setup starts no process: one thread (``nsutil.run_in_new_netns``) creates the namespace as ``ip
netns add`` would (``nsutil.create_netns_here``) and, from inside it, sends the lines
an ``ip -batch`` would take as rtnetlink requests (``rtnl``): the veth pair (its peer
created straight into the node namespace), the pod side, then, switched into the node
namespace, the node side. Teardown deletes the veth the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from k8snet.lab.config import LabConfig
from k8snet.lab.net import nsutil, rtnl
from k8snet.lab.net.ipam import IpamStore, ipam_root

POD_IFACE = "eth0"
POD_HASH_LEN = 10  # 40 bits: "v" + 10 = 11 chars, well under the 15-char interface limit
# Lets unprivileged users ping from the pod (like Docker and containerd set it).
POD_SYSCTLS = {"net.ipv4.ping_group_range": "0 2147483647"}


def pod_hash(pod_uid: str) -> str:
    """A short, stable hex digest of the pod UID, used in namespace and interface names."""
    if not pod_uid:
        raise ValueError("pod UID must not be empty")
    return hashlib.sha256(pod_uid.encode()).hexdigest()[:POD_HASH_LEN]


def pod_netns_name(config: LabConfig, pod_uid: str) -> str:
    return f"{config.netns_prefix}p{pod_hash(pod_uid)}"


def host_veth_name(pod_uid: str) -> str:
    """The node-side veth of the pod (``v<hash>``)."""
    return nsutil.check_ifname(f"v{pod_hash(pod_uid)}")


@lru_cache(maxsize=64)  # called for every pod; node_pod_cidr lists all 256 subnets
def node_gateway_ip(config: LabConfig, index: int) -> str:
    """10.244.i.1: the node-side address of every pod veth on node i."""
    return str(ipaddress.ip_network(config.node_pod_cidr(index))[1])


@dataclass(frozen=True)
class PodNetwork:
    """What the kubelet needs to start a pod's containers and report its status."""

    netns: str            # e.g. k8snet-lab-p3f2a9c01d4
    netns_path: Path      # /run/netns/<netns>: nsenter --net=<this>
    ip: str               # status.podIP
    host_veth: str        # the node-side veth, in the node namespace
    gateway: str          # 10.244.i.1
    node_netns: str


def create_commands(config: LabConfig, index: int, pod_uid: str) -> list[str]:
    """The veth pair, as a line run inside the new pod namespace: ``eth0`` there, its
    peer created directly in the node namespace (nothing appears on the host)."""
    return [f"link add {POD_IFACE} type veth peer name {host_veth_name(pod_uid)} netns {config.node_netns(index)}"]


def node_side_commands(config: LabConfig, index: int, pod_uid: str, ip: str) -> list[str]:
    veth = host_veth_name(pod_uid)
    return [f"addr add {node_gateway_ip(config, index)}/32 dev {veth}",
            f"link set {veth} up",
            # replace: a stale route to this IP (a pod whose veth is not gone yet) is overridden
            f"route replace {ip}/32 dev {veth} scope link"]


def pod_side_commands(config: LabConfig, index: int, ip: str) -> list[str]:
    gw = node_gateway_ip(config, index)
    return ["link set lo up",
            f"addr add {ip}/32 dev {POD_IFACE}",
            f"link set {POD_IFACE} up",  # routes need the device up
            f"route add {gw} dev {POD_IFACE} scope link",
            f"route add default via {gw} dev {POD_IFACE}"]


def _wire_sandbox(pod_lines: list[str], node_netns: str, node_lines: list[str]) -> None:
    """In a thread inside the pod's new namespace: the veth pair and the pod side, the
    pod's sysctls, then the node side from inside the node namespace."""
    rtnl.apply(pod_lines)
    nsutil.write_sysctls_here(POD_SYSCTLS)
    with nsutil.in_netns(node_netns):
        rtnl.apply(node_lines)


class NodeNetwork:
    """Pod networking of node ``index``: namespaces, veths, IPs (persisted)."""

    def __init__(self, config: LabConfig, index: int) -> None:
        if not 0 <= index < config.nodes:
            raise ValueError(f"node index {index} out of range (lab has {config.nodes} nodes)")
        self.config = config
        self.index = index
        self.node_netns = config.node_netns(index)
        self.gateway = node_gateway_ip(config, index)
        self.ipam = IpamStore(ipam_root(config) / f"node{index}", config.node_pod_cidr(index))
        # One lock per pod UID, kept for the life of the object (a few hundred bytes
        # each): dropping them safely would need to know about waiters.
        self._locks: dict[str, asyncio.Lock] = {}

    def pod_netns(self, pod_uid: str) -> str:
        return pod_netns_name(self.config, pod_uid)

    def pod_ip(self, pod_uid: str) -> str | None:
        return self.ipam.lookup(pod_uid)

    def _lock(self, pod_uid: str) -> asyncio.Lock:
        return self._locks.setdefault(pod_uid, asyncio.Lock())

    def _network(self, pod_uid: str, ip: str) -> PodNetwork:
        ns = self.pod_netns(pod_uid)
        return PodNetwork(netns=ns, netns_path=nsutil.netns_path(ns), ip=ip,
                          host_veth=host_veth_name(pod_uid), gateway=self.gateway,
                          node_netns=self.node_netns)

    async def add_pod(self, pod_uid: str) -> PodNetwork:
        """Creates the pod's namespace with its IP and routes. Idempotent: a pod that
        already has both its namespace and its IP gets them back untouched (its
        containers may be running in that namespace). A failed attempt removes what
        it made, so any other leftover namespace of the pod is stale and is rebuilt."""
        async with self._lock(pod_uid):
            # IPAM reads and writes a file per address: a thread, not the event loop
            held, ip = await asyncio.to_thread(self._claim, pod_uid)
            if held and nsutil.netns_path(self.pod_netns(pod_uid)).exists():
                return self._network(pod_uid, held)
            net = self._network(pod_uid, ip)
            try:
                if held or net.netns_path.exists():  # stale: its node-side veth may linger
                    await self._teardown(net)
                # No process: one thread makes the namespace and wires both sides
                # (an ``ip`` fork/exec from the supervisor cost more than all of it).
                await nsutil.run_in_new_netns(
                    net.netns, _wire_sandbox,
                    create_commands(self.config, self.index, pod_uid) + pod_side_commands(self.config, self.index, ip),
                    self.node_netns, node_side_commands(self.config, self.index, pod_uid, ip))
            except BaseException:
                await self._teardown(net)
                self.ipam.release(pod_uid)
                raise
            return net

    def _claim(self, pod_uid: str) -> tuple[str | None, str]:
        """(the address the pod already held, if any; its address now)."""
        held = self.ipam.lookup(pod_uid)
        return held, held or self.ipam.allocate(pod_uid)

    async def remove_pod(self, pod_uid: str) -> None:
        """Deletes the pod's veth and namespace and frees its IP. Idempotent.

        Processes still in the namespace are the kubelet's to stop first; they would
        keep the namespace alive but cut off, since the veth is deleted explicitly."""
        async with self._lock(pod_uid):
            await self._teardown(self._network(pod_uid, ip=""))
            await asyncio.to_thread(self.ipam.release, pod_uid)

    async def _teardown(self, net: PodNetwork) -> None:
        if not nsutil.netns_path(self.node_netns).exists():
            nsutil.delete_netns(net.netns)  # the node is gone, and with it the veth
            return
        try:
            await nsutil.run_in_netns(self.node_netns, rtnl.apply, [f"link del {net.host_veth}"])
        except nsutil.NetError as e:
            if "Cannot find device" not in str(e):
                raise
        nsutil.delete_netns(net.netns)
