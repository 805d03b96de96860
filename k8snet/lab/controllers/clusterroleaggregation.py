"""The ClusterRole aggregation controller (pkg/controller/clusterroleaggregation):
a ClusterRole with an ``aggregationRule`` gets, as its ``rules``, the union of the
rules of every other ClusterRole its selectors match. That is how ``admin``,
``edit`` and ``view`` are built from the ``system:aggregate-to-*`` roles, and how a
role labelled ``rbac.authorization.k8s.io/aggregate-to-view: "true"`` extends ``view``.
"""

from __future__ import annotations

from ..api.authorizer import CLUSTER_ROLES
from ..api.rbac import merge_rules
from ..config import LabConfig
from ..contracts import ApiClient, Obj
from .base import Controller, Informers
from .util import selector_matches


class ClusterRoleAggregationController(Controller):
    component = "clusterrole-aggregation-controller"

    def __init__(self, client: ApiClient, config: LabConfig, *, informers: Informers | None = None):
        super().__init__(client, config, informers=informers)
        self.roles = self.watch(CLUSTER_ROLES, self._on_role)

    def _on_role(self, etype: str, role: Obj) -> None:
        # Any role may feed any aggregated one: look at every aggregated role again.
        self.resync()

    def resync(self) -> None:
        for role in self.roles.items():
            if role.get("aggregationRule"):
                self.queue.add(role["metadata"]["name"])

    async def reconcile(self, name: str) -> None:
        role = self.roles.get("", name)
        if role is None or not isinstance(role.get("aggregationRule"), dict):
            return
        selectors = role["aggregationRule"].get("clusterRoleSelectors") or []
        sources = sorted((r for r in self.roles.items() if r["metadata"]["name"] != name
                          and any(selector_matches(s, r["metadata"].get("labels")) for s in selectors)),
                         key=lambda r: r["metadata"]["name"])
        rules = merge_rules([r.get("rules") or [] for r in sources])
        if rules != (role.get("rules") or []):
            await self.client.update(CLUSTER_ROLES, None, name, {**role, "rules": rules})
