"""One node's kube-proxy: watch Services and EndpointSlices, keep the node's rules current.

Level-triggered like kube-proxy: every change marks the state dirty and syncs,
at most once per ``MIN_SYNC_PERIOD_SECONDS`` (kube-proxy's minSyncPeriod: a
change after a quiet spell is applied at once, a Deployment rollout's burst of
slice updates costs one restore at the end of the interval); the ruleset is
rendered from the informer caches (only changed services are re-rendered) and
loaded in one atomic transaction inside the node's namespace. Like the real
proxiers, both modes load the whole ruleset on the first sync, then send only what
changed: iptables mode the chains of changed Services (``iptables-restore
--noflush``), nftables mode the changed chains and map elements; a full reload follows any failure and comes
every ``backend.full_sync_seconds`` (a timer syncs even when nothing changed).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..config import LabConfig
from ..contracts import ApiClient
from ..servicewatch import ServiceWatch
from .backend import FULL_SYNC_SECONDS, ApplyError, apply_ruleset, backend_for
from .conntrack import delete_flows, stale_udp_filters
from .model import ModelBuilder, NodeInfo, ServicePort

__all__ = ["ApplyError", "FULL_SYNC_SECONDS", "KubeProxy", "SyncStats", "apply_ruleset"]

MIN_SYNC_PERIOD_SECONDS = 0.05


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
                 min_sync_period: float = MIN_SYNC_PERIOD_SECONDS):
        self.config = config
        self.node = NodeInfo.from_config(config, node_index)
        self.netns = config.node_netns(node_index)
        self.mode = config.proxy_mode
        self.min_sync_period = min_sync_period
        self._model = ModelBuilder(self.node.name)
        self.watch = ServiceWatch(client, f"kube-proxy/{self.node.name}",
                                  on_service=self._model.service_event, on_slice=self._model.slice_event)
        self.services, self.slices = self.watch.services, self.watch.slices
        self.last_sync: SyncStats | None = None
        self.syncs = 0
        self.applied = 0  # syncs that have put their rules in the kernel
        self._applied = asyncio.Event()  # set, and replaced, by each of them
        self._lock = asyncio.Lock()
        self._applied_model: list[ServicePort] = []
        self.backend = backend_for(self.mode, self.node)

    async def run(self) -> None:
        """Runs until cancelled."""
        try:
            await self.watch.run(self.sync_now, min_interval=self.min_sync_period, retry_on=(ApplyError, OSError),
                                 resync=self.backend.full_sync_seconds)
        finally:
            self.backend.close()

    def model(self) -> list[ServicePort]:
        return self._model.model()

    def render(self, model: list[ServicePort]) -> str:
        """The full ruleset text for ``model`` in this proxy's mode."""
        return self.backend.render(model)

    async def sync_now(self) -> SyncStats:
        """Renders the informers' current view and applies what changed."""
        async with self._lock:
            start = time.monotonic()
            model = self.model()
            done = await self.backend.apply(self.netns, model)
            self.applied += 1  # the rules are in: whoever waits need not wait for the flows' cleanup
            woken, self._applied = self._applied, asyncio.Event()
            woken.set()
            if done.changed:
                await delete_flows(self.netns, stale_udp_filters(self._applied_model, model))
                self._applied_model = model
            self.syncs += 1
            self.last_sync = SyncStats(
                mode=self.mode, services=len(model), endpoints=sum(len(sp.endpoints) for sp in model),
                rules=done.rules, duration_s=time.monotonic() - start, applied=done.changed, at=time.time(),
                full=done.full)
            return self.last_sync

    async def applied_after(self, count: int) -> None:
        """Returns once more than ``count`` syncs have put their rules in the kernel: read
        :attr:`applied` before looking at what the rules do, then wait with it, and a sync
        that ends meanwhile is not missed."""
        while self.applied <= count:
            await self._applied.wait()
