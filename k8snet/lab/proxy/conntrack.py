"""Stale UDP conntrack entries, found by comparing two models.

The nat table only sees a flow's first packet; conntrack remembers the DNAT for
the rest. TCP notices a dead endpoint (RST or timeout), but UDP has no
connection: a DNS client that keeps its source port would keep talking to a
deleted endpoint until the entry expires. kube-proxy therefore deletes (see
``pkg/proxy/conntrack/cleanup.go``):

- flows DNATed to an endpoint that a UDP service port no longer uses;
- flows to a UDP service port that had no endpoints and now has some: packets
  rejected meanwhile left entries that would bypass the new DNAT rules.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from .model import ServicePort

log = logging.getLogger(__name__)


def _key(sp: ServicePort) -> tuple[str, str]:
    return sp.name_string, sp.protocol


def _destinations(sp: ServicePort) -> list[str]:
    return [sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips]


def stale_udp_filters(old: list[ServicePort], new: list[ServicePort]) -> list[list[str]]:
    """``conntrack`` argument lists (``-D ...``) that remove the stale UDP flows."""
    before = {_key(sp): sp for sp in old if sp.protocol == "UDP"}
    filters: list[list[str]] = []
    for sp in new:
        if sp.protocol != "UDP":
            continue
        now = {str(e): e for e in sp.categorize().reachable}
        prev_sp = before.pop(_key(sp), None)
        prev = {str(e): e for e in prev_sp.categorize().reachable} if prev_sp else {}
        if now and not prev:
            for ip in _destinations(sp):
                filters.append(["-D", "-p", "udp", "--orig-dst", ip, "--orig-port-dst", str(sp.port)])
            if sp.node_port:
                filters.append(["-D", "-p", "udp", "--orig-port-dst", str(sp.node_port)])
        gone = [prev[k] for k in sorted(prev) if k not in now]
        filters += _endpoint_filters(prev_sp or sp, gone)
    for prev_sp in before.values():  # the service port itself was deleted
        filters += _endpoint_filters(prev_sp, list(prev_sp.categorize().reachable))
    return filters


def _endpoint_filters(sp: ServicePort, endpoints: list) -> list[list[str]]:
    out = []
    for ep in endpoints:
        for ip in _destinations(sp):
            out.append(["-D", "-p", "udp", "--orig-dst", ip, "--orig-port-dst", str(sp.port),
                        "--dst-nat", ep.ip])
        if sp.node_port:
            out.append(["-D", "-p", "udp", "--orig-port-dst", str(sp.node_port), "--dst-nat", ep.ip])
    return out


async def delete_flows(netns: str, filters: list[list[str]]) -> None:
    """Runs each filter with ``conntrack`` inside ``netns``; a no-op without the tool."""
    if not filters or shutil.which("conntrack") is None:
        return
    for args in filters:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, "conntrack", *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        # conntrack exits 1 when nothing matched; that is the common, harmless case.
        if proc.returncode not in (0, 1):
            log.warning("conntrack %s in %s failed: %s", " ".join(args), netns, err.decode().strip())
