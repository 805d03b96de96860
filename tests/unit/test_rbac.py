"""The RBAC authorizer's rule matching and bound service-account tokens."""

from __future__ import annotations

import time
from pathlib import Path

from k8snet.lab.api import bootstrappolicy, rbac
from k8snet.lab.api.authorizer import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, Authorizer, RbacSource
from k8snet.lab.api.identity import KUBE_PROXY, UserInfo, node_user, service_account_user
from k8snet.lab.api.rbac import Attributes
from k8snet.lab.api.requestinfo import denied, request_attributes
from k8snet.lab.api.tokens import BoundObject, TokenIssuer
from k8snet.lab.pki import Pki
from k8snet.lab.store import Store


def res(verb: str, resource: str, namespace: str = "", group: str = "", sub: str = "", name: str = "") -> Attributes:
    return Attributes(verb, True, namespace, group, resource, sub, name)


def test_rule_matching_verbs_resources_subresources_names_and_urls() -> None:
    rule = bootstrappolicy.rule(["get", "list"], [""], ["pods", "pods/log"], ["web"])
    assert rbac.rule_allows(rule, res("get", "pods", name="web"))
    assert not rbac.rule_allows(rule, res("get", "pods", name="db")), "resourceNames"
    assert not rbac.rule_allows(rule, res("delete", "pods", name="web")), "verb"
    assert not rbac.rule_allows(rule, res("get", "pods", group="apps", name="web")), "API group"
    assert rbac.rule_allows(rule, res("get", "pods", sub="log", name="web"))
    assert not rbac.rule_allows(rule, res("get", "pods", sub="exec", name="web")), "subresource"
    status = bootstrappolicy.rule(["update"], ["*"], ["*/status"])
    assert rbac.rule_allows(status, res("update", "deployments", group="apps", sub="status"))
    assert not rbac.rule_allows(status, res("update", "deployments", group="apps"))
    star = bootstrappolicy.rule(["*"], ["*"], ["*"])
    assert rbac.rule_allows(star, res("deletecollection", "anything", group="x.io", sub="y"))
    assert not rbac.rule_allows(star, Attributes("get", False, path="/version")), "resource rules cover no URL"
    urls = bootstrappolicy.urls(["get"], ["/apis/*", "/version"])
    assert rbac.rule_allows(urls, Attributes("get", False, path="/apis/apps/v1"))
    assert rbac.rule_allows(urls, Attributes("get", False, path="/version"))
    assert not rbac.rule_allows(urls, Attributes("get", False, path="/version/x"))
    assert not rbac.rule_allows(urls, Attributes("post", False, path="/version"))


def _authorizer(tmp_path: Path) -> tuple[Store, Authorizer]:
    store = Store(tmp_path / "store.sqlite")
    for role in bootstrappolicy.cluster_roles():
        store.create(CLUSTER_ROLES, "", role["metadata"]["name"], role)
    for binding in bootstrappolicy.cluster_role_bindings():
        store.create(CLUSTER_ROLE_BINDINGS, "", binding["metadata"]["name"], binding)
    return store, Authorizer(RbacSource(store.objects, store.generation, store.texts))


