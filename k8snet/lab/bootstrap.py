"""The objects a fresh cluster starts with, as kubeadm and kind create them:
system namespaces, the ``kubernetes`` Service and its endpoints (the API server's
own address on the node network), and cluster DNS (``coredns`` Deployment,
``kube-dns`` Service at 10.96.0.10)."""

from __future__ import annotations

from typing import Any

from .api.errors import ApiError
from .config import LabConfig
from .contracts import ApiClient, Obj

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
API_SERVER_PORT = 6443
DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
DNS_LABELS = {"k8s-app": "kube-dns"}


def kubernetes_service(config: LabConfig) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": config.kubernetes_service_ip,
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": API_SERVER_PORT}]},
    }


def kubernetes_endpoints(config: LabConfig) -> list[tuple[str, Obj]]:
    """The API server publishes its own endpoints (the real one's endpoint reconciler)."""
    ip = config.wire_gateway_ip
    return [
        ("endpoints", {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}],
                         "ports": [{"name": "https", "port": API_SERVER_PORT, "protocol": "TCP"}]}],
        }),
        ("discovery.k8s.io/endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": API_SERVER_PORT, "protocol": "TCP"}],
        }),
    ]


def dns_objects(config: LabConfig) -> list[tuple[str, Obj]]:
    ns = "kube-system"
    probe = lambda path: {"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"},  # noqa: E731
                          "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 3}
    return [
        ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": {"name": "coredns", "namespace": ns}}),
        ("services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns,
                         "labels": {**DNS_LABELS, "kubernetes.io/cluster-service": "true",
                                    "kubernetes.io/name": "CoreDNS"}},
            "spec": {"selector": DNS_LABELS, "clusterIP": config.dns_service_ip, "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ]},
        }),
        ("apps/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": ns, "labels": DNS_LABELS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": DNS_LABELS},
                "template": {
                    "metadata": {"labels": DNS_LABELS},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "containers": [{
                            "name": "coredns", "image": DNS_IMAGE,
                            "args": ["--domain", config.cluster_domain],
                            "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                      {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
                            "readinessProbe": probe("/ready"),
                            "livenessProbe": {**probe("/health"), "periodSeconds": 10, "failureThreshold": 5},
                        }],
                    },
                },
            },
        }),
    ]


async def ensure(client: ApiClient, key: str, obj: Obj) -> Any:
    """Creates ``obj`` unless it already exists (bootstrap is re-runnable)."""
    meta = obj["metadata"]
    try:
        return await client.create(key, meta.get("namespace"), obj)
    except ApiError as err:
        if err.code != 409:
            raise
        return await client.get(key, meta.get("namespace"), meta["name"])


async def bootstrap(client: ApiClient, config: LabConfig) -> None:
    for name in SYSTEM_NAMESPACES:
        await ensure(client, "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await ensure(client, "services", kubernetes_service(config))
    for key, obj in kubernetes_endpoints(config):
        await ensure(client, key, obj)
    for key, obj in dns_objects(config):
        await ensure(client, key, obj)
