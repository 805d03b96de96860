"""One node's kube-proxy: watch Services and EndpointSlices, keep the node's rules current.

Level-triggered like kube-proxy's full sync: every change marks the state dirty;
after a short debounce (so a Deployment rollout's burst of slice updates costs one
restore, like kube-proxy's minSyncPeriod) the whole ruleset is rendered from the
informer caches and loaded in one atomic ``iptables-restore`` (or ``nft -f``)
inside the node's namespace. Unchanged text is not reloaded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from ..config import LabConfig
from ..contracts import ApiClient
from ..informer import Informer
from .conntrack import delete_flows, stale_udp_filters
from .iptables import render_iptables, rule_count
from .model import NodeInfo, ServicePort, build_model
from .nftables import nft_rule_count, render_nftables

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.05
RETRY_SECONDS = 1.0


class ApplyError(RuntimeError):
    """The kernel (iptables-restore / nft) refused a ruleset."""


@dataclass(frozen=True)
class SyncStats:
    """What the last sync did, for benchmarks (cf. sync_proxy_rules_duration_seconds)."""

    mode: str
    services: int  # service ports in the model
    endpoints: int
    rules: int
    duration_s: float  # render + apply
    applied: bool  # False when the text had not changed
    at: float  # time.time() when it finished


class KubeProxy:
    def __init__(self, config: LabConfig, client: ApiClient, node_index: int, *,
                 debounce: float = DEBOUNCE_SECONDS):
        self.config = config
        self.node = NodeInfo.from_config(config, node_index)
        self.netns = config.node_netns(node_index)
        self.mode = config.proxy_mode
        self.debounce = debounce
        self.services = Informer(client, "services")
        self.slices = Informer(client, "discovery.k8s.io/endpointslices")
        self.last_sync: SyncStats | None = None
        self.syncs = 0
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._applied_text: str | None = None
        self._applied_model: list[ServicePort] = []

    async def run(self) -> None:
        """Runs until cancelled."""
        tasks = [asyncio.create_task(self.services.run(self._changed), name=f"proxy-svc/{self.node.name}"),
                 asyncio.create_task(self.slices.run(self._changed), name=f"proxy-eps/{self.node.name}")]
        try:
            # Like kube-proxy, don't program anything until both caches are full:
            # a partial view would briefly REJECT services whose slices are not in yet.
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
            self._dirty.set()
            while True:
                await self._dirty.wait()
                await asyncio.sleep(self.debounce)
                self._dirty.clear()
                try:
                    await self.sync_now()
                except (ApplyError, OSError) as err:
                    log.error("kube-proxy %s: sync failed, retrying in %.0fs: %s", self.node.name, RETRY_SECONDS, err)
                    await asyncio.sleep(RETRY_SECONDS)
                    self._dirty.set()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _changed(self, _etype: str, _obj: dict) -> None:
        self._dirty.set()

    def model(self) -> list[ServicePort]:
        return build_model(self.services.items(), self.slices.items(), self.node.name)

    def render(self, model: list[ServicePort]) -> str:
        if self.mode == "nftables":
            return render_nftables(model, self.node)
        return render_iptables(model, self.node)

    async def sync_now(self) -> SyncStats:
        """Renders the informers' current view and applies it if it changed."""
        async with self._lock:
            start = time.monotonic()
            model = self.model()
            text = self.render(model)
            applied = text != self._applied_text
            if applied:
                await apply_ruleset(self.netns, self.mode, text)
                self._applied_text = text
                await delete_flows(self.netns, stale_udp_filters(self._applied_model, model))
                self._applied_model = model
            self.syncs += 1
            count = nft_rule_count(text) if self.mode == "nftables" else rule_count(text)
            self.last_sync = SyncStats(
                mode=self.mode, services=len(model), endpoints=sum(len(sp.endpoints) for sp in model),
                rules=count, duration_s=time.monotonic() - start, applied=applied, at=time.time())
            return self.last_sync


async def apply_ruleset(netns: str, mode: str, text: str) -> None:
    """Loads a whole ruleset into ``netns`` in one transaction.

    A plain (not ``--noflush``) iptables-restore replaces the filter and nat
    tables atomically; ``nft -f`` runs the file as one transaction.
    """
    argv = ["nft", "-f", "-"] if mode == "nftables" else ["iptables-restore", "-w"]
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, *argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise ApplyError(f"{argv[0]} in {netns} failed: {err.decode().strip()}\n{_context(text, err.decode())}")


def _context(text: str, err: str) -> str:
    """The lines around the one the tool complained about (like utiliptables.ExtractLines)."""
    m = re.search(r"line:? (\d+)", err)
    if not m:
        return ""
    lines = text.splitlines()
    n = int(m.group(1))
    lo, hi = max(0, n - 3), min(len(lines), n + 2)
    return "\n".join(f"{i + 1:5} {lines[i]}" for i in range(lo, hi))
