"""JSON patch, merge patch, strategic merge patch and simplified server-side apply."""

from __future__ import annotations

import pytest

from k8snet.lab.api.patch import apply_patch, server_side_apply
from k8snet.lab.api.resources import by_key
from k8snet.lab.errors import ApiError

PODS, SVCS, DEPLOY, NS = by_key("pods"), by_key("services"), by_key("apps/deployments"), by_key("namespaces")


def live_pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "x"},
                         "finalizers": ["a"]},
            "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets"}]},
                {"name": "side", "image": "busybox", "args": ["sleep", "1"]}],
                "volumes": [{"name": "kube-api-access-x", "projected": {"sources": []}}],
                "tolerations": [{"key": "t", "operator": "Exists"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"},
                                                          {"type": "PodScheduled", "status": "True"}]}}


# -- strategic merge -------------------------------------------------------------

def test_kubectl_apply_image_change():
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
             "spec": {"$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
                      "containers": [{"image": "nginx:1.28", "name": "nginx"}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    c = out["spec"]["containers"]
    assert [x["name"] for x in c] == ["nginx", "side"]
    assert c[0]["image"] == "nginx:1.28" and c[0]["env"][0]["value"] == "1"  # merged, not replaced
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{}\n"
    assert "$setElementOrder/containers" not in out["spec"]


def test_delete_directive_nulls_and_nested_merge_keys():
    patch = {"metadata": {"labels": {"tier": None}},
             "spec": {"containers": [
                 {"$patch": "delete", "name": "side"},
                 {"name": "nginx", "env": [{"$patch": "delete", "name": "A"}, {"name": "C", "value": "3"}],
                  "ports": [{"containerPort": 443}]}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    assert out["metadata"]["labels"] == {"app": "web"}
    (c,) = out["spec"]["containers"]
    assert c["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert [p["containerPort"] for p in c["ports"]] == [80, 443]


def test_atomic_lists_replace_and_set_element_order():
    patch = {"spec": {"tolerations": [{"key": "u", "operator": "Exists"}],
                      "$setElementOrder/containers": [{"name": "side"}, {"name": "nginx"}],
                      "containers": [{"name": "side", "args": ["sleep", "2"]}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    assert out["spec"]["tolerations"] == [{"key": "u", "operator": "Exists"}]
    assert [x["name"] for x in out["spec"]["containers"]] == ["side", "nginx"]
    assert out["spec"]["containers"][0]["args"] == ["sleep", "2"]


def test_server_only_elements_survive_order():
    patch = {"spec": {"containers": [{"name": "nginx", "$setElementOrder/volumeMounts": [{"mountPath": "/data"}],
                                      "volumeMounts": [{"name": "d", "mountPath": "/data"}]}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    mounts = out["spec"]["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/data", "/var/run/secrets"]


def test_replace_directive_and_primitive_lists():
    patch = {"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
             "spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    assert out["metadata"]["finalizers"] == ["b"]
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]
    out = apply_patch(live_pod(), {"metadata": {"labels": {"$patch": "replace", "new": "1"}}}, "strategic", PODS)
    assert out["metadata"]["labels"] == {"new": "1"}


def test_status_conditions_merge_by_type():
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.244.1.5"}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]


def test_retain_keys_on_deployment_strategy():
    live = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    out = apply_patch(live, patch, "strategic", DEPLOY)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert apply_patch(live, {"spec": {"replicas": 0}}, "strategic", DEPLOY)["spec"]["replicas"] == 0


def test_service_ports_merge_by_port():
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "nodePort": 30001}]}}
    out = apply_patch(live, {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}, "strategic", SVCS)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "nodePort": 30001}, {"port": 443}]


def test_bad_strategic_patches():
    with pytest.raises(ApiError) as e:
        apply_patch(live_pod(), {"spec": {"containers": [{"image": "x"}]}}, "strategic", PODS)
    assert e.value.code == 400 and "does not contain declared merge key: name" in e.value.message
    with pytest.raises(ApiError):
        apply_patch(live_pod(), {"metadata": {"$patch": "bogus"}}, "strategic", PODS)


# -- merge patch ------------------------------------------------------------------

def test_merge_patch_replaces_lists():
    out = apply_patch(live_pod(), {"metadata": {"labels": {"tier": None, "n": "1"}},
                                   "spec": {"tolerations": []}}, "merge", PODS)
    assert out["metadata"]["labels"] == {"app": "web", "n": "1"} and out["spec"]["tolerations"] == []
    scale = apply_patch({"spec": {"replicas": 1}}, {"spec": {"replicas": 3}}, "merge", DEPLOY)
    assert scale == {"spec": {"replicas": 3}}


# -- json patch -------------------------------------------------------------------

def test_json_patch_ops():
    ops = [{"op": "add", "path": "/metadata/labels/new", "value": "1"},
           {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.28"},
           {"op": "remove", "path": "/spec/containers/1"},
           {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
           {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/moved"},
           {"op": "add", "path": "/metadata/finalizers/-", "value": "z"},
           {"op": "test", "path": "/metadata/labels/moved", "value": "x"},
           {"op": "add", "path": "/metadata/annotations", "value": {"a~/b": "c"}},
           {"op": "replace", "path": "/metadata/annotations/a~0~1b", "value": "d"}]
    out = apply_patch(live_pod(), ops, "json", PODS)
    assert out["metadata"]["labels"] == {"app": "web", "new": "1", "copy": "web", "moved": "x"}
    assert out["metadata"]["finalizers"] == ["a", "z"] and out["metadata"]["annotations"] == {"a~/b": "d"}
    assert [c["name"] for c in out["spec"]["containers"]] == ["nginx"]


@pytest.mark.parametrize("ops,fragment", [
    ([{"op": "remove", "path": "/metadata/labels/nope"}], "Unable to remove nonexistent key: nope"),
    ([{"op": "replace", "path": "/metadata/nope", "value": 1}], "replace operation does not apply"),
    ([{"op": "add", "path": "/a/b", "value": 1}], 'add operation does not apply: doc is missing path: "/a/b"'),
    ([{"op": "test", "path": "/metadata/name", "value": "other"}], "testing value /metadata/name failed"),
    ([{"op": "frob", "path": "/"}], "Unexpected kind: frob"),
    ([{"path": "/metadata"}], "Unexpected kind: unknown"),
    # without a path (or with null): json-patch's own message, 422 like any failed operation
    ([{"op": "add", "value": {}}], "add operation failed to decode path: missing value"),
    ([{"op": "replace", "path": None, "value": {}}],
     "replace operation failed to decode path: operation missing path field: missing value"),
    ([{"op": "remove"}], "remove operation failed to decode path: missing value"),
    ([{"op": "move", "path": "/x"}], "move operation failed to decode from: operation, missing from field: missing value"),
    ([{"op": "copy", "from": "/metadata/name"}], "copy operation failed to decode path: missing value"),
])
def test_json_patch_errors(ops, fragment):
    with pytest.raises(ApiError) as e:
        apply_patch(live_pod(), ops, "json", PODS)
    assert e.value.code == 422 and fragment in e.value.details["causes"][0]["message"]


def test_json_patch_must_be_list():
    with pytest.raises(ApiError) as e:
        apply_patch(live_pod(), {"op": "add"}, "json", PODS)
    assert e.value.code == 400


# -- server-side apply ------------------------------------------------------------

def test_server_side_apply_creates_and_merges():
    applied = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "my-nginx", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 80}], "selector": {"app": "web"}}}
    created = server_side_apply(None, applied, SVCS, "kubectl", False)
    assert created["spec"] == applied["spec"]
    (entry,) = created["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply" and entry["fieldsType"] == "FieldsV1"
    live = created | {"spec": created["spec"] | {"clusterIP": "10.96.5.5"}}
    applied["spec"]["ports"][0]["targetPort"] = 8080
    out = server_side_apply(live, applied, SVCS, "kubectl", False)
    assert out["spec"]["clusterIP"] == "10.96.5.5" and out["spec"]["ports"][0]["targetPort"] == 8080
    assert len(out["metadata"]["managedFields"]) == 1


def test_server_side_apply_errors():
    with pytest.raises(ApiError) as e:
        server_side_apply(None, {"apiVersion": "v1", "kind": "Service"}, SVCS, "", False)
    assert "fieldManager: Required value" in e.value.message
    with pytest.raises(ApiError) as e:
        server_side_apply(None, {"apiVersion": "v1", "kind": "Pod"}, SVCS, "m", False)
    meta_only = server_side_apply(None, {"metadata": {"name": "x"}}, SVCS, "kubectl-last-applied", False)
    assert meta_only["metadata"]["name"] == "x"
    assert e.value.code == 400


def test_real_kubectl_three_way_patch():
    """The body kubectl 1.32 sent (captured) when p1.yaml (nginx env A,B + side; label
    tier) was re-applied as p2.yaml (nginx:1.28 with env B only, no side, no tier)."""
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
                          "labels": {"tier": None}},
             "spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                      "containers": [{"$setElementOrder/env": [{"name": "B"}],
                                      "env": [{"$patch": "delete", "name": "A"}],
                                      "image": "nginx:1.28", "name": "nginx"},
                                     {"$patch": "delete", "name": "side"}]}}
    out = apply_patch(live_pod(), patch, "strategic", PODS)
    assert out["metadata"]["labels"] == {"app": "web"}
    (c,) = out["spec"]["containers"]
    assert c["image"] == "nginx:1.28" and c["env"] == [{"name": "B", "value": "2"}]
    assert c["volumeMounts"] == live_pod()["spec"]["containers"][0]["volumeMounts"]  # server-added, kept
    assert "$setElementOrder/env" not in c
