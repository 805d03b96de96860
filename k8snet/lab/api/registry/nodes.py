"""Nodes (pkg/registry/core/node/strategy.go): cluster-scoped; unlike other kinds
with a status subresource, a node's status may be set on create (the kubelet
registers its node with its addresses and capacity)."""

from __future__ import annotations

from ...contracts import Obj
from .. import tables
from ..apiresource import Resource, status_subresource
from .strategy import AdmissionContext, Printing, Strategy

RESOURCE = Resource("", "v1", "nodes", "node", "Node", False, ("no",), subresources=(status_subresource("Node"),))


def default_node(node: Obj) -> None:
    status = node.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])  # SetDefaults_NodeStatus


class NodeStrategy(Strategy):
    table = Printing(tables.NODE_COLUMNS, tables.print_node)

    def default(self, obj: Obj) -> None:
        default_node(obj)

    def prepare_for_create(self, obj: Obj, ctx: AdmissionContext) -> None:
        """Nodes allow every field, status included, on create."""


STRATEGY = NodeStrategy(RESOURCE)
