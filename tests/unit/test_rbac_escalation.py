"""RBAC's privilege-escalation prevention, the Node authorizer and NodeRestriction,
through the core's write path (the user a request acts as) on a store holding the
bootstrap policy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

import pytest

from k8snet.lab.api import bootstrappolicy, rbaccovers
from k8snet.lab.api.admission import Admission
from k8snet.lab.api.authorizer import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, Authorizer, RbacSource
from k8snet.lab.api.core import ApiCore
from k8snet.lab.api.escalation import EscalationCheck
from k8snet.lab.api.identity import CONTROLLER_MANAGER, UserInfo, node_user
from k8snet.lab.api.noderestriction import NodeRestriction, forbidden_labels
from k8snet.lab.api.rbac import GROUP, Attributes
from k8snet.lab.config import LabConfig
from k8snet.lab.errors import ApiError
from k8snet.lab.pki import Pki
from k8snet.lab.store import Store

ALICE = UserInfo("alice", ("devs", "system:authenticated"))
ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None,
         names: list[str] | None = None) -> dict[str, Any]:
    return bootstrappolicy.rule(verbs, groups if groups is not None else [""], resources, names)


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role" if namespace else "ClusterRole",
            "metadata": meta, "rules": rules}


def binding(name: str, kind: str, role_name: str, subject: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": meta, "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role_name},
            "subjects": [{"apiGroup": GROUP, "kind": "User", "name": subject}]}


class Lab:
    """The core with the bootstrap policy and the server's write guards."""

    def __init__(self, tmp_path: Path):
        config = LabConfig(name="t", state_dir=tmp_path)
        self.store = Store(tmp_path / "store.sqlite")
        pki = Pki(tmp_path / "pki")
        pki.create(["127.0.0.1"], ["localhost"])
        pki.ensure_token_key()
        self.core = ApiCore(config, self.store, Admission(config, lambda key: self.store.list(key)[0]), pki)
        self.authorizer = Authorizer(RbacSource(self.store.objects, self.store.generation, self.store.texts))
        self.core.guards[:] = [EscalationCheck(self.authorizer, self.store.get), NodeRestriction(self.store.get)]
        for ns in ("default", "dev", "prod"):
            self.run(self.core.create("namespaces", None, {"metadata": {"name": ns}}))
        for r in bootstrappolicy.cluster_roles():
            self.store.create(CLUSTER_ROLES, "", r["metadata"]["name"], r)
        for b in bootstrappolicy.cluster_role_bindings():
            self.store.create(CLUSTER_ROLE_BINDINGS, "", b["metadata"]["name"], b)
        # what the aggregation controller makes of edit: alice edits namespace dev
        edit = self.store.get(CLUSTER_ROLES, "", "edit")
        assert edit is not None
        sources = [r for r in bootstrappolicy.cluster_roles() if r["metadata"]["name"] in
                   ("system:aggregate-to-edit", "system:aggregate-to-view")]
        edit["rules"] = [x for r in sources for x in r["rules"]]
        self.store.update(CLUSTER_ROLES, "", "edit", edit)
        self.run(self.core.create("rbac.authorization.k8s.io/rolebindings", "dev",
                                  binding("alice-edit", "ClusterRole", "edit", "alice", "dev"), user=ADMIN))

    @staticmethod
    def run(coro: Any) -> Any:
        return asyncio.run(coro)

    def create(self, key: str, obj: dict[str, Any], user: UserInfo) -> dict[str, Any]:
        return self.run(self.core.create(key, obj["metadata"].get("namespace"), obj, user=user))

    def refused(self, key: str, obj: dict[str, Any], user: UserInfo) -> ApiError:
        with pytest.raises(ApiError) as caught:
            self.create(key, obj, user)
        return caught.value


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    yield lab
    lab.store.close()


ROLES, CLUSTER_ROLE_KEY = "rbac.authorization.k8s.io/roles", "rbac.authorization.k8s.io/clusterroles"
BINDINGS, CLUSTER_BINDINGS = "rbac.authorization.k8s.io/rolebindings", "rbac.authorization.k8s.io/clusterrolebindings"


