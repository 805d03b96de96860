"""The namespace controller: empties a Terminating namespace, then finalizes it
(pkg/controller/namespace).

Deleting a namespace only marks it (``deletionTimestamp``, phase Terminating). This
controller deletes every namespaced object in it, waits until nothing is left (pods
linger until their kubelet has stopped them), then removes the "kubernetes" entry
from ``spec.finalizers`` through the ``finalize`` subresource; the API server
deletes the namespace once no finalizer remains.

A namespace whose objects all went at the first delete is finalized in that same
reconcile, and the last pod of a terminating namespace going away queues the
namespace at once: ``kubectl delete namespace`` (and every notebook's cleanup) then
returns as soon as the kubelet has stopped the pods, not at the next recheck.
"""

from __future__ import annotations

import copy
import logging

from ..api.resources import RESOURCES
from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Controller, Informers
from .util import is_deleting

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
# how often to look whether the last objects have gone; pods (what lingers) queue the
# namespace themselves when they go, so this only covers other objects with finalizers
RECHECK = 0.5
# what a namespace can hold that the controller deletes
DELETABLE = tuple(res.key for res in RESOURCES if res.namespaced and "delete" in res.verbs)


class NamespaceController(Controller):
    component = "namespace-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.namespaces = self.watch("namespaces", self._on_namespace)
        self.watch("pods", self._on_pod)

    def _on_namespace(self, etype: str, ns: Obj) -> None:
        if etype != "DELETED" and is_deleting(ns):
            self.queue.add(ns["metadata"]["name"])

    def _on_pod(self, etype: str, pod: Obj) -> None:
        if etype != "DELETED":
            return
        ns = self.namespaces.get("", pod["metadata"].get("namespace", ""))
        if ns is not None and is_deleting(ns):
            self.queue.add(ns["metadata"]["name"])

    def resync(self) -> None:
        for ns in self.namespaces.items():
            self._on_namespace("MODIFIED", ns)

    async def reconcile(self, name: str) -> None:
        ns = self.namespaces.get("", name)
        if ns is None or not is_deleting(ns) or FINALIZER not in (ns.get("spec", {}).get("finalizers") or []):
            return
        found = await self._contents(name)
        for key, obj in found:
            if is_deleting(obj):
                continue  # already on its way out (a kubelet or finalizer is finishing it)
            try:
                await self.client.delete(key, name, obj["metadata"]["name"])
            except ApiError as err:
                if err.code not in (404, 409):
                    raise
        # what the deletes removed outright is gone now; only what lingers counts
        remaining = len(await self._contents(name)) if found else 0
        if remaining:
            log.debug("namespace %s: %d objects remaining", name, remaining)
            self.queue.add_after(name, RECHECK)
            return
        body = copy.deepcopy(ns)
        body["spec"]["finalizers"] = [f for f in body["spec"]["finalizers"] if f != FINALIZER]
        await self.client.update("namespaces", None, name, body, subresource="finalize")

    async def _contents(self, namespace: str) -> list[tuple[str, Obj]]:
        """Every object left in the namespace, with its resource key: from live lists,
        not caches (finalizing early would orphan objects forever)."""
        return [(key, obj) for key in DELETABLE for obj in (await self.client.list(key, namespace))["items"]]