def test_bootstrap_policy_and_bindings(tmp_path: Path) -> None:
    store, authz = _authorizer(tmp_path)
    sa = service_account_user("ns", "default")
    assert not authz.authorize(sa, res("list", "secrets", "ns")).allowed
    assert authz.authorize(sa, Attributes("get", False, path="/apis")).allowed, "system:discovery"
    assert authz.authorize(sa, res("create", "selfsubjectaccessreviews", group="authorization.k8s.io")).allowed
    assert authz.authorize(UserInfo("admin", ("system:masters",)), res("delete", "nodes", name="x")).allowed
    assert authz.authorize(node_user("n1"), res("create", "events", "ns")).allowed, "the Node authorizer's rules"
    assert not authz.authorize(node_user("n1"), res("delete", "namespaces", "ns", name="ns")).allowed
    assert authz.authorize(KUBE_PROXY, res("watch", "endpointslices", group="discovery.k8s.io")).allowed
    assert not authz.authorize(KUBE_PROXY, res("list", "secrets")).allowed

    # a RoleBinding to a Role grants in its namespace only; the index follows changes
    store.create(ROLES, "ns", "reader", {"metadata": {"name": "reader", "namespace": "ns"},
                                         "rules": [bootstrappolicy.rule(["list"], [""], ["secrets"])]})
    binding = {"metadata": {"name": "b", "namespace": "ns"},
               "roleRef": {"apiGroup": rbac.GROUP, "kind": "Role", "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "ns"}]}
    store.create(ROLE_BINDINGS, "ns", "b", binding)
    decision = authz.authorize(sa, res("list", "secrets", "ns"))
    assert decision.allowed and decision.reason == \
        'RBAC: allowed by RoleBinding "b/ns" of Role "reader" to ServiceAccount "default/ns"'
    assert not authz.authorize(sa, res("list", "secrets", "other")).allowed
    store.delete(ROLE_BINDINGS, "ns", "b")
    assert not authz.authorize(sa, res("list", "secrets", "ns")).allowed


def test_aggregated_roles_are_the_union_of_their_sources(tmp_path: Path) -> None:
    """What the aggregation controller computes for view: every role labelled for it."""
    roles = bootstrappolicy.cluster_roles()
    selector = next(r for r in roles if r["metadata"]["name"] == "view")["aggregationRule"]["clusterRoleSelectors"][0]
    sources = [r for r in roles if all(r["metadata"]["labels"].get(k) == v for k, v in selector["matchLabels"].items())]
    assert [r["metadata"]["name"] for r in sources] == ["system:aggregate-to-view"]
    merged = rbac.merge_rules([r["rules"] for r in sources] * 2)
    assert merged == sources[0]["rules"], "each rule once"


def test_request_attributes_and_forbidden_message() -> None:
    a = request_attributes("GET", "api v1 namespaces ns secrets".split(), {})
    assert (a.verb, a.namespace, a.resource, a.name) == ("list", "ns", "secrets", "")
    assert request_attributes("GET", "api v1 namespaces ns pods".split(), {"watch": "true"}).verb == "watch"
    a = request_attributes("GET", "api v1 namespaces ns".split(), {})
    assert (a.verb, a.namespace, a.resource, a.name) == ("get", "ns", "namespaces", "ns")
    a = request_attributes("DELETE", "apis apps v1 namespaces ns deployments".split(), {})
    assert (a.verb, a.api_group) == ("deletecollection", "apps")
    a = request_attributes("POST", "api v1 namespaces ns serviceaccounts sa token".split(), {})
    assert (a.verb, a.resource, a.subresource, a.name) == ("create", "serviceaccounts", "token", "sa")
    assert not request_attributes("GET", ["apis", "apps"], {}).resource_request
    err = denied(service_account_user("ns", "default"), request_attributes("GET", "api v1 namespaces ns secrets".split(), {}))
    assert err.code == 403 and err.message == ('secrets is forbidden: User "system:serviceaccount:ns:default" cannot '
                                               'list resource "secrets" in API group "" in the namespace "ns"')


def test_bound_tokens(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.create(["127.0.0.1"], ["localhost"])
    api = "https://kubernetes.default.svc.cluster.local"
    issuer = TokenIssuer(pki, api)
    objects = {("serviceaccounts", "ns", "sa"): {"metadata": {"uid": "u1"}},
               ("pods", "ns", "p"): {"metadata": {"uid": "p1"}}}
    lookup = lambda key, ns, name: objects.get((key, ns, name))  # noqa: E731
    token = issuer.issue("ns", "sa", "u1", audiences=[api], ttl_seconds=600, bound=BoundObject("Pod", "p", "p1"))
    user = issuer.authenticate(token, api, lookup)
    assert user is not None and user.name == "system:serviceaccount:ns:sa"
    assert "system:serviceaccounts:ns" in user.groups and dict(user.extra)["authentication.kubernetes.io/pod-name"] == ("p",)
    claims = issuer.claims(token, api)
    assert claims is not None and claims["kubernetes.io"]["pod"] == {"name": "p", "uid": "p1"}
    assert {"iss", "aud", "exp", "nbf", "iat", "sub", "jti"} <= claims.keys()

    evil = issuer.issue("ns", "sa", "u1", audiences=["https://evil.example"], ttl_seconds=600)
    assert issuer.authenticate(evil, api, lookup) is None, "another audience"
    old = issuer.issue("ns", "sa", "u1", audiences=[api], ttl_seconds=600, now=int(time.time()) - 3600)
    assert issuer.authenticate(old, api, lookup) is None, "expired"
    assert issuer.authenticate(token[:-4] + "AAAA", api, lookup) is None, "forged signature"
    objects[("pods", "ns", "p")] = {"metadata": {"uid": "p2"}}
    assert issuer.authenticate(token, api, lookup) is None, "the pod was re-created"
    del objects[("serviceaccounts", "ns", "sa")]
    unbound = issuer.issue("ns", "sa", "u1", audiences=[api], ttl_seconds=600)
    assert issuer.authenticate(unbound, api, lookup) is None, "the ServiceAccount is gone"
