"""Bad input gets a 4xx Status with the real reason — never a 500, never a half-created object."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
import time

import pytest
import yaml


class Raw:
    """Plain HTTPS to the lab's API server with the admin certificate from the kubeconfig."""

    def __init__(self, kubeconfig: str):
        cfg = yaml.safe_load(open(kubeconfig))
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        self.host, self.port = cluster["server"].removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        with tempfile.NamedTemporaryFile("wb", suffix=".pem") as cert, tempfile.NamedTemporaryFile("wb", suffix=".pem") as key:
            cert.write(base64.b64decode(user["client-certificate-data"]))
            cert.flush()
            key.write(base64.b64decode(user["client-key-data"]))
            key.flush()
            ctx.load_cert_chain(cert.name, key.name)
        self.ctx = ctx

    def request(self, method: str, path: str, body: bytes | str | None = None,
                content_type: str = "application/json", auth: bool = True) -> tuple[int, dict]:
        ctx = self.ctx if auth else ssl.create_default_context(cafile=None)
        if not auth:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self.host, int(self.port), context=ctx, timeout=30)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, json.loads(data) if data else {}


@pytest.fixture()
def raw(kubeconfig):
    return Raw(kubeconfig)


def _assert_status(code: int, body: dict, expected: int, reason: str) -> None:
    assert code == expected, body
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == expected
    assert body["reason"] == reason, body
    assert body["message"]


def _pods(raw, ns):
    return [p["metadata"]["name"] for p in raw.request("GET", f"/api/v1/namespaces/{ns}/pods")[1]["items"]]


def test_anonymous_requests_are_unauthorized(raw):
    code, body = raw.request("GET", "/api/v1/namespaces", auth=False)
    _assert_status(code, body, 401, "Unauthorized")


def test_invalid_name(raw, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(pod))
    _assert_status(code, body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert _pods(raw, namespace) == []


def test_missing_required_fields(raw, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nocontainers"}, "spec": {}}
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(pod))
    _assert_status(code, body, 422, "Invalid")
    assert any(c["field"] == "spec.containers" for c in body["details"]["causes"])
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    code, body = raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", json.dumps(dep))
    _assert_status(code, body, 422, "Invalid")
    assert raw.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")[1]["items"] == []


def test_unknown_kind_and_wrong_kind(raw, namespace):
    code, body = raw.request("POST", f"/apis/example.com/v1/namespaces/{namespace}/widgets", "{}")
    assert code == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    wrong = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"containers": []}}
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", json.dumps(wrong))
    assert 400 <= code < 500 and body["kind"] == "Status", body
    assert _pods(raw, namespace) == []


@pytest.mark.parametrize("body,ctype", [
    ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": ', "application/json"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", "application/yaml"),
    (b"\xff\xfe\x00garbage", "application/vnd.kubernetes.protobuf"),
])
def test_malformed_bodies(raw, namespace, body, ctype):
    code, status = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", body, content_type=ctype)
    _assert_status(code, status, 400, "BadRequest")
    assert _pods(raw, namespace) == []


def test_duplicate_and_out_of_range_node_ports(raw, namespace):
    def svc(name, node_port):
        return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {
            "type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80, "nodePort": node_port}]}})
    code, first = raw.request("POST", f"/api/v1/namespaces/{namespace}/services", svc("first", 30080))
    assert code == 201, first
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/services", svc("second", 30080))
    _assert_status(code, body, 422, "Invalid")
    assert "provided port is already allocated" in body["message"]
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/services", svc("third", 80))
    _assert_status(code, body, 422, "Invalid")
    assert "provided port is not in the valid range. The range of valid ports is 30000-32767" in body["message"]
    names = [s["metadata"]["name"] for s in raw.request("GET", f"/api/v1/namespaces/{namespace}/services")[1]["items"]]
    assert names == ["first"]


def test_duplicate_name_and_missing_object(raw, namespace):
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
    assert raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)[0] == 201
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    _assert_status(code, body, 409, "AlreadyExists")
    code, body = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/nope")
    _assert_status(code, body, 404, "NotFound")
    assert body["message"] == 'configmaps "nope" not found'


def test_kubectl_apply_of_a_list(kubectl, namespace, tmp_path):
    """kubectl validates a kind: List against /openapi/v2 itself, then applies each item."""
    manifest = tmp_path / "list.yaml"
    manifest.write_text("apiVersion: v1\nkind: List\nitems:\n"
                        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: one}, data: {a: b}}\n"
                        "- {apiVersion: v1, kind: Service, metadata: {name: two}, spec: {ports: [{port: 80}]}}\n")
    out = kubectl("apply", "-f", str(manifest))
    assert "configmap/one created" in out and "service/two created" in out
    assert "configmap/one unchanged" in kubectl("apply", "-f", str(manifest))


def test_alias_bomb_is_refused_at_once(raw, namespace):
    """A billion-laughs YAML document: 400 without expanding it (it took 61 s before)."""
    bomb = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n"
            '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
            + "".join(f"  {n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                      for p, n in zip("abcdefgh", "bcdefghi")))
    started = time.monotonic()
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", bomb, content_type="application/yaml")
    elapsed = time.monotonic() - started
    _assert_status(code, body, 400, "BadRequest")
    assert "excessive aliasing" in body["message"]
    assert elapsed < 2, elapsed  # generous: ~10 ms measured
    code, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/lol")
    assert code == 404


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease"])
def test_protected_namespaces_may_not_be_deleted(raw, name):
    code, body = raw.request("DELETE", f"/api/v1/namespaces/{name}")
    _assert_status(code, body, 403, "Forbidden")
    assert body["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
    code, ns = raw.request("GET", f"/api/v1/namespaces/{name}")
    assert code == 200 and not ns["metadata"].get("deletionTimestamp")


def test_type_errors_are_400_and_nothing_is_created(raw, namespace):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": "2", "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    code, body = raw.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", json.dumps(dep))
    _assert_status(code, body, 400, "BadRequest")
    assert "DeploymentSpec.spec.replicas of type int32" in body["message"]
    assert raw.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")[1]["items"] == []
