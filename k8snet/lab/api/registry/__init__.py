"""Every kind the API server serves, each with its strategy: the one place that
lists them. Adding a kind is a module here (its :class:`~.strategy.Strategy` and
:class:`~k8snet.lab.api.apiresource.Resource`) and one line in :data:`STRATEGIES`;
discovery, OpenAPI, routing, the store handler, Tables, the garbage collector and the
namespace controller all read this list.
"""

from __future__ import annotations

from . import (
    apiservices,
    configmaps,
    daemonsets,
    deployments,
    endpoints,
    endpointslices,
    events,
    generic,
    jobs,
    namespaces,
    nodes,
    pods,
    rbac,
    replicasets,
    replicationcontrollers,
    secrets,
    serviceaccounts,
    services,
)
from .strategy import AdmissionContext, Strategy

# In discovery's order.
STRATEGIES: tuple[Strategy, ...] = (
    namespaces.STRATEGY,
    nodes.STRATEGY,
    pods.STRATEGY,
    services.STRATEGY,
    replicationcontrollers.STRATEGY,
    endpoints.STRATEGY,
    secrets.STRATEGY,
    configmaps.STRATEGY,
    serviceaccounts.STRATEGY,
    events.STRATEGY,
    deployments.STRATEGY,
    replicasets.STRATEGY,
    daemonsets.STRATEGY,
    jobs.STRATEGY,
    endpointslices.STRATEGY,
    events.EVENTS_V1_STRATEGY,
    generic.LEASES,
    rbac.ROLES,
    rbac.ROLE_BINDINGS,
    rbac.CLUSTER_ROLES,
    rbac.CLUSTER_ROLE_BINDINGS,
    apiservices.STRATEGY,
    *generic.REVIEWS,
)

_BY_KEY = {s.resource.key: s for s in STRATEGIES}


def strategy_for(key: str) -> Strategy:
    """The strategy of the resource with store key ``key`` (KeyError if not served)."""
    return _BY_KEY[key]


__all__ = ["STRATEGIES", "AdmissionContext", "Strategy", "strategy_for"]
