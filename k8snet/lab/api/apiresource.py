"""The description of one served resource type (what discovery lists for it):
group, version, names, scope, verbs and subresources."""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""  # the response kind's group, when it differs (autoscaling/v1 Scale)
    version: str = "v1"


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # A deprecated API's warning, sent (as a Warning header) with every answer about it.
    warning: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Store key: "pods", "apps/deployments", "discovery.k8s.io/endpointslices"."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


def status_subresource(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling")
