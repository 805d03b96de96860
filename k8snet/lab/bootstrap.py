"""The objects a fresh cluster starts with, as kubeadm and kind create them:
system namespaces, the ``kubernetes`` Service and its endpoints (the API server's
own address on the node network), cluster DNS (``coredns`` Deployment, ``kube-dns``
Service at 10.96.0.10), the default RBAC policy (:mod:`~k8snet.lab.api.bootstrappolicy`) — and
what the lab tells about itself through the API:

- ConfigMap ``kube-system/kube-proxy``, key ``config.conf``: a KubeProxyConfiguration
  (``mode``, ``clusterCIDR``, ...), where kubeadm clusters keep kube-proxy's settings;
- ConfigMap ``kube-public/k8snet-lab``: the lab's own facts (:class:`LabFacts`: name,
  node network, the host's address on it, LoadBalancer pool, ...), readable by every
  authenticated user, like kubeadm's ``kube-public/cluster-info``.

A learner who reaches the lab through a kubeconfig context (no root, no access to the
state folder) learns everything from these, as from any cluster.
"""

from __future__ import annotations

from typing import Any

import yaml

from .api import bootstrappolicy
from .api.authorizer import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES
from .api.registry.apiservices import RESOURCE as APISERVICES
from .api.registry.apiservices import local_apiservice
from .api.resources import GROUP_VERSIONS
from .config import LabConfig
from .contracts import ApiClient, Obj
from .errors import ApiError
from .labfacts import LAB_FACTS_CONFIGMAP, LAB_FACTS_NAMESPACE, LabFacts

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
API_SERVER_PORT = 6443
DNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
DNS_LABELS = {"k8s-app": "kube-dns"}


def lab_facts_configmap(config: LabConfig) -> Obj:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": LAB_FACTS_CONFIGMAP, "namespace": LAB_FACTS_NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "k8snet-lab"}},
        "data": LabFacts.of(config).to_data(),
    }


def kube_proxy_configmap(config: LabConfig) -> Obj:
    """kube-proxy's settings as kubeadm publishes them (``kubectl -n kube-system get cm
    kube-proxy``); the lab's kube-proxy takes the same values from its LabConfig."""
    from .proxy.model import NodeInfo  # the masquerade defaults the renderers use

    defaults = NodeInfo(name="", ip="")
    conf = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": config.proxy_mode,
        "clusterCIDR": config.pod_cidr,
        "iptables": {"masqueradeAll": defaults.masquerade_all, "masqueradeBit": defaults.masquerade_bit},
        "nodePortAddresses": None,
    }
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": yaml.safe_dump(conf, sort_keys=False)},
    }


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


CONTROL_PLANE_LABELS = {"node-role.kubernetes.io/control-plane": "",
                        "node.kubernetes.io/exclude-from-external-load-balancers": ""}


async def mark_control_plane(client: ApiClient, config: LabConfig) -> None:
    """kubeadm's mark-control-plane phase: the first node's role labels, set with the
    admin's rights after its kubelet registered it (a kubelet may not label itself
    with a role: NodeRestriction)."""
    await client.patch("nodes", None, config.node_name(0), {"metadata": {"labels": CONTROL_PLANE_LABELS}},
                       patch_type="merge")


async def bootstrap(client: ApiClient, config: LabConfig) -> None:
    for name in SYSTEM_NAMESPACES:
        await ensure(client, "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    for role in bootstrappolicy.cluster_roles():
        await ensure(client, CLUSTER_ROLES, role)
    for binding in bootstrappolicy.cluster_role_bindings():
        await ensure(client, CLUSTER_ROLE_BINDINGS, binding)
    for account in bootstrappolicy.service_accounts():
        await ensure(client, "serviceaccounts", account)
    await ensure(client, "services", kubernetes_service(config))
    for key, obj in kubernetes_endpoints(config):
        await ensure(client, key, obj)
    for key, obj in dns_objects(config):
        await ensure(client, key, obj)
    await ensure(client, "configmaps", kube_proxy_configmap(config))
    await ensure(client, "configmaps", lab_facts_configmap(config))
    # autoregister: one Local APIService per group-version the server serves
    for group, version in GROUP_VERSIONS:
        await ensure(client, APISERVICES.key, local_apiservice(group, version))
