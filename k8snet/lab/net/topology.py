"""The lab's node network: the wire namespace with its bridge, and one namespace per node.

See docs/lab-architecture.md, "Network topology". The command lists are pure
functions (unit-tested); :func:`create_lab_network` runs them with one ``ip``
process for all ``netns add``s, one for the wire namespace and one per node, the
node ones concurrently.
"""

from __future__ import annotations

import asyncio
import ipaddress

from k8snet.lab.config import LabConfig
from k8snet.lab.net import cleanup, guard, hostlink, nsutil

BRIDGE = "wire"          # the bridge inside the wire namespace (kind's docker network)
NODE_IFACE = "eth0"      # each node's link to the wire bridge


def wire_port(index: int) -> str:
    """The wire-side end of node ``index``'s veth, enslaved to the bridge."""
    return nsutil.check_ifname(f"n{index}")


def _prefixlen(config: LabConfig) -> int:
    return ipaddress.ip_network(config.node_cidr).prefixlen


# Written inside the namespaces, never on the host. rp_filter is off so that
# DNAT-ed and hairpin traffic kube-proxy rewrites is never dropped for arriving on
# an unexpected interface; "default" covers veths created later (pods).
NODE_SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}
# The wire namespace forwards too, but has no default route: traffic to anything
# outside the lab gets an immediate ICMP "network unreachable" instead of hanging.
WIRE_SYSCTLS: dict[str, str] = NODE_SYSCTLS


def wire_commands(config: LabConfig) -> list[str]:
    """``ip -n <wire> -batch`` lines: bridge, one veth per node (the node end moved
    straight into the node's namespace, so it never appears on the host), and routes
    back to every node's pod CIDR so pods' own source addresses work (no NAT)."""
    cmds = [
        "link set lo up",
        f"link add {BRIDGE} type bridge forward_delay 0",
        f"addr add {config.wire_gateway_ip}/{_prefixlen(config)} dev {BRIDGE}",
        f"link set {BRIDGE} up",
    ]
    for i in range(config.nodes):
        port = wire_port(i)
        cmds += [
            f"link add {port} type veth peer name {NODE_IFACE} netns {config.node_netns(i)}",
            f"link set {port} master {BRIDGE} up",
        ]
    cmds += [f"route add {config.node_pod_cidr(i)} via {config.node_ip(i)} dev {BRIDGE}"
             for i in range(config.nodes)]
    return cmds


def host_link_commands(config: LabConfig) -> tuple[list[str], list[str]]:
    """(host ``ip -batch`` lines, wire ``ip -n <wire> -batch`` lines) for the lab's
    one host veth (:mod:`k8snet.lab.net.hostlink`)."""
    return hostlink.host_commands(config, BRIDGE)


def node_commands(config: LabConfig, index: int) -> list[str]:
    """``ip -n <node> -batch`` lines: eth0's address, kindnet-style routes to the other
    nodes' pod CIDRs, and a default route to the wire gateway so OUTPUT-chain DNAT to
    ClusterIPs works. (kind's nodes route through the docker bridge, i.e. the host;
    ours go to the wire namespace, which has no way out, never to the host.)"""
    cmds = [
        "link set lo up",
        f"addr add {config.node_ip(index)}/{_prefixlen(config)} dev {NODE_IFACE}",
        f"link set {NODE_IFACE} up",
    ]
    cmds += [f"route add {config.node_pod_cidr(j)} via {config.node_ip(j)} dev {NODE_IFACE}"
             for j in range(config.nodes) if j != index]
    cmds.append(f"route add default via {config.wire_gateway_ip} dev {NODE_IFACE}")
    return cmds


def lab_netns_names(config: LabConfig) -> list[str]:
    """The wire namespace and the node namespaces, in creation order."""
    return [config.wire_netns] + [config.node_netns(i) for i in range(config.nodes)]


async def create_lab_network(config: LabConfig) -> None:
    """Builds the wire and node namespaces. Refuses if any namespace of this lab
    already exists (a running lab, or leftovers: run :func:`cleanup.cleanup_lab`).
    On failure, removes whatever it created and re-raises."""
    existing = nsutil.list_netns(config.netns_prefix)
    if existing:
        raise nsutil.NetError(
            f"lab {config.name!r} already has network namespaces ({', '.join(existing)}); "
            "is it running? If not, clean up its leftovers first")
    names = lab_netns_names(config)
    try:
        await nsutil.ip_batch(f"netns add {n}" for n in names)
        # Sysctls before any veth exists, so the new interfaces inherit "default".
        await asyncio.gather(
            nsutil.write_sysctls(config.wire_netns, WIRE_SYSCTLS),
            *(nsutil.write_sysctls(n, NODE_SYSCTLS) for n in names[1:]))
        await nsutil.ip_batch(wire_commands(config), config.wire_netns)
        host_cmds, wire_port_cmds = host_link_commands(config)
        await asyncio.gather(
            _host_link(config, host_cmds, wire_port_cmds),
            *(nsutil.ip_batch(node_commands(config, i), config.node_netns(i)) for i in range(config.nodes)),
            *(guard.install(config, i) for i in range(config.nodes)))
    except BaseException:
        await destroy_lab_network(config)
        raise


async def _host_link(config: LabConfig, host_cmds: list[str], wire_cmds: list[str]) -> None:
    await nsutil.ip_batch(host_cmds)
    await nsutil.ip_batch(wire_cmds, config.wire_netns)
    clash = await asyncio.to_thread(hostlink.conflicting_links, config)
    if clash:
        raise nsutil.NetError(
            f"the lab's node network {config.node_cidr} is also on host interface(s) {', '.join(clash)} "
            "(another lab started at the same moment?); run 'k8snet lab up' again")


async def destroy_lab_network(config: LabConfig) -> cleanup.CleanupReport:
    """Removes the whole lab network: kills every process in any of the lab's
    namespaces, deletes them all (nodes, pods, wire) and the pod-IP allocations."""
    return await asyncio.to_thread(cleanup.cleanup_lab, config)
