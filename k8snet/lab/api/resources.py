"""The resource types the lab's API server serves, and lookups over them.

Each kind's :class:`Resource` is declared beside its rules in
:mod:`k8snet.lab.api.registry`; discovery, routing, OpenAPI, the store and the
clients read the table gathered here.
"""

from __future__ import annotations

from .apiresource import ALL_VERBS, Resource, Subresource
from .registry import STRATEGIES

__all__ = ["ALL_VERBS", "GROUP_VERSIONS", "RESOURCES", "REVIEW_KEYS", "Resource", "Subresource", "by_key", "by_kind",
           "find"]

RESOURCES: tuple[Resource, ...] = tuple(s.resource for s in STRATEGIES)

# Resources that are questions to the API server rather than stored objects.
REVIEW_KEYS = frozenset(r.key for r in RESOURCES if r.group in ("authorization.k8s.io", "authentication.k8s.io"))

GROUP_VERSIONS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((r.group, r.version) for r in RESOURCES))


def find(group: str, plural: str) -> Resource | None:
    """The resource served at /api(s)/<group>/<version>/<plural>, or None."""
    return next((r for r in RESOURCES if r.group == group and r.plural == plural), None)


def by_kind(api_version: str, kind: str) -> Resource | None:
    """The resource for a manifest's apiVersion and kind, or None."""
    return next((r for r in RESOURCES if r.api_version == api_version and r.kind == kind), None)


def by_key(key: str) -> Resource:
    for r in RESOURCES:
        if r.key == key:
            return r
    raise KeyError(key)
