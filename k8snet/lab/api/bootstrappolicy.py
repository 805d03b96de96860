"""The RBAC objects a kubeadm cluster starts with (kube-apiserver's bootstrap policy,
plugin/pkg/auth/authorizer/rbac/bootstrappolicy, plus kubeadm's own), and the
lab's roles for its components.

- ``cluster-admin`` for ``system:masters``; ``admin``, ``edit``, ``view`` built by
  aggregation from the ``system:aggregate-to-*`` roles (and any role carrying their
  labels, like a CRD's);
- ``system:basic-user`` (access reviews) and ``system:discovery`` for every
  authenticated user, ``system:public-info-viewer`` for everyone: a namespace's
  ``default`` ServiceAccount gets nothing more;
- kubelets: nothing through RBAC. The ``system:node`` ClusterRole's rules are the
  Node authorizer's static rules (nodeauthorizer.py), which narrows reads of secrets,
  configmaps, pods and nodes to what the node's pods use; its ClusterRoleBinding
  has no subjects, as the real bootstrap policy's (kept for old clusters);
- kube-proxy: ``system:node-proxier`` for ServiceAccount ``kube-system/kube-proxy``
  (kubeadm's ``kubeadm:node-proxier``);
- cluster DNS: ``system:coredns`` for ServiceAccount ``kube-system/coredns`` (kubeadm's);
- the controller manager (the lab's scheduler runs in it): the real
  ``system:kube-controller-manager`` and ``system:kube-scheduler`` roles, plus
  ``k8snet:controllers`` — what the per-controller service accounts of a real
  cluster hold (the garbage collector and the namespace controller act on every
  kind), since the lab's controllers share one identity; and the real
  ``system:controller:clusterrole-aggregation-controller`` (``escalate`` on
  ClusterRoles: aggregation writes rules its writer need not hold);
- the LoadBalancer announcer: ``k8snet:lb-announcer`` (MetalLB's speaker's rights).
"""

from __future__ import annotations

from ..contracts import Obj
from .identity import AUTHENTICATED, CONTROLLER_MANAGER, MASTERS, SERVICE_ACCOUNTS, UNAUTHENTICATED

API_VERSION = "rbac.authorization.k8s.io/v1"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
EVENTS_WRITE = ["create", "patch", "update"]
AGGREGATION_CONTROLLER = "system:controller:clusterrole-aggregation-controller"


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> Obj:
    r: Obj = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        r["resourceNames"] = names
    return r


def urls(verbs: list[str], paths: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": paths}


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}


def cluster_role(name: str, rules: list[Obj], *, aggregate_to: tuple[str, ...] = (),
                 aggregate_from: str | None = None) -> Obj:
    role: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole",
                 "metadata": _meta(name, {f"{AGGREGATE_TO}{t}": "true" for t in aggregate_to}), "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {f"{AGGREGATE_TO}{aggregate_from}": "true"}}]}
    return role


def subject(kind: str, name: str, namespace: str | None = None) -> Obj:
    s: Obj = {"kind": kind, "name": name}
    if kind == "ServiceAccount":
        s["namespace"] = namespace
    else:
        s["apiGroup"] = "rbac.authorization.k8s.io"
    return s


def cluster_role_binding(name: str, role: str, subjects: list[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


_AGGREGATE_TO_ADMIN = [
    rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    rule(ALL_VERBS, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
]
_AGGREGATE_TO_EDIT = [
    rule(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]),
    rule(["impersonate"], [""], ["serviceaccounts"]),
    rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                       "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
    rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                           "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
    rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
    rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
    rule(ALL_VERBS, ["coordination.k8s.io"], ["leases"]),
]
_AGGREGATE_TO_VIEW = [
    rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                      "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                      "services/status"]),
    rule(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                      "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]),
    rule(READ, [""], ["namespaces"]),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                          "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
                          "statefulsets", "statefulsets/scale", "statefulsets/status"]),
    rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
]
_NODE = [
    rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"]),
    rule(READ, [""], ["services"]),
    rule(["create", "get", "list", "watch"], [""], ["nodes"]),
    rule(["patch", "update"], [""], ["nodes/status"]),
    rule(["patch", "update"], [""], ["nodes"]),
    rule(EVENTS_WRITE, [""], ["events"]),
    rule(READ, [""], ["pods"]),
    rule(["create", "delete"], [""], ["pods"]),
    rule(["patch", "update"], [""], ["pods/status"]),
    rule(["create"], [""], ["pods/eviction"]),
    rule(READ, [""], ["configmaps", "secrets"]),
    rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
    rule(["get"], [""], ["endpoints"]),
    rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
]
_KUBE_CONTROLLER_MANAGER = [
    rule(EVENTS_WRITE, ["", "events.k8s.io"], ["events"]),
    rule(["create"], ["coordination.k8s.io"], ["leases"]),
    rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-controller-manager"]),
    rule(["create"], [""], ["secrets", "serviceaccounts"]),
    rule(["delete"], [""], ["secrets"]),
    rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
    rule(["update"], [""], ["secrets", "serviceaccounts"]),
    rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    rule(["list", "watch"], ["*"], ["*"]),
    rule(["create"], [""], ["serviceaccounts/token"]),
]
_KUBE_SCHEDULER = [
    rule(EVENTS_WRITE, ["", "events.k8s.io"], ["events"]),
    rule(READ, [""], ["nodes", "namespaces", "replicationcontrollers", "services"]),
    rule(["delete", "get", "list", "watch"], [""], ["pods"]),
    rule(["create"], [""], ["bindings", "pods/binding"]),
    rule(["patch", "update"], [""], ["pods/status"]),
    rule(READ, ["apps"], ["replicasets", "statefulsets"]),
]
# What the lab's controllers need beyond those two roles (see the module docstring).
_LAB_CONTROLLERS = [
    rule(["get", "list", "watch", "patch", "update", "delete", "deletecollection"], ["*"], ["*"]),
    rule(["update", "patch"], ["*"], ["*/status", "namespaces/finalize"]),
    rule(["create"], [""], ["pods", "endpoints", "configmaps", "serviceaccounts"]),
    rule(["create"], ["apps"], ["replicasets"]),
    rule(["create"], ["discovery.k8s.io"], ["endpointslices"]),
]
_NODE_PROXIER = [
    rule(["list", "watch"], [""], ["endpoints", "services"]),
    rule(READ, [""], ["nodes"]),
    rule(EVENTS_WRITE, ["", "events.k8s.io"], ["events"]),
    rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
]
_COREDNS = [
    rule(["list", "watch"], [""], ["endpoints", "services", "pods", "namespaces"]),
    rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
]
_LB_ANNOUNCER = [
    rule(["list", "watch"], [""], ["services", "endpoints", "nodes", "namespaces"]),
    rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
    rule(["create", "patch"], [""], ["events"]),
]
_DISCOVERY_PATHS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                    "/version", "/version/"]
_PUBLIC_PATHS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def node_rules() -> list[Obj]:
    """NodeRules: what the Node authorizer grants every node beyond the subdivided kinds."""
    return [dict(r) for r in _NODE]


