"""A small cluster's Services and EndpointSlices, shaped exactly as the API returns them,
for the DNS tests (records and server)."""

from __future__ import annotations

from typing import Any

from k8snet.lab.dns import ENDPOINTSLICES, SERVICES, ClusterRecords

Obj = dict[str, Any]


def service(name: str, ns: str, cluster_ip: str | None, ports: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"type": "ClusterIP", "ports": [{"protocol": "TCP", **p} for p in ports or []],
                 "sessionAffinity": "None", **spec}
    if cluster_ip is not None:
        body.update(clusterIP=cluster_ip, clusterIPs=[cluster_ip], ipFamilies=["IPv4"])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "resourceVersion": "100"},
            "spec": body, "status": {"loadBalancer": {}}}


def endpoint(ip: str, *, hostname: str | None = None, ready: bool | None = True, pod: str = "") -> Obj:
    ep: Obj = {"addresses": [ip], "nodeName": "k8snet-worker",
               "targetRef": {"kind": "Pod", "namespace": "default", "name": pod or f"pod-{ip.replace('.', '-')}"}}
    if ready is not None:
        ep["conditions"] = {"ready": ready, "serving": ready, "terminating": False}
    else:
        ep["conditions"] = {}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(service_name: str, ns: str, suffix: str, ports: list[Obj], endpoints: list[Obj],
                   address_type: str = "IPv4") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": address_type,
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": ns, "resourceVersion": "101",
                         "generateName": f"{service_name}-",
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "ports": [{"protocol": "TCP", **p} for p in ports], "endpoints": endpoints}


HTTP = [{"name": "http", "port": 80, "targetPort": 80}]

SERVICE_OBJECTS = [
    service("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443, "targetPort": 6443}]),
    service("kube-dns", "kube-system", "10.96.0.10", [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]),
    service("my-nginx", "default", "10.96.0.50", HTTP, selector={"run": "my-nginx"}),
    service("unnamed", "default", "10.96.0.51", [{"port": 8080, "targetPort": 80}]),
    service("web", "default", "None", HTTP, selector={"app": "web"}),
    service("empty-headless", "default", "None", HTTP, selector={"app": "nothing"}),
    service("big", "default", "None", HTTP, selector={"app": "big"}),
    service("my-db", "prod", None, type="ExternalName", externalName="db.example.com"),
    service("alias", "default", None, type="ExternalName", externalName="my-nginx.default.svc.cluster.local"),
]

SLICE_OBJECTS = [
    endpoint_slice("kubernetes", "default", "", [{"name": "https", "port": 6443}],
                   [{"addresses": ["172.31.0.1"], "conditions": {"ready": True}}]),
    endpoint_slice("my-nginx", "default", "x7k2p", [{"name": "http", "port": 80}],
                   [endpoint("10.244.1.5"), endpoint("10.244.2.6")]),
    endpoint_slice("web", "default", "abcde", [{"name": "http", "port": 8080}], [
        endpoint("10.244.1.10", hostname="web-0"),
        endpoint("10.244.2.11", hostname="web-1"),
        endpoint("10.244.2.12", ready=None),  # condition unknown: counts as ready
        endpoint("10.244.1.13", hostname="web-3", ready=False)]),
    endpoint_slice("empty-headless", "default", "zzzzz", [{"name": "http", "port": 80}],
                   [endpoint("10.244.1.99", ready=False)]),
    endpoint_slice("big", "default", "b1", [{"name": "http", "port": 80}],
                   [endpoint(f"10.244.3.{i}") for i in range(1, 101)]),
]


def cluster_records(**kwargs: Any) -> ClusterRecords:
    """Records fed the way the watcher feeds them: a list per kind."""
    records = ClusterRecords(**kwargs)
    records.replace(SERVICES, SERVICE_OBJECTS)
    records.replace(ENDPOINTSLICES, SLICE_OBJECTS)
    return records
