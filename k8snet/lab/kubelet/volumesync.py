"""Tells a node's pods when a Secret or ConfigMap their volumes use has changed.

The real kubelet's ``Watch`` change-detection strategy (its default): it watches the
objects its pods' volumes reference and re-runs the volume's SetUp, whose atomic
writer swaps the files in place. Here one informer per referenced object serves
the node; each pod worker subscribes to the (kind, namespace, name) keys of its
volumes and takes the changed ones as they come (:meth:`PodVolumeChanges.next`), so
an update reaches the mounted files within one watch event, with no polling.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from ..contracts import ApiClient, Obj
from ..informer import Informer

#: (kind, name) of an object, e.g. ("configmaps", "nginxconfigmap").
Ref = tuple[str, str]
#: (kind, namespace, name): one watched object.
Key = tuple[str, str, str]


class PodVolumeChanges:
    """The changed objects one pod's volumes use, queued until its worker takes them."""

    def __init__(self, watch: VolumeWatch, namespace: str, refs: set[Ref]):
        self._watch = watch
        self.keys = {(kind, namespace, name) for kind, name in refs}
        self._pending: set[Ref] = set()
        self._event = asyncio.Event()

    def notify(self, ref: Ref) -> None:
        self._pending.add(ref)
        self._event.set()

    async def next(self) -> set[Ref]:
        """Waits for changes; returns every one that came since the last call."""
        await self._event.wait()
        self._event.clear()
        changed, self._pending = self._pending, set()
        return changed

    def close(self) -> None:
        self._watch.unsubscribe(self)


class VolumeWatch:
    """Secrets and ConfigMaps watched for one node's pods: one watch per object, as
    the kubelet's watch-based manager does (list and watch in the object's namespace
    with ``metadata.name=<name>``). A node may read only the objects its own pods
    reference (the Node authorizer), never every Secret of the cluster."""

    def __init__(self, client: ApiClient):
        self.client = client
        self._subscribers: dict[Key, set[PodVolumeChanges]] = defaultdict(set)
        self._watches: dict[Key, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Lives as long as the kubelet; the watches stop with it."""
        try:
            await asyncio.Event().wait()
        finally:
            for task in self._watches.values():
                task.cancel()
            self._watches.clear()

    def _watch(self, key: Key) -> asyncio.Task[None]:
        kind, namespace, name = key
        informer = Informer(self.client, kind, namespace, field_selector=f"metadata.name={name}")

        def on_event(etype: str, obj: Obj) -> None:
            for sub in list(self._subscribers.get(key, ())):
                sub.notify((kind, name))
        return asyncio.create_task(informer.run(on_event))

    def subscribe(self, namespace: str, refs: set[Ref]) -> PodVolumeChanges:
        """Subscribe *before* reading the objects: a change between the read and the
        subscription would otherwise be missed until the next one."""
        sub = PodVolumeChanges(self, namespace, refs)
        for key in sub.keys:
            self._subscribers[key].add(sub)
            if key not in self._watches:
                self._watches[key] = self._watch(key)
        return sub

    def unsubscribe(self, sub: PodVolumeChanges) -> None:
        for key in sub.keys:
            subs = self._subscribers.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[key]
                    task = self._watches.pop(key, None)
                    if task is not None:
                        task.cancel()
