"""Every Service and EndpointSlice, and a sync after any change, at most one per
minimum interval: the loop kube-proxy and the LoadBalancer announcer share."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from .contracts import ApiClient
from .informer import Informer

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


Handler = Callable[[str, dict], None]


class ServiceWatch:
    def __init__(self, client: ApiClient, name: str, *, on_service: Handler | None = None,
                 on_slice: Handler | None = None):
        """``on_service`` / ``on_slice`` see every event (the initial list included)
        before the sync is scheduled, for callers that track changes themselves."""
        self.name = name
        self.services = Informer(client, "services")
        self.slices = Informer(client, "discovery.k8s.io/endpointslices")
        self.dirty = asyncio.Event()
        self._on_service, self._on_slice = on_service, on_slice

    def changed(self, _etype: str = "", _obj: object = None) -> None:
        self.dirty.set()

    def _service_changed(self, etype: str, obj: dict) -> None:
        if self._on_service:
            self._on_service(etype, obj)
        self.dirty.set()

    def _slice_changed(self, etype: str, obj: dict) -> None:
        if self._on_slice:
            self._on_slice(etype, obj)
        self.dirty.set()

    async def run(self, sync: Callable[[], Awaitable[object]], *, min_interval: float,
                  retry_on: tuple[type[BaseException], ...], resync: float | None = None) -> None:
        """Calls ``sync`` once both caches are full, then after every change, but never
        sooner than ``min_interval`` seconds after the previous sync started (kube-proxy's
        ``minSyncPeriod``, its BoundedFrequencyRunner): a change after a quiet spell is
        synced at once, and the changes of a burst that come within the interval are
        coalesced into one sync at its end. With ``resync``, it syncs at least that often
        even without changes (so a periodic repair is not left waiting for one); a sync
        failing with one of ``retry_on`` is retried after a second. Runs until cancelled."""
        tasks = [asyncio.create_task(self.services.run(self._service_changed), name=f"{self.name}/services"),
                 asyncio.create_task(self.slices.run(self._slice_changed), name=f"{self.name}/slices")]
        try:
            # Don't act on a partial view: a Service whose slices are not in yet would
            # look like one without endpoints.
            await asyncio.gather(self.services.synced.wait(), self.slices.synced.wait())
            self.dirty.set()
            last_start = -float("inf")
            while True:
                try:
                    await asyncio.wait_for(self.dirty.wait(), timeout=resync)
                except TimeoutError:
                    pass  # the periodic sync
                too_soon = last_start + min_interval - time.monotonic()
                if too_soon > 0:
                    await asyncio.sleep(too_soon)
                self.dirty.clear()
                last_start = time.monotonic()
                try:
                    await sync()
                except retry_on as err:
                    log.error("%s: sync failed, retrying in %.0fs: %s", self.name, RETRY_SECONDS, err)
                    await asyncio.sleep(RETRY_SECONDS)
                    self.dirty.set()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
