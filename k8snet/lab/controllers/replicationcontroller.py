"""The ReplicationController manager (pkg/controller/replication): the ReplicaSet
controller for v1 ReplicationControllers, whose selector is a plain label map."""

from __future__ import annotations

from ..contracts import Obj
from .replicaset import ReplicaSetController


class ReplicationManager(ReplicaSetController):
    component = "replication-controller"
    resource_key = "replicationcontrollers"
    kind = "ReplicationController"
    api_version = "v1"

    @staticmethod
    def selector(rs: Obj) -> Obj | None:
        labels = rs["spec"].get("selector")
        return {"matchLabels": labels} if labels else None
