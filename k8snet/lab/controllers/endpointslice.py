"""The EndpointSlice controller: the Service's backends as discovery.k8s.io/v1
EndpointSlices, at most 100 endpoints each (pkg/controller/endpointslice).

Unlike Endpoints, slices keep terminating pods (``terminating: true``) so kube-proxy
can drain them. Endpoints stay in the slice they are already in, new ones fill free
room before a new slice is made, and a Service with no backends keeps one empty
placeholder slice, as the real reconciler does: kube-proxy sees one small change per
pod change, not a reshuffle. Slices are owned by their Service, so the garbage
collector removes them with it.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Informers
from .endpoints import ServiceBackedController, backing_pods, has_selector, pod_identity, pod_ports, service_labels
from .util import is_deleting, is_pod_ready

SLICES = "discovery.k8s.io/endpointslices"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS = 100

PortsKey = tuple[tuple[Any, ...], ...]


def ports_key(ports: list[dict[str, Any]]) -> PortsKey:
    return tuple(sorted(tuple(sorted(p.items())) for p in ports))


def slice_endpoint(service: Obj, pod: Obj) -> dict[str, Any]:
    publish = service["spec"].get("publishNotReadyAddresses", False)
    serving = publish or is_pod_ready(pod)
    terminating = is_deleting(pod)
    return {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
        **pod_identity(service, pod),
    }


def desired_groups(service: Obj, pods: list[Obj]) -> dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Endpoints grouped by their resolved port list: ports key -> (ports, endpoints).
    Pods resolving named ports differently land in different slices."""
    groups: dict[PortsKey, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    has_ports = bool(service["spec"].get("ports"))
    for pod in backing_pods(service, pods, include_terminating=True):
        ports = pod_ports(service, pod)
        if has_ports and not ports:
            continue
        key = ports_key(ports)
        groups.setdefault(key, (ports, []))[1].append(slice_endpoint(service, pod))
    return groups


def slice_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in service_labels(service).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _ep_id(ep: dict[str, Any]) -> str:
    ref = ep.get("targetRef") or {}
    return ref.get("uid") or ep["addresses"][0]


def _sorted(eps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(eps, key=lambda e: (e["addresses"][0], _ep_id(e)))


def plan_slices(service: Obj, pods: list[Obj], existing: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(to create, to update, to delete): the slices that make ``existing`` show the
    Service's current backends with the fewest writes."""
    groups = desired_groups(service, pods)
    labels = slice_labels(service)
    creates: list[Obj] = []
    updates: list[Obj] = []
    deletes: list[Obj] = []
    by_group: dict[PortsKey, list[Obj]] = {}
    for s in sorted(existing, key=lambda s: s["metadata"]["name"]):
        by_group.setdefault(ports_key(s.get("ports") or []), []).append(s)

    kept: list[Obj] = []
    for key, slices in by_group.items():
        if key not in groups:
            deletes.extend(slices)
            continue
        wanted = {_ep_id(e): e for e in groups[key][1]}
        fills: list[list[dict[str, Any]]] = []
        for s in slices:  # endpoints stay where they are
            fills.append([wanted.pop(_ep_id(e)) for e in s.get("endpoints") or [] if _ep_id(e) in wanted])
        remaining = list(wanted.values())
        for eps in fills:  # new endpoints fill free room first
            while remaining and len(eps) < MAX_ENDPOINTS:
                eps.append(remaining.pop(0))
        for s, eps in zip(slices, fills):
            if not eps:
                deletes.append(s)
                continue
            kept.append(s)
            if _sorted(eps) != (s.get("endpoints") or []) or (s["metadata"].get("labels") or {}) != labels:
                updates.append(_with(s, labels, groups[key][0], _sorted(eps)))
        groups[key] = (groups[key][0], remaining)

    for ports, eps in groups.values():
        for i in range(0, len(eps), MAX_ENDPOINTS):
            creates.append(new_slice(service, labels, ports, _sorted(eps[i:i + MAX_ENDPOINTS])))

    if not kept and not creates:
        # No backends: keep (or make) one empty placeholder slice.
        placeholder = next((s for s in deletes if not s.get("ports") and not s.get("endpoints")), None)
        if placeholder is not None:
            deletes.remove(placeholder)
            if (placeholder["metadata"].get("labels") or {}) != labels:
                updates.append(_with(placeholder, labels, [], []))
        else:
            creates.append(new_slice(service, labels, [], []))
    # Like the real reconciler's finalize(): rather than create one slice and delete
    # another (the placeholder, say), rewrite the one to delete — fewer writes, and
    # watchers see the slice change instead of vanishing and reappearing.
    while creates and deletes:
        old, new = deletes.pop(0), creates.pop(0)
        updates.append(_with(old, labels, new.get("ports") or [], new.get("endpoints") or []))
    return creates, updates, deletes


def _with(s: Obj, labels: dict[str, str], ports: list[dict[str, Any]], eps: list[dict[str, Any]]) -> Obj:
    body = copy.deepcopy(s)
    body["metadata"]["labels"] = labels
    body["ports"] = ports
    body["endpoints"] = eps
    return body


def new_slice(service: Obj, labels: dict[str, str], ports: list[dict[str, Any]],
              eps: list[dict[str, Any]]) -> Obj:
    m = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{m['name']}-", "namespace": m["namespace"], "labels": labels,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": m["name"],
                                          "uid": m["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": ports,
    }


class EndpointSliceController(ServiceBackedController):
    component = "endpointslice-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.slices = self.watch(SLICES, self._on_slice)
        # service key -> {created slice name: give-up time}: slices the cache hasn't shown yet
        self._created: dict[tuple[str, str], dict[str, float]] = {}

    def _on_slice(self, etype: str, s: Obj) -> None:
        # Only a vanished slice needs us at once; our own edits must not echo back.
        svc_name = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name and (etype == "DELETED" or self._created.get((s["metadata"]["namespace"], svc_name))):
            self.queue.add((s["metadata"]["namespace"], svc_name))

    def _owned_slices(self, ns: str, name: str) -> list[Obj]:
        return [s for s in self.slices.items(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME]

    def _cache_caught_up(self, key: tuple[str, str]) -> bool:
        pending = self._created.get(key, {})
        clock = time.monotonic()
        for name in [n for n, deadline in pending.items()
                     if self.slices.get(key[0], n) is not None or deadline < clock]:
            del pending[name]
        return not pending

    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        svc = self.services.get(ns, name)
        if svc is None or not has_selector(svc) or is_deleting(svc):
            self.sizes.pop(key, None)
            return  # the garbage collector removes slices of deleted Services
        if not self._cache_caught_up(key):
            return  # re-queued by the slice's ADDED event (or the resync)
        owned = self._owned_slices(ns, name)
        self.sizes[key] = sum(len(s.get("endpoints") or []) for s in owned)
        creates, updates, deletes = plan_slices(svc, self.pods.items(ns), owned)
        # Create and update before deleting, so a moving endpoint never disappears.
        for body in creates:
            created = await self.client.create(SLICES, ns, body)
            self._created.setdefault(key, {})[created["metadata"]["name"]] = time.monotonic() + 10
        for body in updates:
            await self.client.update(SLICES, ns, body["metadata"]["name"], body)
        for s in deletes:
            try:
                await self.client.delete(SLICES, ns, s["metadata"]["name"])
            except ApiError as err:
                if err.code != 404:
                    raise
