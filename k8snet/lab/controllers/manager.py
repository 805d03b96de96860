"""Runs every controller of the lab in one asyncio loop, on shared informers
(kube-controller-manager plus kube-scheduler)."""

from __future__ import annotations

import asyncio
import logging

from ..config import LabConfig
from ..contracts import ApiClient
from .base import Controller, Informers
from .clusterroleaggregation import ClusterRoleAggregationController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .garbagecollector import GarbageCollector
from .job import JobController
from .loadbalancer import LoadBalancerController
from .namespace import NamespaceController
from .replicaset import ReplicaSetController
from .replicationcontroller import ReplicationManager
from .scheduler import Scheduler
from .serviceaccount import ServiceAccountController

log = logging.getLogger(__name__)

CONTROLLERS: tuple[type[Controller], ...] = (
    ServiceAccountController, NamespaceController, Scheduler, ReplicaSetController,
    DeploymentController, EndpointsController, EndpointSliceController, GarbageCollector,
    LoadBalancerController, ClusterRoleAggregationController, JobController,
    DaemonSetController, ReplicationManager,
)


class ControllerManager:
    def __init__(self, client: ApiClient, config: LabConfig,
                 controllers: tuple[type[Controller], ...] = CONTROLLERS):
        self.informers = Informers(client)
        self.controllers = [cls(client, config, informers=self.informers) for cls in controllers]

    async def run(self) -> None:
        """Runs until cancelled. A controller that crashes is logged and restarted,
        so one bug never takes the others down."""
        self.informers.start()
        try:
            await asyncio.gather(*(self._supervise(c) for c in self.controllers))
        finally:
            await self.informers.stop()

    async def wait_synced(self) -> None:
        await self.informers.wait_synced()

    @staticmethod
    async def _supervise(controller: Controller) -> None:
        while True:
            try:
                await controller.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s crashed; restarting", controller.component)
                await asyncio.sleep(1)
