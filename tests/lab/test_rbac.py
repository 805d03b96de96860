"""RBAC and bound service-account tokens, seen from a pod and from kubectl.

A namespace's default ServiceAccount may list nothing: its auto-mounted token gets
403 from https://kubernetes.default.svc, until a RoleBinding grants it; a token for
another audience, or of a deleted ServiceAccount, gets 401.
"""

from __future__ import annotations

from kubernetes import client, config

from .kube import exec_in, pod, ready_pods

# Lists Secrets through the kubernetes Service with the mounted token and CA, or with
# the token given as argv[1]; prints the HTTP status and the Status message.
LIST_SECRETS = r"""
import json, ssl, sys, urllib.error, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = sys.argv[1] if len(sys.argv) > 1 else open(sa + "/token").read()
ns = open(sa + "/namespace").read()
req = urllib.request.Request(f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/secrets",
                             headers={"Authorization": "Bearer " + token})
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        print(resp.status, json.load(resp)["kind"])
except urllib.error.HTTPError as err:
    print(err.code, json.load(err).get("message", ""))
"""


def _list_secrets(core: client.CoreV1Api, namespace: str, name: str, token: str | None = None) -> str:
    out, err, code = exec_in(core, namespace, name, ["python3", "-c", LIST_SECRETS, *([token] if token else [])])
    assert code == 0, err
    return out.strip()


def test_service_account_rbac_and_bound_tokens(kubeconfig: str, namespace: str, kubectl) -> None:
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    sa = f"system:serviceaccount:{namespace}:default"

    core.create_namespaced_pod(namespace, pod("client", "python:3.12", ["sleep", "3600"]))
    ready_pods(core, namespace, "app=client", 1)

    # the default ServiceAccount: authenticated, but not allowed to list Secrets
    out = _list_secrets(core, namespace, "client")
    assert out == (f'403 secrets is forbidden: User "{sa}" cannot list resource "secrets" in API group "" '
                   f'in the namespace "{namespace}"'), out
    assert kubectl("auth", "can-i", "list", "secrets", f"--as={sa}", check=False).strip() == "no"
    assert kubectl("auth", "can-i", "list", "secrets").strip() == "yes"  # the admin: system:masters

    # a Role and RoleBinding (made by kubectl) grant it
    kubectl("create", "role", "secret-reader", "--verb=get,list", "--resource=secrets")
    kubectl("create", "rolebinding", "read-secrets", "--role=secret-reader", f"--serviceaccount={namespace}:default")
    assert kubectl("auth", "can-i", "list", "secrets", f"--as={sa}").strip() == "yes"
    assert "Role/secret-reader" in kubectl("get", "rolebinding", "read-secrets", "-o", "wide")
    assert _list_secrets(core, namespace, "client") == "200 SecretList"

    # a token for another audience is not accepted by the API
    evil = kubectl("create", "token", "default", "--audience=https://evil.example", stderr=False).strip()
    assert _list_secrets(core, namespace, "client", evil).startswith("401 "), "a token for another audience"

    # a token of a ServiceAccount that is deleted stops working at once
    kubectl("create", "serviceaccount", "short-lived")
    kubectl("create", "rolebinding", "short-lived", "--role=secret-reader", f"--serviceaccount={namespace}:short-lived")
    token = kubectl("create", "token", "short-lived", stderr=False).strip()
    assert _list_secrets(core, namespace, "client", token) == "200 SecretList"
    kubectl("delete", "serviceaccount", "short-lived")
    assert _list_secrets(core, namespace, "client", token).startswith("401 "), "a deleted ServiceAccount's token"
    api.close()


