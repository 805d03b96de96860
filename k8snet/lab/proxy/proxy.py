"""One node's kube-proxy: watch Services and EndpointSlices, keep the node's rules current.

Level-triggered like kube-proxy: every change marks the state dirty; after a
short debounce (so a Deployment rollout's burst of slice updates costs one
restore, like kube-proxy's minSyncPeriod) the ruleset is rendered from the
informer caches (only changed services are re-rendered) and loaded in one atomic
transaction inside the node's namespace. iptables mode always restores the whole
filter and nat tables (unchanged text is not reloaded); nftables mode, like the
real proxier, sends only the changed chains and map elements after the first
sync, with a full reload every FULL_SYNC_SECONDS and after any failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from ..config import LabConfig
from ..contracts import ApiClient
from ..servicewatch import ServiceWatch
from .conntrack import delete_flows, stale_udp_filters
from .iptables import IptablesRenderer, rule_count
from .model import NodeInfo, ServicePort, build_model
from .nftables import NftablesRenderer, NftRuleset
from .nftsync import nft_ruleset_count, nft_transaction

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.05
# Partial syncs trust that the kernel still holds what we last applied; a periodic
# full reload repairs any drift (kube-proxy's FullSyncPeriod is also an hour).
FULL_SYNC_SECONDS = 3600.0


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
    full: bool = True  # False: an nftables partial sync (only the changes were sent)


class KubeProxy:
    def __init__(self, config: LabConfig, client: ApiClient, node_index: int, *,
                 debounce: float = DEBOUNCE_SECONDS):
        self.config = config
        self.node = NodeInfo.from_config(config, node_index)
        self.netns = config.node_netns(node_index)
        self.mode = config.proxy_mode
        self.debounce = debounce
        self.watch = ServiceWatch(client, f"kube-proxy/{self.node.name}")
        self.services, self.slices = self.watch.services, self.watch.slices
        self.last_sync: SyncStats | None = None
        self.syncs = 0
        self._lock = asyncio.Lock()
        self._applied_text: str | None = None  # iptables mode
        self._applied_rules: NftRuleset | None = None  # nftables mode
        self._last_full_sync = 0.0
        self._applied_model: list[ServicePort] = []
        self._iptables = IptablesRenderer(self.node)
        self._nftables = NftablesRenderer(self.node)

    async def run(self) -> None:
        """Runs until cancelled."""
        await self.watch.run(self.sync_now, debounce=self.debounce, retry_on=(ApplyError, OSError))

    def model(self) -> list[ServicePort]:
        return build_model(self.services.items(), self.slices.items(), self.node.name)

    def render(self, model: list[ServicePort]) -> str:
        """The full ruleset text for ``model`` in this proxy's mode."""
        if self.mode == "nftables":
            return self._nftables.ruleset(model).text()
        return self._iptables.render(model)

    async def sync_now(self) -> SyncStats:
        """Renders the informers' current view and applies what changed."""
        async with self._lock:
            start = time.monotonic()
            model = self.model()
            if self.mode == "nftables":
                applied, full, count = await self._sync_nftables(model)
            else:
                applied, full, count = await self._sync_iptables(model)
            if applied:
                await delete_flows(self.netns, stale_udp_filters(self._applied_model, model))
                self._applied_model = model
            self.syncs += 1
            self.last_sync = SyncStats(
                mode=self.mode, services=len(model), endpoints=sum(len(sp.endpoints) for sp in model),
                rules=count, duration_s=time.monotonic() - start, applied=applied, at=time.time(), full=full)
            return self.last_sync

    async def _sync_iptables(self, model: list[ServicePort]) -> tuple[bool, bool, int]:
        text = self._iptables.render(model)
        applied = text != self._applied_text
        if applied:
            await apply_ruleset(self.netns, "iptables", text)
            self._applied_text = text
        return applied, True, rule_count(text)

    async def _sync_nftables(self, model: list[ServicePort]) -> tuple[bool, bool, int]:
        rules = self._nftables.ruleset(model)
        tx = None
        if self._applied_rules is not None and time.monotonic() - self._last_full_sync < FULL_SYNC_SECONDS:
            tx = nft_transaction(self._applied_rules, rules)
        if tx:
            try:
                await apply_ruleset(self.netns, "nftables", tx)
            except ApplyError as err:
                # The kernel no longer holds what we think it does: start over.
                log.warning("kube-proxy %s: partial sync failed, reloading the table: %s", self.node.name, err)
                tx = None
        if tx is None:
            # Forget what was applied first: if the reload fails too, the retry is a full one.
            self._applied_rules = None
            await apply_ruleset(self.netns, "nftables", rules.text())
            self._last_full_sync = time.monotonic()
        self._applied_rules = rules
        return tx != "", tx is None, nft_ruleset_count(rules)


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