def cluster_roles() -> list[Obj]:
    return [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])]),
        cluster_role("admin", [], aggregate_from="admin"),
        cluster_role("edit", [], aggregate_to=("admin",), aggregate_from="edit"),
        cluster_role("view", [], aggregate_to=("edit",), aggregate_from="view"),
        cluster_role("system:aggregate-to-admin", _AGGREGATE_TO_ADMIN, aggregate_to=("admin",)),
        cluster_role("system:aggregate-to-edit", _AGGREGATE_TO_EDIT, aggregate_to=("edit",)),
        cluster_role("system:aggregate-to-view", _AGGREGATE_TO_VIEW, aggregate_to=("view",)),
        cluster_role("system:basic-user", [
            rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
        cluster_role("system:discovery", [urls(["get"], _DISCOVERY_PATHS)]),
        cluster_role("system:public-info-viewer", [urls(["get"], _PUBLIC_PATHS)]),
        cluster_role("system:service-account-issuer-discovery",
                     [urls(["get"], ["/.well-known/openid-configuration", "/openid/v1/jwks"])]),
        cluster_role("system:auth-delegator", [rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                                               rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])]),
        cluster_role("system:node", _NODE),
        cluster_role("system:node-proxier", _NODE_PROXIER),
        cluster_role("system:kube-controller-manager", _KUBE_CONTROLLER_MANAGER),
        cluster_role("system:kube-scheduler", _KUBE_SCHEDULER),
        cluster_role("system:kube-dns", [rule(["list", "watch"], [""], ["endpoints", "services"])]),
        cluster_role("system:coredns", _COREDNS),
        cluster_role("k8snet:controllers", _LAB_CONTROLLERS),
        cluster_role(AGGREGATION_CONTROLLER, [rule(["escalate", "get", "list", "watch", "update", "patch"],
                                                   ["rbac.authorization.k8s.io"], ["clusterroles"])]),
        cluster_role("k8snet:lb-announcer", _LB_ANNOUNCER),
    ]


def cluster_role_bindings() -> list[Obj]:
    group, user = (lambda name: subject("Group", name)), (lambda name: subject("User", name))
    sa = lambda name: subject("ServiceAccount", name, "kube-system")  # noqa: E731
    cm = CONTROLLER_MANAGER.name
    return [
        cluster_role_binding("cluster-admin", "cluster-admin", [group(MASTERS)]),
        cluster_role_binding("system:basic-user", "system:basic-user", [group(AUTHENTICATED)]),
        cluster_role_binding("system:discovery", "system:discovery", [group(AUTHENTICATED)]),
        cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                             [group(AUTHENTICATED), group(UNAUTHENTICATED)]),
        cluster_role_binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                             [group(SERVICE_ACCOUNTS)]),
        cluster_role_binding("system:node", "system:node", []),
        cluster_role_binding("system:node-proxier", "system:node-proxier", [user("system:kube-proxy")]),
        cluster_role_binding("kubeadm:node-proxier", "system:node-proxier", [sa("kube-proxy")]),
        cluster_role_binding("system:kube-controller-manager", "system:kube-controller-manager", [user(cm)]),
        cluster_role_binding("system:kube-scheduler", "system:kube-scheduler",
                             [user("system:kube-scheduler"), user(cm)]),
        cluster_role_binding("system:kube-dns", "system:kube-dns", [sa("kube-dns")]),
        cluster_role_binding("system:coredns", "system:coredns", [sa("coredns")]),
        cluster_role_binding("k8snet:controllers", "k8snet:controllers", [user(cm)]),
        cluster_role_binding(AGGREGATION_CONTROLLER, AGGREGATION_CONTROLLER, [user(cm)]),
        cluster_role_binding("k8snet:lb-announcer", "k8snet:lb-announcer", [sa("lb-announcer")]),
    ]


def service_accounts() -> list[Obj]:
    """The kube-system accounts the lab's components run as (coredns comes with DNS)."""
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "kube-system"}}
            for name in ("kube-proxy", "lb-announcer")]
