"""Cluster DNS: the lab's CoreDNS, run as ``python3 -m k8snet.lab.dns`` in the coredns pod."""

from .answer import answer_wire
from .records import ENDPOINTSLICES, SERVICES, Answer, ClusterRecords
from .server import DnsServer

__all__ = ["Answer", "ClusterRecords", "DnsServer", "ENDPOINTSLICES", "SERVICES", "answer_wire"]
