"""kube-proxy for the lab: services + endpoint slices -> iptables or nftables rules in a node."""

from .iptables import render_iptables
from .model import Endpoint, NodeInfo, ServicePort, build_model
from .nftables import render_nftables
from .proxy import KubeProxy, SyncStats

__all__ = ["Endpoint", "KubeProxy", "NodeInfo", "ServicePort", "SyncStats", "build_model",
           "render_iptables", "render_nftables"]
