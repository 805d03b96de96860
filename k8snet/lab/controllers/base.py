"""The reconcile-loop machinery every controller shares.

Informers fill caches and turn every change into a key on a work queue; one worker
per controller takes keys and reconciles each from cache state (level-triggered, so
a missed or merged event never matters: the next reconcile sees the whole state).
A 409 Conflict means the cache was stale: the key is simply queued again. Other
errors are logged and retried with backoff; nothing kills the worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Hashable

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from ..events import EventRecorder
from ..informer import Informer
from .util import MalformedObject, controller_ref

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj], Awaitable[None] | None]


# add_batched's period for an object listing or counting ``size`` pods: 2 ms a pod, at
# most 0.2 s. A reconcile's cost grows with the size, so this bounds the CPU a burst of
# pod changes spends on one key per second whatever its size, while a small Service or
# ReplicaSet still follows its pods within milliseconds (docs/performance.md,
# "Pod start-up").
BATCH_SECONDS_PER_POD = 0.002
MAX_BATCH_PERIOD = 0.2


def batch_period(size: int) -> float:
    return min(MAX_BATCH_PERIOD, BATCH_SECONDS_PER_POD * size)


class WorkQueue:
    """A deduplicating FIFO of keys: a key queued twice before it is taken runs once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._pending: set[Hashable] = set()
        self._batched_at: dict[Hashable, float] = {}  # add_batched: when the key last went in
        self._deferred: dict[Hashable, asyncio.TimerHandle] = {}  # add_batched: due at the period's end

    def add(self, key: Hashable) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def add_batched(self, key: Hashable, period: float) -> None:
        """Queues ``key`` at most once per ``period`` seconds: the first change after a
        quiet spell is reconciled at once, and every later one in the next ``period``
        is folded into a single reconcile at its end. kube-controller-manager's
        endpoint controllers do the same with ``--endpoint-updates-batch-period``
        (there as a plain delay): a burst of 100 pod updates becomes a few reconciles
        of the Service, not 100 rewrites of a 100-address object."""
        if period <= 0:
            self.add(key)
            return
        if key in self._deferred:
            return  # a reconcile at the end of this period is already due
        loop = asyncio.get_running_loop()
        now = loop.time()
        last = self._batched_at.get(key)
        if last is None or now - last >= period:
            self._batched_at[key] = now
            self.add(key)
            if len(self._batched_at) > 4096:  # forget keys idle for a period: they start afresh
                self._batched_at = {k: t for k, t in self._batched_at.items() if now - t < period}
            return
        self._deferred[key] = loop.call_at(last + period, self._add_deferred, key)

    def _add_deferred(self, key: Hashable) -> None:
        del self._deferred[key]
        self._batched_at[key] = asyncio.get_running_loop().time()
        self.add(key)

    async def get(self) -> Hashable:
        key = await self._queue.get()
        # Taken keys may be queued again at once: a change during reconcile re-runs it.
        self._pending.discard(key)
        return key

    def __len__(self) -> int:
        return len(self._pending)


class Informers:
    """One shared Informer per resource, fanning each event out to every subscriber,
    so six controllers watching pods cost one watch, not six."""

    def __init__(self, client: ApiClient):
        self.client = client
        self._informers: dict[str, Informer] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def get(self, key: str) -> Informer:
        if key not in self._informers:
            self._informers[key] = Informer(self.client, key)
            self._handlers[key] = []
        return self._informers[key]

    def subscribe(self, key: str, handler: Handler) -> Informer:
        informer = self.get(key)
        self._handlers[key].append(handler)
        return informer

    def start(self) -> None:
        """Starts every informer registered so far (idempotent)."""
        for key, informer in self._informers.items():
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(informer.run(self._dispatcher(key)),
                                                       name=f"informer {key}")

    async def wait_synced(self, keys: list[str] | None = None) -> None:
        await asyncio.gather(*(self._informers[k].synced.wait() for k in keys or list(self._informers)))

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    def _dispatcher(self, key: str) -> Handler:
        async def dispatch(etype: str, obj: Obj) -> None:
            for handler in self._handlers[key]:
                try:
                    result = handler(etype, obj)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:  # one controller's bug must not starve the others
                    log.exception("handler for %s failed", key)
        return dispatch


class Controller:
    """Base class: subclasses subscribe to informers in ``__init__`` and implement
    ``reconcile(key)``; ``resync()`` may queue every key periodically."""

    component = "controller"
    resync_period = 30.0

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        self.client = client
        self.config = config
        self._owns_informers = informers is None
        self.informers = informers or Informers(client)
        self.queue = WorkQueue()
        self.recorder = EventRecorder(client, self.component)
        self._failures: dict[Hashable, int] = {}
        self._reported: set[tuple[Any, Any]] = set()
        self._watched: list[str] = []

    def watch(self, key: str, handler: Handler | None = None) -> Informer:
        """Subscribes to a resource; the controller waits for it to sync before working."""
        self._watched.append(key)
        return self.informers.subscribe(key, handler) if handler else self.informers.get(key)

    # -- queueing, shared by the owner controllers ---------------------------------------
    def enqueue(self, etype: str, obj: Obj) -> None:
        """An informer handler: queue the object's own (namespace, name)."""
        self.queue.add((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def enqueue_all(self, informer: Informer) -> None:
        """Queue every cached object of ``informer`` (a resync)."""
        for obj in informer.items():
            self.enqueue("SYNC", obj)

    def enqueue_controller(self, kind: str) -> Handler:
        """An informer handler for pods: queue the pod's controller when it is a ``kind``."""
        def handler(etype: str, pod: Obj) -> None:
            ref = controller_ref(pod)
            if ref is not None and ref.get("kind") == kind:
                self.queue.add((pod["metadata"]["namespace"], ref["name"]))
        return handler

    async def run(self) -> None:
        if self._owns_informers:
            self.informers.start()
        try:
            await self.informers.wait_synced(self._watched)
            self.resync()
            await asyncio.gather(self._worker(), self._resync_loop())
        finally:
            if self._owns_informers:
                await self.informers.stop()

    async def reconcile(self, key: Any) -> None:
        raise NotImplementedError

    def resync(self) -> None:
        """Queues every key this controller is responsible for."""

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            self.resync()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except MalformedObject as bad:
                # Not retried: only a change of the object can fix it, and that queues
                # the key again. Every other key of this controller goes on meanwhile.
                self._failures.pop(key, None)
                log.warning("%s %s: skipped, %s", self.component, key, bad.message)
                await self._report_malformed(bad)
            except ApiError as err:
                if err.code == 409:
                    # Stale cache or a racing writer: look again once the watch caught up.
                    log.debug("%s %s: %s; requeued", self.component, key, err.message)
                else:
                    log.warning("%s %s: %s %s", self.component, key, err.code, err.message)
                self._retry(key)
            except Exception:
                log.exception("%s: reconciling %s failed", self.component, key)
                self._retry(key)

    async def _report_malformed(self, bad: MalformedObject) -> None:
        """A Warning event on the object the controller had to skip, once per version."""
        meta = bad.obj.get("metadata") or {}
        seen = (meta.get("uid"), meta.get("resourceVersion"))
        if seen in self._reported:
            return
        self._reported.add(seen)
        await self.recorder.record(bad.obj, "Warning", "FailedSync", bad.message)  # best effort, never raises

    def _retry(self, key: Hashable) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.queue.add_after(key, min(0.02 * 2 ** n, 10.0))
