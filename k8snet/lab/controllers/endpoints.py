"""The Endpoints controller: one ``Endpoints`` object per Service with a selector,
listing the matching pods' IPs (ready ones in ``addresses``, others in
``notReadyAddresses``) and target ports (pkg/controller/endpoint).

Also holds what the EndpointSlice controller shares with it: which pods back a
Service and how a Service port's targetPort resolves against a pod's containers.
Services without a selector are left alone: their Endpoints are the user's.
"""

from __future__ import annotations

from typing import Any

from ..config import LabConfig
from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .base import Controller, Informers, batch_period
from .util import is_deleting, is_pod_ready, map_selector_matches

HEADLESS_LABEL = "service.kubernetes.io/headless"


# -- shared with the EndpointSlice controller -----------------------------------

def has_selector(service: Obj) -> bool:
    spec = service.get("spec", {})
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def is_headless(service: Obj) -> bool:
    return service.get("spec", {}).get("clusterIP") in (None, "", "None")


def backing_pods(service: Obj, pods: list[Obj], *, include_terminating: bool) -> list[Obj]:
    """Pods of the Service's namespace it selects that have an IP and haven't finished
    (ShouldPodBeInEndpoints), sorted by name for stable output."""
    selector = service["spec"].get("selector")
    out = []
    for pod in pods:
        if not map_selector_matches(selector, pod["metadata"].get("labels")):
            continue
        status = pod.get("status", {})
        if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if is_deleting(pod) and not include_terminating:
            continue
        out.append(pod)
    return sorted(out, key=lambda p: p["metadata"]["name"])


def resolve_target_port(service_port: dict[str, Any], pod: Obj) -> int | None:
    """podutil.FindPort: a number as is; a name is looked up among the pod's container
    ports with the same protocol. None when the pod has no such named port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in pod.get("spec", {}).get("containers") or []:
        for cp in container.get("ports") or []:
            if cp.get("name") == target and cp.get("protocol", "TCP") == protocol:
                return cp["containerPort"]
    return None


def pod_ports(service: Obj, pod: Obj) -> list[dict[str, Any]]:
    """The Service's ports as this pod serves them: target port number, service port name."""
    out = []
    for sp in service["spec"].get("ports") or []:
        port = resolve_target_port(sp, pod)
        if port is None:
            continue
        ep: dict[str, Any] = {"name": sp.get("name", ""), "port": port, "protocol": sp.get("protocol", "TCP")}
        if sp.get("appProtocol"):
            ep["appProtocol"] = sp["appProtocol"]
        out.append(ep)
    return out


def pod_identity(service: Obj, pod: Obj) -> dict[str, Any]:
    """hostname (for a headless Service's subdomain), nodeName and targetRef: what an
    Endpoints address and an EndpointSlice endpoint both say about their pod."""
    out: dict[str, Any] = {}
    hostname = pod_hostname(service, pod)
    if hostname:
        out["hostname"] = hostname
    if pod.get("spec", {}).get("nodeName"):
        out["nodeName"] = pod["spec"]["nodeName"]
    out["targetRef"] = target_ref(pod)
    return out


def target_ref(pod: Obj) -> dict[str, str]:
    m = pod["metadata"]
    return {"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"]}


def pod_hostname(service: Obj, pod: Obj) -> str | None:
    """A pod with ``hostname`` and ``subdomain`` equal to a headless Service's name gets
    a DNS name of its own, so the address carries the hostname."""
    spec = pod.get("spec", {})
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        return spec["hostname"]
    return None


def service_labels(service: Obj) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


# -- Endpoints ----------------------------------------------------------------------