def test_covers_breaks_rules_into_atoms_and_names_the_missing_ones() -> None:
    owner = [rule(["get", "list"], ["pods", "pods/log"]), rule(["update"], ["*/status"], ["*"]),
             rule(["get"], ["secrets"], names=["one"]), {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}]
    assert not rbaccovers.uncovered(owner, [rule(["list"], ["pods"]), rule(["update"], ["deployments/status"], ["apps"])])
    assert not rbaccovers.uncovered(owner, [{"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]}])
    assert not rbaccovers.uncovered(owner, [rule(["get"], ["secrets"], names=["one"])])
    missing = rbaccovers.uncovered(owner, [rule(["get", "list", "watch"], ["secrets", "pods"])])
    assert rbaccovers.missing_description(missing) == (
        '{APIGroups:[""], Resources:["pods"], Verbs:["watch"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch"]}'), "names do not cover all of a kind"
    assert rbaccovers.uncovered(owner, [rule(["update"], ["deployments"], ["apps"])]), "*/status is not the resource"


def test_edit_in_a_namespace_cannot_grant_what_it_lacks(lab: Lab) -> None:
    # alice may create a Role in dev with rights she holds there ...
    lab.create(ROLES, role("pod-reader", [rule(["get", "list"], ["pods"])], "dev"), ALICE)
    # ... not one reaching what edit lacks (roles themselves), nor in another namespace
    err = lab.refused(ROLES, role("rbac-writer", [rule(["create"], ["roles"], [GROUP])], "dev"), ALICE)
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'roles.rbac.authorization.k8s.io "rbac-writer" is forbidden: user "alice" '
        '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["rbac.authorization.k8s.io"], Resources:["roles"], Verbs:["create"]}')
    assert lab.refused(ROLES, role("r", [rule(["list"], ["secrets"])], "prod"), ALICE).code == 403
    # nor a ClusterRole granting secrets list cluster-wide (she holds it in dev only)
    err = lab.refused(CLUSTER_ROLE_KEY, role("all-secrets", [rule(["list"], ["secrets"])]), ALICE)
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}' in err.message
    # system:masters is exempt
    lab.create(CLUSTER_ROLE_KEY, role("all-secrets", [rule(["list"], ["secrets"])]), ADMIN)


def test_bindings_need_the_roles_rights_or_bind(lab: Lab) -> None:
    lab.create(CLUSTER_ROLE_KEY, role("secret-reader", [rule(["get", "list"], ["secrets"])]), ADMIN)
    lab.create(CLUSTER_ROLE_KEY, role("node-reader", [rule(["list"], ["nodes"])]), ADMIN)
    # in dev alice holds secrets get/list: she may hand them to bob there, not cluster-wide
    lab.create(BINDINGS, binding("bob-secrets", "ClusterRole", "secret-reader", "bob", "dev"), ALICE)
    err = lab.refused(CLUSTER_BINDINGS, binding("bob-secrets", "ClusterRole", "secret-reader", "bob"), ALICE)
    assert err.message.startswith('clusterrolebindings.rbac.authorization.k8s.io "bob-secrets" is forbidden: '
                                  'user "alice"')
    err = lab.refused(BINDINGS, binding("bob-nodes", "ClusterRole", "node-reader", "bob", "dev"), ALICE)
    assert err.code == 403 and '{APIGroups:[""], Resources:["nodes"], Verbs:["list"]}' in err.message
    err = lab.refused(BINDINGS, binding("x", "ClusterRole", "no-such-role", "bob", "dev"), ALICE)
    assert err.code == 404 and err.message == 'clusterroles.rbac.authorization.k8s.io "no-such-role" not found'
    # the bind verb on that one role is enough
    lab.create(CLUSTER_ROLE_KEY, role("binder", [rule(["bind"], ["clusterroles"], [GROUP], ["node-reader"])]), ADMIN)
    lab.create(BINDINGS, binding("alice-binder", "ClusterRole", "binder", "alice", "dev"), ADMIN)
    lab.create(BINDINGS, binding("bob-nodes", "ClusterRole", "node-reader", "bob", "dev"), ALICE)
    assert not lab.authorizer.authorize(ALICE, Attributes("list", resource="nodes")).allowed, "bind is not use"


def test_escalate_verb_and_aggregation_rule(lab: Lab) -> None:
    lab.create(CLUSTER_ROLE_KEY, role("escalator", [rule(["escalate", "create", "update"], ["clusterroles"], [GROUP])]),
               ADMIN)
    lab.create(CLUSTER_BINDINGS, binding("alice-escalator", "ClusterRole", "escalator", "alice"), ADMIN)
    lab.create(CLUSTER_ROLE_KEY, role("anything", [rule(["*"], ["*"], ["*"])]), ALICE)
    # the lab's aggregation controller (the controller manager) may write aggregated rules
    view = lab.store.get(CLUSTER_ROLES, "", "view")
    assert view is not None
    view["rules"] = [rule(["get"], ["nodes"])]
    lab.run(lab.core.update(CLUSTER_ROLES, None, "view", view, user=CONTROLLER_MANAGER))
    # without escalate, an aggregationRule needs everything
    bob = UserInfo("bob", ("system:authenticated",))
    lab.create(CLUSTER_ROLE_KEY, role("role-writer", [rule(["create"], ["clusterroles"], [GROUP])]), ADMIN)
    lab.create(CLUSTER_BINDINGS, binding("bob-writer", "ClusterRole", "role-writer", "bob"), ADMIN)
    aggregated = role("gather", [])
    aggregated["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}
    err = lab.refused(CLUSTER_ROLE_KEY, aggregated, bob)
    assert err.message == ('clusterroles.rbac.authorization.k8s.io "gather" is forbidden: '
                           'must have cluster-admin privileges to use the aggregationRule')


def _pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "dev"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_node_authorizer_reads_only_what_its_pods_use(lab: Lab) -> None:
    n1, n2 = node_user("n1"), node_user("n2")
    for name in ("mine", "theirs"):
        lab.create("secrets", {"metadata": {"name": name, "namespace": "dev"}, "data": {}}, ADMIN)
    lab.create("pods", _pod("web", "n1", volumes=[{"name": "s", "secret": {"secretName": "mine"}}]), ADMIN)

    def authorize(user: UserInfo, verb: str, resource: str, name: str = "", namespace: str = "dev",
                  sub: str = "", selector: str = "") -> tuple[bool, str]:
        d = lab.authorizer.authorize(user, Attributes(verb, True, namespace, "", resource, sub, name,
                                                      field_selector=selector))
        return d.allowed, d.reason

    assert authorize(n1, "get", "secrets", "mine") == (True, "")
    assert authorize(n1, "get", "secrets", "theirs") == (False, "no relationship found between node 'n1' and this object")
    assert authorize(n2, "get", "secrets", "mine")[0] is False
    assert authorize(n1, "list", "secrets") == (False, "No Object name found")
    assert authorize(n1, "list", "secrets", "mine")[0], "a watch of one object by name"
    assert authorize(n1, "update", "secrets", "mine") == (False, "can only read resources of this type")
    assert authorize(n1, "create", "serviceaccounts", "default", sub="token")[0]
    assert not authorize(n2, "create", "serviceaccounts", "default", sub="token")[0]
    assert authorize(n1, "list", "pods", namespace="", selector="spec.nodeName=n1")[0]
    assert authorize(n1, "list", "pods", namespace="") == \
        (False, "can only list/watch pods with spec.nodeName field selector")
    assert authorize(n1, "get", "nodes", "n2", namespace="") == \
        (False, "node 'n1' cannot read 'n2', only its own Node object")
    assert authorize(n1, "get", "nodes", "n1", namespace="")[0]
    assert authorize(n1, "list", "services", namespace="")[0], "the static node rules"
    # the relationship follows the pods
    lab.run(lab.core.delete("pods", "dev", "web", grace_period_seconds=0))
    assert not authorize(n1, "get", "secrets", "mine")[0]


def test_node_restriction_keeps_a_kubelet_to_its_own(lab: Lab) -> None:
    n1 = node_user("n1")
    node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {}}}
    assert lab.refused("nodes", node, n1).message == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    node["metadata"] = {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}}
    assert lab.refused("nodes", node, n1).message == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        'node-role.kubernetes.io/control-plane')
    node["metadata"]["labels"] = {"kubernetes.io/hostname": "n1", "node.kubernetes.io/exclude-from-external-load-balancers": ""}
    lab.create("nodes", node, n1)
    with pytest.raises(ApiError) as caught:
        lab.run(lab.core.patch("nodes", None, "n1", {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
                               user=n1))
    assert caught.value.message == 'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'

    lab.create("pods", _pod("on-n2", "n2"), ADMIN)
    lab.create("pods", _pod("on-n1", "n1"), ADMIN)
    with pytest.raises(ApiError) as caught:
        lab.run(lab.core.patch("pods", "dev", "on-n2", {"status": {"phase": "Running"}}, subresource="status", user=n1))
    assert caught.value.message == ('pods "on-n2" is forbidden: node "n1" can only update pod status for pods with '
                                    'spec.nodeName set to itself')
    lab.run(lab.core.patch("pods", "dev", "on-n1", {"status": {"phase": "Running"}}, subresource="status", user=n1))
    with pytest.raises(ApiError) as caught:
        lab.run(lab.core.delete("pods", "dev", "on-n2", user=n1))
    assert caught.value.message == 'pods "on-n2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    # tokens only for pods bound to the node
    pod = lab.store.get("pods", "dev", "on-n2")
    assert pod is not None
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"boundObjectRef": {
        "apiVersion": "v1", "kind": "Pod", "name": "on-n2", "uid": pod["metadata"]["uid"]}}}
    with pytest.raises(ApiError) as caught:
        lab.run(lab.core.create("serviceaccounts", "dev", request, subresource="token", name="default", user=n1))
    assert caught.value.message.endswith("node requested token bound to a pod scheduled on a different node")
    assert forbidden_labels({"a.kubernetes.io/x": "1", "topology.kubernetes.io/zone": "z", "mine": "1"}, {}) == \
        ["a.kubernetes.io/x"]
