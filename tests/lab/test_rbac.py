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
