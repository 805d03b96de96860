"""List + watch with a local cache: the one way the lab's loops observe the API.

Like client-go's reflector: list, then watch from the list's resourceVersion; on
410 Gone (history compacted) or a dropped watch, list again and emit the
differences, so handlers never miss a change nor see a stale object.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from .contracts import ApiClient, Obj
from .errors import ApiError

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj], Awaitable[None] | None]


def obj_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta["name"]


class Informer:
    def __init__(self, client: ApiClient, key: str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None):
        self.client = client
        self.key = key
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[Obj]:
        return [o for (ns, _), o in self.cache.items() if namespace is None or ns == namespace]

    async def run(self, handler: Handler | None = None) -> None:
        """Runs until cancelled, calling ``handler(event_type, obj)`` for every change."""
        while True:
            try:
                rv = await self._relist(handler)
                self.synced.set()
                async for event in self.client.watch(
                        self.key, self.namespace, resource_version=rv,
                        label_selector=self.label_selector, field_selector=self.field_selector):
                    etype, obj = event["type"], event["object"]
                    if etype == "ERROR":
                        break
                    if etype == "BOOKMARK":
                        continue
                    if etype == "DELETED":
                        self.cache.pop(obj_key(obj), None)
                    else:
                        self.cache[obj_key(obj)] = obj
                    await _call(handler, etype, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.code != 410:
                    log.warning("watch %s failed: %s; relisting", self.key, err.message)
                    await asyncio.sleep(0.5)
            except Exception:  # a handler bug must not stop the loop forever
                log.exception("informer %s handler failed; relisting", self.key)
                await asyncio.sleep(0.5)

    async def _relist(self, handler: Handler | None) -> str:
        listed = await self.client.list(self.key, self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector)
        fresh = {obj_key(o): o for o in listed["items"]}
        for k, old in list(self.cache.items()):
            if k not in fresh:
                del self.cache[k]
                await _call(handler, "DELETED", old)
        for k, obj in fresh.items():
            known = self.cache.get(k)
            self.cache[k] = obj
            if known is None:
                await _call(handler, "ADDED", obj)
            elif known.get("metadata", {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                await _call(handler, "MODIFIED", obj)
        return listed["metadata"]["resourceVersion"]


async def _call(handler: Handler | None, etype: str, obj: Obj) -> None:
    if handler is None:
        return
    result = handler(etype, obj)
    if asyncio.iscoroutine(result):
        await result
