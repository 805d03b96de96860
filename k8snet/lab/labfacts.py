"""What a lab publishes about itself through the API (ConfigMap ``kube-public/k8snet-lab``,
written by :mod:`~k8snet.lab.bootstrap`), read back by the helper's ``Cluster.lab``: a
learner without access to the state folder learns the lab's networks from it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

from .config import LabConfig

LAB_FACTS_NAMESPACE = "kube-public"
LAB_FACTS_CONFIGMAP = "k8snet-lab"


@dataclass(frozen=True)
class LabFacts:
    """What a lab publishes about itself in ConfigMap ``kube-public/k8snet-lab``; the
    field names are :class:`~k8snet.lab.config.LabConfig`'s (the ConfigMap's keys are
    the camelCase ones in ``_KEYS``)."""

    name: str
    proxy_mode: str
    node_cidr: str  # the node network; the host has an address on it
    host_ip: str  # the host's address there: what a backend sees when the host connects
    loadbalancer_range: str  # "first-last" address of the LoadBalancer pool, on the node network
    pod_cidr: str
    service_cidr: str
    node_port_range: str  # "30000-32767"
    cluster_domain: str

    @property
    def context(self) -> str:
        """The lab's context in a user's kubeconfig (merged there by ``lab up``)."""
        return f"k8snet-{self.name}"

    @property
    def loadbalancer_pool(self) -> list[str]:
        """Every address the pool hands out, lowest first."""
        first, last = (ipaddress.ip_address(a) for a in self.loadbalancer_range.split("-"))
        return [str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1)]

    @classmethod
    def of(cls, config: LabConfig) -> LabFacts:
        pool = config.loadbalancer_pool
        low, high = config.node_port_range
        return cls(name=config.name, proxy_mode=config.proxy_mode, node_cidr=config.node_cidr,
                   host_ip=config.host_ip, loadbalancer_range=f"{pool[0]}-{pool[-1]}", pod_cidr=config.pod_cidr,
                   service_cidr=config.service_cidr, node_port_range=f"{low}-{high}",
                   cluster_domain=config.cluster_domain)

    def to_data(self) -> dict[str, str]:
        """The ConfigMap's ``data``."""
        return {_KEYS[f.name]: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_data(cls, data: dict[str, str]) -> LabFacts:
        missing = [key for key in _KEYS.values() if key not in data]
        if missing:
            raise ValueError(f"ConfigMap {LAB_FACTS_NAMESPACE}/{LAB_FACTS_CONFIGMAP} lacks {', '.join(missing)}")
        return cls(**{field: str(data[key]) for field, key in _KEYS.items()})


_KEYS = {"name": "name", "proxy_mode": "proxyMode", "node_cidr": "nodeCIDR", "host_ip": "hostIP",
         "loadbalancer_range": "loadBalancerPool", "pod_cidr": "podCIDR", "service_cidr": "serviceCIDR",
         "node_port_range": "nodePortRange", "cluster_domain": "clusterDomain"}
