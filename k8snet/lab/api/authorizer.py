"""Authorization: the ``system:masters`` group, then the Node authorizer for kubelets
(nodeauthorizer.py), then RBAC: kube-apiserver's ``--authorization-mode=Node,RBAC``.

The RBAC authorizer keeps an index from subject (user or group) to the rules its
bindings grant — cluster-wide from ClusterRoleBindings, per namespace from
RoleBindings — rebuilt only when a Role, ClusterRole or binding changed (the store
counts writes per kind), and remembers its recent decisions. A request therefore
looks at the bindings of its own user and groups only, never at every binding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

from ..contracts import Obj
from . import bootstrappolicy, rbac
from .identity import MASTERS, UserInfo
from .nodeauthorizer import NodeAuthorizer, NodeGraph
from .rbac import Attributes

ROLES = "rbac.authorization.k8s.io/roles"
CLUSTER_ROLES = "rbac.authorization.k8s.io/clusterroles"
ROLE_BINDINGS = "rbac.authorization.k8s.io/rolebindings"
CLUSTER_ROLE_BINDINGS = "rbac.authorization.k8s.io/clusterrolebindings"
RBAC_KEYS = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)
_CACHE_LIMIT = 20000

SubjectKey = tuple[str, str]  # ("User" | "Group", name); service accounts are users


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Grant:
    """The rules one binding gives one of its subjects."""

    binding: str  # as the RBAC reason names it: ClusterRoleBinding "x" / RoleBinding "x/ns"
    role: str  # ClusterRole "y" / Role "y"
    subject: str
    rules: tuple[Obj, ...]


class RbacSource:
    """What the index is built from: the store's objects and per-kind write counts."""

    def __init__(self, objects: Callable[[str], list[Obj]], generation: Callable[[str], int],
                 texts: Callable[[str], list[tuple[tuple[str, str], str]]]):
        self.objects = objects
        self.generation = generation
        self.texts = texts  # the stored JSON by (namespace, name): the node graph decodes only changes


def _subject_key(subject: Obj, binding_namespace: str) -> SubjectKey | None:
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("User", f"system:serviceaccount:{namespace}:{name}") if namespace else None
    if kind in ("User", "Group"):
        return kind, name
    return None


class Authorizer:
    def __init__(self, source: RbacSource):
        self.source = source
        self._generations: tuple[int, ...] | None = None
        self._cluster: dict[SubjectKey, list[Grant]] = {}
        self._namespaced: dict[str, dict[SubjectKey, list[Grant]]] = {}
        self._cache: dict[tuple[UserInfo, Attributes], Decision] = {}
        self.node = NodeAuthorizer(NodeGraph(lambda: source.texts("pods"), lambda: source.generation("pods")),
                                   bootstrappolicy.node_rules())

    # -- the index ---------------------------------------------------------------------
    def _fresh(self) -> None:
        generations = tuple(self.source.generation(k) for k in RBAC_KEYS)
        if generations == self._generations:
            return
        cluster_roles = {r["metadata"]["name"]: r for r in self.source.objects(CLUSTER_ROLES)}
        roles = {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in self.source.objects(ROLES)}
        cluster: dict[SubjectKey, list[Grant]] = {}
        for b in self.source.objects(CLUSTER_ROLE_BINDINGS):
            ref = b.get("roleRef") or {}
            role = cluster_roles.get(ref.get("name", "")) if ref.get("kind") == "ClusterRole" else None
            self._add(cluster, b, "", f'ClusterRoleBinding "{b["metadata"]["name"]}"', role, "ClusterRole")
        namespaced: dict[str, dict[SubjectKey, list[Grant]]] = {}
        for b in self.source.objects(ROLE_BINDINGS):
            ns = b["metadata"].get("namespace", "")
            ref = b.get("roleRef") or {}
            kind = ref.get("kind")
            role = (cluster_roles.get(ref.get("name", "")) if kind == "ClusterRole"
                    else roles.get((ns, ref.get("name", ""))) if kind == "Role" else None)
            self._add(namespaced.setdefault(ns, {}), b, ns, f'RoleBinding "{b["metadata"]["name"]}/{ns}"', role,
                      str(kind))
        self._cluster, self._namespaced = cluster, namespaced
        self._cache.clear()
        self._generations = generations

    @staticmethod
    def _add(index: dict[SubjectKey, list[Grant]], binding: Obj, namespace: str, label: str, role: Obj | None,
             role_kind: str) -> None:
        if role is None:  # a binding to a missing role grants nothing (yet)
            return
        rules = tuple(r for r in role.get("rules") or [] if isinstance(r, dict))
        role_label = f'{role_kind} "{role["metadata"]["name"]}"'
        for subject in binding.get("subjects") or []:
            key = _subject_key(subject, namespace) if isinstance(subject, dict) else None
            if key is not None:
                index.setdefault(key, []).append(Grant(label, role_label, rbac.describe_subject(subject), rules))

    def _grants(self, user: UserInfo, namespace: str) -> Iterator[Grant]:
        """Cluster-wide grants first, then the namespace's (VisitRulesFor's order)."""
        keys = [("User", user.name), *(("Group", g) for g in user.groups)]
        scopes = [self._cluster] + ([self._namespaced.get(namespace, {})] if namespace else [])
        for scope in scopes:
            for key in keys:
                yield from scope.get(key, ())

    # -- decisions ------------------------------------------------------------------------
    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        if MASTERS in user.groups:  # the privileged-group authorizer comes first
            return Decision(True)
        # The Node authorizer's answers follow the pods, so they are never cached.
        node_allows, node_reason = self.node.authorize(user, attrs)
        if node_allows:
            return Decision(True)
        self._fresh()
        key = (user, replace(attrs, field_selector="") if attrs.field_selector else attrs)  # RBAC ignores it
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(user, attrs)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        if not decision.allowed and node_reason:  # the union authorizer's reasons
            return Decision(False, node_reason)
        return decision

    def _decide(self, user: UserInfo, attrs: Attributes) -> Decision:
        for grant in self._grants(user, attrs.namespace if attrs.resource_request else ""):
            if any(rbac.rule_allows(rule, attrs) for rule in grant.rules):
                return Decision(True, f"RBAC: allowed by {grant.binding} of {grant.role} to {grant.subject}")
        return Decision(False)

    def rules_for(self, user: UserInfo, namespace: str) -> list[Obj]:
        """Every rule the user has in ``namespace`` (SelfSubjectRulesReview)."""
        if MASTERS in user.groups:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]
        self._fresh()
        return rbac.merge_rules([list(g.rules) for g in self._grants(user, namespace)])