def endpoints_subsets(service: Obj, pods: list[Obj]) -> list[dict[str, Any]]:
    """Subsets like RepackSubsets: addresses grouped by identical port lists."""
    publish_not_ready = service["spec"].get("publishNotReadyAddresses", False)
    groups: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = {}
    port_lists: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    has_ports = bool(service["spec"].get("ports"))
    for pod in backing_pods(service, pods, include_terminating=False):
        ports = [{k: v for k, v in p.items() if not (k == "name" and v == "")} for p in pod_ports(service, pod)]
        if has_ports and not ports:
            continue  # none of the Service's ports resolve on this pod
        ports.sort(key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
        key = tuple(tuple(sorted(p.items())) for p in ports)
        port_lists[key] = ports
        address: dict[str, Any] = {"ip": pod["status"]["podIP"], **pod_identity(service, pod)}
        bucket = "addresses" if publish_not_ready or is_pod_ready(pod) else "notReadyAddresses"
        groups.setdefault(key, {}).setdefault(bucket, []).append(address)
    subsets = []
    for key in sorted(groups):
        subset: dict[str, Any] = {}
        for bucket in ("addresses", "notReadyAddresses"):
            if groups[key].get(bucket):
                subset[bucket] = sorted(groups[key][bucket], key=lambda a: a["ip"])
        if port_lists[key]:
            subset["ports"] = port_lists[key]
        subsets.append(subset)
    return subsets


def desired_endpoints(service: Obj, pods: list[Obj]) -> Obj:
    m = service["metadata"]
    ep: Obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": m["name"], "namespace": m["namespace"], "labels": service_labels(service)}}
    subsets = endpoints_subsets(service, pods)
    if subsets:
        ep["subsets"] = subsets
    return ep


class ServiceBackedController(Controller):
    """What the Endpoints and EndpointSlice controllers share: one key per Service,
    re-queued when the Service or any pod of its namespace changes."""

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.services = self.watch("services", self._on_service)
        self.pods = self.watch("pods", self._on_pod)
        # Service key -> endpoints at its last reconcile: sizes the batching of pod changes
        self.sizes: dict[tuple[str, str], int] = {}

    def _on_service(self, etype: str, svc: Obj) -> None:
        self.queue.add((svc["metadata"]["namespace"], svc["metadata"]["name"]))

    def _on_pod(self, etype: str, pod: Obj) -> None:
        # Any pod change may add, drop or change an address; reconciling every selecting
        # Service of the namespace writes nothing when nothing changed. Batched (as
        # upstream's --endpoint-updates-batch-period, there a fixed delay): a reconcile
        # reads all of the Service's pods and may rewrite an object listing all of them,
        # so one per pod change would make a burst of N pod changes cost N².
        for svc in self.services.items(pod["metadata"]["namespace"]):
            if has_selector(svc):
                key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
                self.queue.add_batched(key, batch_period(self.sizes.get(key, 0)))

    def resync(self) -> None:
        self.enqueue_all(self.services)


class EndpointsController(ServiceBackedController):
    component = "endpoint-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.endpoints = self.watch("endpoints", self._on_endpoints)

    def _on_endpoints(self, etype: str, ep: Obj) -> None:
        # Someone deleted "our" Endpoints: put them back. (Edits wait for the resync, so
        # our own writes never echo into another reconcile.)
        if etype != "DELETED":
            return
        svc = self.services.get(ep["metadata"]["namespace"], ep["metadata"]["name"])
        if svc is not None and has_selector(svc):
            self.queue.add((ep["metadata"]["namespace"], ep["metadata"]["name"]))

    async def reconcile(self, key: tuple[str, str]) -> None:
        ns, name = key
        svc = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if svc is None:
            self.sizes.pop(key, None)
            # The Service is gone; its Endpoints go with it (they carry no ownerReference).
            if current is not None:
                try:
                    await self.client.delete("endpoints", ns, name)
                except ApiError as err:
                    if err.code != 404:
                        raise
            return
        if not has_selector(svc) or is_deleting(svc):
            return
        want = desired_endpoints(svc, self.pods.items(ns))
        self.sizes[key] = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
                              for s in want.get("subsets") or [])
        if current is None:
            await self.client.create("endpoints", ns, want)
            return
        if (current.get("subsets") or []) == want.get("subsets", []) and \
                (current["metadata"].get("labels") or {}) == want["metadata"]["labels"]:
            return
        body = {**current, "metadata": {**current["metadata"], "labels": want["metadata"]["labels"]}}
        body.pop("subsets", None)
        if "subsets" in want:
            body["subsets"] = want["subsets"]
        await self.client.update("endpoints", ns, name, body)
