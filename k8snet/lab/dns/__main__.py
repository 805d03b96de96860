"""``python3 -m k8snet.lab.dns``: the process the lab's coredns pod runs.

Inside its pod the process has the pod's network namespace to itself, so binding
0.0.0.0:53 is what CoreDNS does too. It logs one line at start and one per
(re)list, never one per query.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import dns.rcode

from .apiwatch import ApiWatcher, InClusterConfig
from .health import HealthServer
from .records import DEFAULT_TTL, ClusterRecords
from .server import DnsServer

log = logging.getLogger("k8snet.lab.dns")

OUTSIDE_RCODES = {"refused": dns.rcode.REFUSED, "nxdomain": dns.rcode.NXDOMAIN}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m k8snet.lab.dns", description="The lab's cluster DNS (CoreDNS-like).")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default: all of the pod's)")
    p.add_argument("--port", type=int, default=53, help="DNS port, UDP and TCP (default: 53)")
    p.add_argument("--domain", default="cluster.local", help="cluster domain (default: cluster.local)")
    p.add_argument("--health-port", type=int, default=8080, help="port of /health and /ready (default: 8080)")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"record TTL in seconds (default: {DEFAULT_TTL})")
    p.add_argument("--outside", choices=sorted(OUTSIDE_RCODES), default="refused",
                   help="answer for names outside the cluster domain, which are never forwarded "
                        "(default: refused)")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace, config: InClusterConfig) -> None:
    records = ClusterRecords(args.domain, ttl=args.ttl, outside_rcode=OUTSIDE_RCODES[args.outside], synced=False)
    watcher = ApiWatcher(config, records)
    dns_server = DnsServer(records, args.host, args.port)
    health = HealthServer(lambda: records.synced, args.host, args.health_port)
    await dns_server.start()
    await health.start()
    watcher.start()
    log.info("serving %s on %s:%d (udp+tcp), health on :%d, API at %s:%d", records.domain, args.host,
             dns_server.port, health.port, config.host, config.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await health.close()
        await dns_server.close()
        await asyncio.to_thread(watcher.stop)
        log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = InClusterConfig.from_environment()
    except RuntimeError as err:  # not in a pod: say why and stop, as CoreDNS does
        raise SystemExit(f"k8snet.lab.dns: {err}") from None
    asyncio.run(serve(args, config))


if __name__ == "__main__":
    main()