def test_no_privilege_escalation_through_roles_and_bindings(namespace: str, kubectl) -> None:
    """A ServiceAccount with edit in its namespace (and leave to write ClusterRoles)
    can grant only what it holds: kubectl --as the account gets the real refusals."""
    sa = f"system:serviceaccount:{namespace}:dev"
    groups = f'["system:serviceaccounts" "system:serviceaccounts:{namespace}" "system:authenticated"]'
    kubectl("create", "serviceaccount", "dev")
    kubectl("create", "rolebinding", "dev-edit", "--clusterrole=edit", f"--serviceaccount={namespace}:dev")
    writer = f"{namespace}-role-writer"
    try:
        kubectl("create", "clusterrole", writer, "--verb=create", "--resource=clusterroles,roles,rolebindings")
        kubectl("create", "clusterrolebinding", writer, f"--clusterrole={writer}", f"--serviceaccount={namespace}:dev")
        as_dev = f"--as={sa}"
        # what edit holds in the namespace may be granted there ...
        kubectl("create", "role", "secret-lister", "--verb=list", "--resource=secrets", as_dev)
        # ... not cluster-wide (the role's own rights are not edit's either)
        out = kubectl("create", "clusterrole", f"{namespace}-all-secrets", "--verb=list", "--resource=secrets",
                      as_dev, check=False)
        assert (f'Error from server (Forbidden): clusterroles.rbac.authorization.k8s.io "{namespace}-all-secrets" '
                f'is forbidden: user "{sa}" (groups={groups}) is attempting to grant RBAC permissions not currently '
                'held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}') in out, out
        # nor bind itself to admin in its namespace (admin may write Roles and RoleBindings)
        out = kubectl("create", "rolebinding", "dev-admin", "--clusterrole=admin", f"--serviceaccount={namespace}:dev",
                      as_dev, check=False)
        assert 'rolebindings.rbac.authorization.k8s.io "dev-admin" is forbidden' in out, out
        assert (f'is forbidden: user "{sa}" (groups={groups}) is attempting to grant RBAC permissions not '
                'currently held:\n'
                '{APIGroups:["authorization.k8s.io"], Resources:["localsubjectaccessreviews"], Verbs:["create"]}\n'
                '{APIGroups:["rbac.authorization.k8s.io"], Resources:["rolebindings"], Verbs:["delete" '
                '"deletecollection" "get" "list" "patch" "update" "watch"]}\n'
                '{APIGroups:["rbac.authorization.k8s.io"], Resources:["roles"], Verbs:["delete" "deletecollection" '
                '"get" "list" "patch" "update" "watch"]}') in out, out
        assert "NotFound" in kubectl("get", "rolebinding", "dev-admin", check=False), "nothing was stored"
    finally:
        kubectl("delete", "clusterrolebinding", writer, "--ignore-not-found")
        kubectl("delete", "clusterrole", writer, f"{namespace}-all-secrets", "--ignore-not-found")


def test_node_authorizer_and_node_restriction(kubeconfig: str, namespace: str, kubectl) -> None:
    """A kubelet's identity reads only what its pods use and writes only its own."""
    core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    nodes = kubectl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}", stderr=False).split()
    assert len(nodes) >= 2, nodes
    mine, other = nodes[0], nodes[1]
    kubectl("create", "secret", "generic", "used", "--from-literal=k=v")
    kubectl("create", "secret", "generic", "unused", "--from-literal=k=v")
    spec = pod("reader", "busybox", ["sh", "-c", "cat /s/k; sleep 3600"], node=mine)
    spec["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "used"}}]
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/s"}]
    core.create_namespaced_pod(namespace, spec)
    ready_pods(core, namespace, "app=reader", 1)  # its kubelet could read the secret it mounts

    def as_node(node: str, *args: str) -> str:
        return kubectl(*args, f"--as=system:node:{node}", "--as-group=system:nodes", check=False)

    assert "used" in as_node(mine, "get", "secret", "used", "-o", "name")
    user = f'User "system:node:{other}"'
    assert (f'secrets "used" is forbidden: {user} cannot get resource "secrets" in API group "" in the namespace '
            f'"{namespace}": no relationship found between node \'{other}\' and this object') in \
        as_node(other, "get", "secret", "used")
    assert "no relationship found" in as_node(mine, "get", "secret", "unused")
    assert "can only list/watch pods with spec.nodeName field selector" in as_node(mine, "get", "pods")
    assert "reader" in as_node(mine, "get", "pods", "-A", f"--field-selector=spec.nodeName={mine}")
    assert f"node '{mine}' cannot read all nodes, only its own Node object" in as_node(mine, "get", "nodes")
    # NodeRestriction: its own Node only, and no role labels
    # (kubectl label and patch read the Node first, which the Node authorizer refuses; create does not)
    out = kubectl("create", "-f", "-", f"--as=system:node:{mine}", "--as-group=system:nodes", check=False,
                  input=f'{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "{other}"}}}}')
    assert f'nodes "{other}" is forbidden: node "{mine}" is not allowed to modify node "{other}"' in out, out
    assert "is not allowed to modify labels: node-role.kubernetes.io/evil" in \
        as_node(mine, "label", "node", mine, "node-role.kubernetes.io/evil=")
    assert "labeled" in as_node(mine, "label", "node", mine, "k8snet.example/mine=1")
    kubectl("label", "node", mine, "k8snet.example/mine-")
    assert (f'pods "reader" is forbidden: node "{other}" can only delete pods with spec.nodeName set to itself') in \
        as_node(other, "delete", "pod", "reader", "--wait=false")
    core.api_client.close()
