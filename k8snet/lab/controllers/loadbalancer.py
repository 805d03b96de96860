"""The lab's LoadBalancer controller: the cloud-controller-manager's service controller,
with an address pool on the node network as the "cloud" (like MetalLB's layer 2 mode
or kind's cloud-provider-kind).

For every Service of ``type: LoadBalancer`` without a ``loadBalancerClass`` (a class
means another implementation owns it, as on a real cloud) it

- adds the ``service.kubernetes.io/load-balancer-cleanup`` finalizer first, so a
  deleted Service keeps its address until it is released;
- picks an address from the lab's pool (``spec.loadBalancerIP`` when set and free,
  else the lowest free one) and writes ``status.loadBalancer.ingress`` =
  ``[{ip, ipMode: VIP}]`` through the status subresource;
- when the type changes away from LoadBalancer or the Service is deleted, clears
  the status and removes the finalizer: the address goes back to the pool;
- records the real controller's events (EnsuringLoadBalancer, EnsuredLoadBalancer,
  DeletingLoadBalancer, DeletedLoadBalancer, SyncLoadBalancerFailed, Type).

It only does the API side. Making the address answer on the node network is the
announcer's job (:mod:`k8snet.lab.net.lbannounce`), which follows the status this
controller writes, as MetalLB's speaker follows its controller.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from .base import Controller, Informers
from .util import is_deleting

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
Key = tuple[str, str]


class AllocationError(Exception):
    """No address can be given; the message is the SyncLoadBalancerFailed event's."""


# -- pure decisions --------------------------------------------------------------

def wants_load_balancer(svc: Obj) -> bool:
    """Type LoadBalancer, no loadBalancerClass (someone else's), not being deleted."""
    spec = svc.get("spec") or {}
    return (spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")
            and not is_deleting(svc))


def ingress_ips(svc: Obj) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if isinstance(i, dict) and i.get("ip")]


def choose_ip(svc: Obj, pool: list[str], used: set[str]) -> str:
    """The address ``svc`` should have: its current one while still valid, else the
    requested ``spec.loadBalancerIP``, else the lowest free one of ``pool``."""
    requested = (svc.get("spec") or {}).get("loadBalancerIP") or ""
    current = [ip for ip in ingress_ips(svc) if ip in pool and ip not in used]
    if requested:
        if requested in current:
            return requested
        if requested not in pool:
            raise AllocationError(f"requested loadBalancerIP {requested} is not in the lab's pool "
                                  f"{pool[0]}-{pool[-1]}")
        if requested in used:
            raise AllocationError(f"requested loadBalancerIP {requested} is already in use by another Service")
        return requested
    if current:
        return current[0]
    for ip in sorted(pool, key=ipaddress.ip_address):
        if ip not in used:
            return ip
    raise AllocationError(f"no free address left in the lab's pool {pool[0]}-{pool[-1]}")


def status_patch(ip: str | None) -> Obj:
    """Merge patch for the status subresource; None clears the ingress list."""
    return {"status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}] if ip else None}}}


def finalizers_patch(svc: Obj, add: bool) -> Obj:
    """Merge patch replacing metadata.finalizers, guarded by the resourceVersion so a
    concurrent change to the list is never lost (409 -> the key is retried)."""
    meta = svc["metadata"]
    current = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    return {"metadata": {"finalizers": current + [FINALIZER] if add else current or None,
                         "resourceVersion": meta["resourceVersion"]}}


# -- the controller -----------------------------------------------------------------

class LoadBalancerController(Controller):
    component = "service-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.services = self.watch("services", self._on_service)
        self.pool = config.loadbalancer_pool
        # Addresses this controller gave out whose status may not be in the cache yet.
        self._assigned: dict[Key, str] = {}
        self._types: dict[Key, str] = {}

    def _on_service(self, _etype: str, svc: Obj) -> None:
        meta = svc["metadata"]
        self.queue.add((meta["namespace"], meta["name"]))

    def resync(self) -> None:
        for svc in self.services.items():
            self._on_service("SYNC", svc)

    def _used(self, key: Key) -> set[str]:
        used = {ip for k, ip in self._assigned.items() if k != key}
        for svc in self.services.items():
            meta = svc["metadata"]
            if (meta["namespace"], meta["name"]) != key:
                used.update(ip for ip in ingress_ips(svc) if ip in self.pool)
        return used

    async def reconcile(self, key: Any) -> None:
        svc = self.services.get(*key)
        if svc is None:
            self._assigned.pop(key, None)
            self._types.pop(key, None)
            return
        await self._note_type(key, svc)
        if wants_load_balancer(svc):
            await self._ensure(key, svc)
        elif FINALIZER in (svc["metadata"].get("finalizers") or []) or (
                ingress_ips(svc) and not (svc.get("spec") or {}).get("loadBalancerClass")):
            await self._delete(key, svc)
        else:
            self._assigned.pop(key, None)

    async def _note_type(self, key: Key, svc: Obj) -> None:
        """The real controller's "Type" event, e.g. ``NodePort -> LoadBalancer``."""
        new = (svc.get("spec") or {}).get("type", "ClusterIP")
        old = self._types.get(key)
        self._types[key] = new
        if old is not None and old != new and "LoadBalancer" in (old, new):
            await self.recorder.record(svc, "Normal", "Type", f"{old} -> {new}")

    async def _ensure(self, key: Key, svc: Obj) -> None:
        ns, name = key
        if FINALIZER not in (svc["metadata"].get("finalizers") or []):
            # Finalizer first (as the real controller): the next event brings us back.
            await self.client.patch("services", ns, name, finalizers_patch(svc, add=True))
            return
        have = ingress_ips(svc)
        try:
            ip = choose_ip(svc, self.pool, self._used(key))
        except AllocationError as err:
            await self.recorder.record(svc, "Warning", "SyncLoadBalancerFailed",
                                       f"Error syncing load balancer: failed to ensure load balancer: {err}")
            raise
        self._assigned[key] = ip
        if have == [ip] and _ip_mode(svc) == "VIP":
            return
        await self.recorder.record(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        await self.client.patch("services", ns, name, status_patch(ip), subresource="status")
        await self.recorder.record(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")

    async def _delete(self, key: Key, svc: Obj) -> None:
        ns, name = key
        had = bool(ingress_ips(svc))
        if had:
            await self.recorder.record(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
            await self.client.patch("services", ns, name, status_patch(None), subresource="status")
        self._assigned.pop(key, None)
        if FINALIZER in (svc["metadata"].get("finalizers") or []):
            fresh = await self.client.get("services", ns, name)
            await self.client.patch("services", ns, name, finalizers_patch(fresh, add=False))
        if had:
            await self.recorder.record(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")


def _ip_mode(svc: Obj) -> str | None:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0].get("ipMode") if ingress else None
