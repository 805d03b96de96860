"""A concurrency limit that serves the oldest waiter first.

When a Deployment lands 100 pods on a node at once, starting all of them
concurrently makes every pod wait for every other one: each start-up step
(network, volumes, container processes) competes for the same two CPUs, so all
pods become Ready at about the same, late time. A few slots, handed out by pod
arrival order rather than by who asked last, let the first pods finish first
while the rest queue, without lowering throughput. A pod that already holds its
network keeps its place in line for its containers, because its number is older.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from typing import AsyncIterator


class PrioritySlots:
    """At most ``limit`` holders at once; waiters are served lowest ``priority`` first
    (ties in arrival order)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.busy = 0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, priority: float) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: float) -> None:
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future  # the releaser counted us in already
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted and cancelled at once: pass the slot on
            raise

    def _release(self) -> None:
        self.busy -= 1
        while self._waiters and self.busy < self.limit:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():  # a cancelled waiter stays in the heap until popped
                self.busy += 1
                future.set_result(None)
