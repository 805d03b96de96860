"""Recording core/v1 Events, like client-go's legacy EventRecorder.

Events are what ``kubectl describe`` shows under "Events" and ``kubectl get events``
lists. A repeat of the same event (same object, type, reason, message, source) is
folded into the first one by bumping ``count`` and ``lastTimestamp``, as the real
EventCorrelator does, so a crash-looping pod doesn't flood the namespace.

Recording is best effort: a failed event is logged and never raised, because losing
an event must not stop a controller or the kubelet.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from .contracts import ApiClient, Obj
from .errors import ApiError
from .timefmt import rfc3339

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 4096  # the real correlator's LRU size


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, host: str | None = None):
        self.client = client
        self.component = component
        self.host = host
        # aggregation key -> (namespace, event name, count)
        self._seen: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()

    async def record(self, obj: Obj, type_: str, reason: str, message: str, *,
                     kind: str | None = None, api_version: str | None = None,
                     field_path: str | None = None) -> None:
        """Records one event about ``obj`` (``type_`` is "Normal" or "Warning").

        ``kind``/``api_version`` name the object when it lacks them (list items do)."""
        try:
            await self._record(obj, type_, reason, message, kind, api_version, field_path)
        except Exception as err:  # noqa: BLE001 - events are best effort by design
            log.debug("event %s %s dropped: %s", reason, message, err)

    async def _record(self, obj: Obj, type_: str, reason: str, message: str, kind: str | None,
                      api_version: str | None, field_path: str | None) -> None:
        m = obj.get("metadata", {})
        involved = {
            "kind": kind or obj.get("kind", ""),
            "namespace": m.get("namespace", ""),
            "name": m.get("name", ""),
            "uid": m.get("uid", ""),
            "apiVersion": api_version or obj.get("apiVersion", ""),
            "resourceVersion": m.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        if not involved["namespace"]:
            del involved["namespace"]
        # Events about cluster-scoped objects (nodes, namespaces) live in "default".
        namespace = m.get("namespace") or "default"
        key = (namespace, involved["kind"], involved["name"], involved["uid"], field_path or "",
               type_, reason, message, self.component, self.host or "")
        now = rfc3339()

        seen = self._seen.get(key)
        if seen is not None:
            ns, name, count = seen
            try:
                await self.client.patch("events", ns, name, {"count": count + 1, "lastTimestamp": now})
                self._remember(key, (ns, name, count + 1))
                return
            except ApiError as err:
                if err.code != 404:
                    raise
                # The event expired or was deleted: start a new one.

        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host or "",
        }
        created = await self.client.create("events", namespace, body)
        self._remember(key, (namespace, created["metadata"]["name"], 1))

    def _remember(self, key: tuple[str, ...], value: tuple[str, str, int]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)
