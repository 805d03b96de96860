"""The pod -> host guard: no pod may open a connection to the host.

Since the host has an address on the node network (:mod:`k8snet.lab.net.hostlink`),
a pod could reach it through its node's connected route. The host would answer a
pod address through its own default route, out of the machine, and "no traffic
leaves the machine" is a rule of the lab. So each node refuses forwarded traffic
from the pod CIDR to the host's address unless it belongs to a connection the host
opened: externalTrafficPolicy Local keeps the host as the client address, and the
backend pod's replies must get back.

The rule lives in its own nftables table, which kube-proxy never touches in either
mode (iptables-restore replaces only the ``ip filter``/``ip nat`` tables, and the
nftables mode only ``ip kube-proxy``). nftables runs every base chain of a hook,
so a reject here holds whatever kube-proxy's chains accept.
"""

from __future__ import annotations

import asyncio

from k8snet.lab.config import LabConfig

TABLE = "k8snet-guard"
COMMENT = "k8snet: pods may not open connections to the host"


def guard_ruleset(config: LabConfig) -> str:
    """The ``nft -f`` text for one node (the same for every node)."""
    match = f"ip saddr {config.pod_cidr} ip daddr {config.host_ip} ct state != {{ established, related }}"
    return "\n".join([
        f"add table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f'\t\t{match} meta l4proto tcp counter reject with tcp reset comment "{COMMENT}"',
        f'\t\t{match} counter reject with icmp type admin-prohibited comment "{COMMENT}"',
        "\t}",
        "}",
        "",
    ])


async def install(config: LabConfig, index: int) -> None:
    """Loads the guard into node ``index``'s namespace (once, when the node is made)."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", config.node_netns(index), "nft", "-f", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(guard_ruleset(config).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"nft in {config.node_netns(index)} failed: {err.decode().strip()}")
