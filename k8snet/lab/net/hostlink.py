"""The lab's one link to the host: a veth from the host to the wire bridge.

The host end ``kn<lab>`` holds the host's address on the node network (.1, as the
docker bridge's gateway address on kind's network) and nothing else: the kernel's
connected route to the node /24 comes with the address, and IPv6 address generation
is off so no link-local address or route appears. That is what makes NodePorts and
LoadBalancer IPs reachable from the host. The wire-side end is a bridge port.

Two labs must not put the same /24 on the host, so ``up`` picks the node network
(:func:`with_free_node_cidr`): the configured one if no host address or route and no
other lab's saved configuration overlaps it, else the next free network of the same
size. Pod and service CIDRs never appear on the host and may repeat between labs.

Deleting the wire namespace deletes the pair; cleanup also deletes the host end by
name (:func:`delete_host_link`), because a namespace that something still pins
would keep it on the host.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Iterable

from k8snet.lab.config import LabConfig, state_root

WIRE_PORT = "host"  # the wire-side end of the host veth, enslaved to the bridge
Network = ipaddress.IPv4Network


def host_commands(config: LabConfig, bridge: str) -> tuple[list[str], list[str]]:
    """(``ip -batch`` lines for the host, ``ip -n <wire> -batch`` lines): the veth is
    created from the host with its peer placed straight into the wire namespace."""
    ifname = config.host_ifname
    prefixlen = ipaddress.ip_network(config.node_cidr).prefixlen
    host = [
        f"link add {ifname} type veth peer name {WIRE_PORT} netns {config.wire_netns}",
        # Before "up": no IPv6 link-local address or fe80::/64 route on the host.
        f"link set {ifname} addrgenmode none",
        f"addr add {config.host_ip}/{prefixlen} dev {ifname}",
        f"link set {ifname} up",
    ]
    wire = [f"link set {WIRE_PORT} master {bridge} up"]
    return host, wire


# -- choosing the node network -------------------------------------------------

def pick_node_cidr(configured: str, taken: Iterable[Network]) -> str:
    """The configured network if nothing in ``taken`` overlaps it, else the next
    network of the same size that is free, staying inside the configured /16 (so the
    default 172.31.0.0/24 moves to 172.31.1.0/24, 172.31.2.0/24, ...)."""
    net = Network(configured)
    taken = list(taken)
    scope = net.supernet(new_prefix=min(16, net.prefixlen))
    candidates = [net] + [n for n in scope.subnets(new_prefix=net.prefixlen) if n > net] \
        + [n for n in scope.subnets(new_prefix=net.prefixlen) if n < net]
    for candidate in candidates:
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise RuntimeError(f"no free /{net.prefixlen} network left in {scope} for the lab's nodes; "
                       "stop another lab or free an address on the host")


def host_networks() -> list[Network]:
    """Every IPv4 network the host has an address in or a route to (default routes
    aside: they overlap everything and a connected /24 is more specific anyway)."""
    found: list[Network] = []
    addrs = json.loads(_ip("-j", "-4", "addr", "show") or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            found.append(Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for route in json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "default")
        if dst == "default" or route.get("type") in ("local", "broadcast"):
            continue
        try:
            found.append(Network(dst if "/" in dst else f"{dst}/32", strict=False))
        except ValueError:
            continue
    return found


def other_labs_networks(name: str, root: Path | None = None) -> list[Network]:
    """The node networks in the saved configurations of the other labs under the state
    root: one that is still starting has no host address yet."""
    root = root or state_root()
    found = []
    for path in root.glob("*/config.json"):
        try:
            data = json.loads(path.read_text())
            if data.get("name") != name and data.get("node_cidr"):
                found.append(Network(data["node_cidr"]))
        except (OSError, ValueError):
            continue
    return found


def with_free_node_cidr(config: LabConfig) -> LabConfig:
    """``config`` with a node network no one else on this host uses."""
    taken = host_networks() + other_labs_networks(config.name)
    cidr = pick_node_cidr(config.node_cidr, taken)
    return config if cidr == config.node_cidr else dataclasses.replace(config, node_cidr=cidr)


def conflicting_links(config: LabConfig) -> list[str]:
    """Host interfaces other than ours with an address in the lab's node network:
    two labs that picked the same network at the same moment find out here."""
    net = ipaddress.ip_network(config.node_cidr)
    clash = []
    for link in json.loads(_ip("-j", "-4", "addr", "show") or "[]"):
        if link.get("ifname") == config.host_ifname:
            continue
        for a in link.get("addr_info", []):
            if ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False).overlaps(net):
                clash.append(f"{link.get('ifname')} ({a['local']}/{a['prefixlen']})")
    return clash


# -- removal --------------------------------------------------------------------

def delete_host_link(config: LabConfig) -> bool:
    """Deletes the host end of the lab's veth if it is there (and a veth); True if it was."""
    proc = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", config.host_ifname],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return False
    info = json.loads(proc.stdout or "[]")
    if not info or (info[0].get("linkinfo") or {}).get("info_kind") != "veth":
        return False  # not ours: never delete someone else's interface
    return subprocess.run(["ip", "link", "del", "dev", config.host_ifname],
                          capture_output=True).returncode == 0


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout
