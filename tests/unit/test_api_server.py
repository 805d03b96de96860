"""The real ApiServer on a loopback socket, driven by the real clients: kubectl 1.37
(client certificate), the `kubernetes` Python client, and raw HTTPS requests."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import types
from typing import Any, Iterator

import pytest

for _name, _attrs in {"schema": {"unknown_fields": lambda res, obj: []},
                      "protobuf": {"decode": lambda body: json.loads(body[4:])}}.items():
    if importlib.util.find_spec(f"k8snet.lab.api.{_name}") is None:  # written in parallel; stand in until it lands
        _mod = types.ModuleType(f"k8snet.lab.api.{_name}")
        _mod.__dict__.update(_attrs)
        sys.modules[_mod.__name__] = _mod

from k8snet.lab.api.server import parse_rest_path, wants_table  # noqa: E402
from tests.unit._apiserver import Lab  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = Lab(tmp_path_factory.mktemp("apiserver"))
    yield running
    running.close()


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


def test_rest_paths() -> None:
    assert parse_rest_path("", "v1", ["namespaces", "a", "pods", "web", "log"]).subresource == "log"
    t = parse_rest_path("", "v1", ["namespaces", "a", "finalize"])
    assert (t.res.plural, t.name, t.subresource) == ("namespaces", "a", "finalize")
    assert parse_rest_path("", "v1", ["pods"]).namespace is None
    assert parse_rest_path("apps", "v1", ["namespaces", "x", "deployments"]).res.kind == "Deployment"
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not wants_table("application/json")


def test_auth_public_endpoints_and_errors(lab: Lab) -> None:
    status, _, body = lab.request("GET", "/version", cert=False)
    version = json.loads(body)
    assert status == 200 and (version["major"], version["minor"], version["gitVersion"]) == ("1", "37", "v1.37.1")
    assert (version["emulationMinor"], version["minCompatibilityMinor"]) == ("37", "36")
    assert {"gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"} <= version.keys()
    assert lab.request("GET", "/readyz", cert=False)[2] == b"ok"
    status, _, body = lab.request("GET", "/api/v1/namespaces", cert=False)
    assert status == 401 and json.loads(body)["reason"] == "Unauthorized"
    sa = lab.call(lab.core.create("serviceaccounts", "default", {"metadata": {"name": "default"}}))
    token = lab.core.tokens.issue("default", "default", sa["metadata"]["uid"], audiences=[lab.core.tokens.issuer],
                                  ttl_seconds=600)
    # authenticated, but a service account with no binding may not list namespaces (RBAC)
    status, _, body = lab.request("GET", "/api/v1/namespaces", cert=False, headers={"Authorization": f"Bearer {token}"})
    assert status == 403 and json.loads(body)["message"] == (
        'namespaces is forbidden: User "system:serviceaccount:default:default" cannot list resource "namespaces" '
        'in API group "" at the cluster scope')
    assert lab.request("GET", "/api/v1/namespaces", cert=False, headers={"Authorization": "Bearer x.y.z"})[0] == 401
    status, _, body = lab.request("POST", "/api/v1/namespaces/default/configmaps", b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["reason"] == "BadRequest"
    status, _, body = lab.request("POST", "/api/v1/namespaces/default/configmaps",
                                  json.dumps({"apiVersion": "apps/v1", "kind": "ConfigMap"}).encode(),
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and "does not match the expected API version" in json.loads(body)["message"]
    status, _, body = lab.request("GET", "/api/v1/namespaces/default/widgets")
    assert status == 404 and json.loads(body)["kind"] == "Status"
    assert lab.request("GET", "/openapi/v1")[0] == 404
    status, _, body = lab.request("POST", "/api/v1/namespaces/default/configmaps", b"metadata: {name: y}\n",
                                  headers={"Content-Type": "application/yaml"})
    assert status == 201 and json.loads(body)["metadata"]["name"] == "y"


def test_discovery_and_openapi(lab: Lab) -> None:
    _, headers, body = lab.request("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    assert {i["metadata"]["name"] for i in json.loads(body)["items"]} >= {"apps", "discovery.k8s.io"}
    legacy = json.loads(lab.request("GET", "/apis/apps/v1")[2])
    scale = next(r for r in legacy["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["kind"]) == ("autoscaling", "Scale")
    index = json.loads(lab.request("GET", "/openapi/v3")[2])
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    doc = json.loads(lab.request("GET", url)[2])
    op = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"]["kind"] == "Pod"


def test_watch_stream_and_410(lab: Lab) -> None:
    rv = json.loads(lab.request("GET", "/api/v1/namespaces/default/configmaps")[2])["metadata"]["resourceVersion"]
    lab.call(lab.core.create("configmaps", "default", {"metadata": {"name": "w1"}}))
    _, headers, body = lab.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
                                          "&timeoutSeconds=1")
    events = [json.loads(line) for line in body.decode().splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]
    lab.core.store._compacted = int(rv)
    _, _, body = lab.request("GET", f"/api/v1/configmaps?watch=true&resourceVersion={int(rv) - 1}")
    lab.core.store._compacted = 0
    event = json.loads(body)
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


def _watch_lines(lab: Lab, query: str) -> tuple[int, list[dict[str, Any]]]:
    status, _, body = lab.request("GET", "/api/v1/namespaces/default/configmaps?" + query)
    if status != 200:
        return status, [json.loads(body)]
    return status, [json.loads(line) for line in body.decode().splitlines()]


def test_streaming_list_over_http(lab: Lab) -> None:
    lab.call(lab.core.create("configmaps", "default", {"metadata": {"name": "sl-a", "labels": {"sl": "yes"}}}))
    lab.call(lab.core.create("configmaps", "default", {"metadata": {"name": "sl-b", "labels": {"sl": "no"}}}))
    rv = json.loads(lab.request("GET", "/api/v1/namespaces/default/configmaps")[2])["metadata"]["resourceVersion"]
    # What client-go 1.37's reflector sends (kubectl rollout status, kubectl wait, informers).
    status, events = _watch_lines(lab, "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                       "&allowWatchBookmarks=true&labelSelector=sl%3Dyes&timeoutSeconds=1")
    assert status == 200 and [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "sl-a"), ("BOOKMARK", None)]
    assert events[1]["object"]["metadata"]["resourceVersion"] == rv
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert events[1]["object"]["kind"] == "ConfigMap"
    # The same from a given version (not older than it), and the defaulted legacy form.
    for query in (f"resourceVersion={rv}&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "resourceVersion=0"):
        _, events = _watch_lines(lab, f"watch=1&{query}&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dsl-b"
                                      "&timeoutSeconds=1")
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"] and events[0]["object"]["metadata"]["name"] == "sl-b"
    # Refusals are 422 before the stream starts, as ListOptions validation reports them.
    status, [err] = _watch_lines(lab, "watch=true&sendInitialEvents=true&allowWatchBookmarks=true")
    assert status == 422 and err["reason"] == "Invalid" and err["details"]["kind"] == "ListOptions"
    assert err["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                              "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
    status, [err] = _watch_lines(lab, "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=1")
    assert status == 422 and "sendInitialEvents is forbidden for list" in err["message"]
    status, [err] = _watch_lines(lab, "watch=true&sendInitialEvents=maybe&resourceVersionMatch=NotOlderThan")
    assert status == 400 and 'parsing "maybe": invalid syntax' in err["message"]
    # A version the server has not reached: an ERROR event with the 504 Status (after the wait).
    status, [event] = _watch_lines(lab, f"watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                                        f"&allowWatchBookmarks=true&resourceVersion={int(rv) + 1000}")
    assert status == 200 and event["type"] == "ERROR" and event["object"]["code"] == 504
    assert event["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_endpoints_answers_carry_the_deprecation_warning(lab: Lab) -> None:
    warning = '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
    for path in ("/api/v1/namespaces/default/endpoints", "/api/v1/endpoints?watch=true&timeoutSeconds=1",
                 "/api/v1/namespaces/default/endpoints/missing"):
        status, headers, _ = lab.request("GET", path)
        assert status in (200, 404) and headers.get("Warning") == warning, (path, headers)
    _, headers, _ = lab.request("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
    assert "Warning" not in headers


@needs_kubectl
def test_kubectl_waits_through_a_streaming_list(lab: Lab) -> None:
    """kubectl 1.37 lists through a watch (WatchListClient): without the end-of-initial-
    events bookmark `kubectl wait` hangs until its timeout."""
    lab.call(lab.core.create("configmaps", "default", {"metadata": {"name": "kw"}, "data": {"state": "ready"}}))
    done = lab.kubectl("wait", "configmap/kw", "--for=jsonpath={.data.state}=ready", "--timeout=20s", "-v=6",
                       timeout=30)
    assert "configmap/kw condition met" in done.stdout
    assert "sendInitialEvents=true" in done.stderr  # it really took the streaming path
    assert "hasn't received required bookmark" not in done.stderr


@needs_kubectl
def test_kubectl_end_to_end(lab: Lab) -> None:
    assert "namespaces" in lab.kubectl("api-resources").stdout
    manifest = lab.tmp / "ns.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: kfoo}\n")
    assert "namespace/kfoo created" in lab.kubectl("apply", "-f", str(manifest)).stdout
    assert "unchanged" in lab.kubectl("apply", "-f", str(manifest)).stdout
    out = lab.kubectl("get", "ns").stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"] and "kfoo" in out
    watcher = subprocess.Popen(["kubectl", "--kubeconfig", str(lab.kubeconfig), "--cache-dir", str(lab.tmp / "cache"),
                                "get", "ns", "-w"], stdout=subprocess.PIPE, text=True)
    killer = threading.Timer(20, watcher.kill)  # never hang the suite on a missing line
    killer.start()
    try:
        listed = [watcher.stdout.readline() for _ in range(3)]  # header, default, kfoo: the list is done
        lab.kubectl("delete", "ns", "kfoo", "--wait=false")
        event = watcher.stdout.readline()
    finally:
        killer.cancel()
        watcher.kill()
        watcher.wait()
    assert "kfoo" in listed[2] and "Active" in listed[2]
    assert "kfoo" in event and "Terminating" in event
    err = lab.kubectl("get", "pod", "nope", check=False)
    assert err.returncode == 1 and 'pods "nope" not found' in err.stderr


def test_python_client(lab: Lab) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(config_file=str(lab.kubeconfig))
    v1 = kubernetes.client.CoreV1Api(api_client)
    assert kubernetes.client.VersionApi(api_client).get_code().minor == "37"
    cm = v1.create_namespaced_config_map("default", {"metadata": {"name": "py"}, "data": {"a": "1"}})
    assert cm.metadata.resource_version
    patched = v1.patch_namespaced_config_map("py", "default", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    assert any(i.metadata.name == "py" for i in v1.list_namespaced_config_map("default").items)
    w = kubernetes.watch.Watch()
    names = [e["object"].metadata.name for e in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=1)]
    assert "py" in names
    with pytest.raises(kubernetes.client.exceptions.ApiException) as err:
        v1.read_namespaced_config_map("missing", "default")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"
    v1.delete_namespaced_config_map("py", "default")
    api_client.close()
