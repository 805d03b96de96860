"""The resource types the lab's API server serves, described once.

Discovery, routing, OpenAPI, the store and the clients all read this table, so a
new kind is one entry here plus its defaults, validation and table printer.
"""

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


_STATUS = lambda kind: Subresource("status", kind, ("get", "patch", "update"))  # noqa: E731
_SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling")

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",),
             subresources=(_STATUS("Namespace"), Subresource("finalize", "Namespace", ("update",)))),
    Resource("", "v1", "nodes", "node", "Node", False, ("no",), subresources=(_STATUS("Node"),)),
    Resource("", "v1", "pods", "pod", "Pod", True, ("po",), ("all",), subresources=(
        _STATUS("Pod"),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
    )),
    Resource("", "v1", "services", "service", "Service", True, ("svc",), ("all",),
             subresources=(_STATUS("Service"),)),
    Resource("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",),
             warning="v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
    Resource("", "v1", "secrets", "secret", "Secret", True),
    Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",),
             subresources=(Subresource("token", "TokenRequest", ("create",), group="authentication.k8s.io"),)),
    Resource("", "v1", "events", "event", "Event", True, ("ev",)),
    Resource("apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",),
             subresources=(_STATUS("Deployment"), _SCALE)),
    Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("all",),
             subresources=(_STATUS("ReplicaSet"), _SCALE)),
    Resource("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True),
    Resource("events.k8s.io", "v1", "events", "event", "Event", True, ("ev",)),
    # node heartbeats (kube-node-lease), as the kubelet writes them; `kubectl describe node` reads them
    Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding",
             False),
    # Reviews: answered at once from the authorizer, never stored (create only).
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
             "SelfSubjectAccessReview", False, verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview",
             "SelfSubjectRulesReview", False, verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview",
             "SubjectAccessReview", False, verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview",
             "LocalSubjectAccessReview", True, verbs=("create",)),
    Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview",
             "SelfSubjectReview", False, verbs=("create",)),
)

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
