"""Unknown-field detection and the per-kind schema from the kubernetes client's models."""

from __future__ import annotations

from k8snet.lab.api.resources import RESOURCES, by_key
from k8snet.lab.api.schema import kind_schema, strict_error_message, unknown_fields

PODS, SVCS, DEPLOY = by_key("pods"), by_key("services"), by_key("apps/deployments")


def test_known_pod_has_no_unknown_fields():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "labels": {"any-key": "v"}, "creationTimestamp": None,
                        "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
           "spec": {"containers": [{"name": "n", "image": "i", "ports": [{"containerPort": 80}],
                                    "resources": {"limits": {"cpu": "1"}},
                                    "readinessProbe": {"httpGet": {"port": "http"}}}],
                    "volumes": [{"name": "v", "configMap": {"name": "c"}}]},
           "status": {"phase": "Running"}}
    assert unknown_fields(PODS, pod) == []


def test_unknown_fields_are_reported_with_paths():
    pod = {"metadata": {"name": "web", "nme": "x"},
           "spec": {"foo": 1, "containers": [{"name": "n", "imagee": "i"}, {"name": "m", "env": [{"nam": "X"}]}]}}
    assert unknown_fields(PODS, pod) == ["metadata.nme", "spec.foo", "spec.containers[0].imagee",
                                         "spec.containers[1].env[0].nam"]
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http", "bogus": 1}]}}
    assert unknown_fields(SVCS, svc) == ["spec.ports[0].bogus"]
    deploy = {"spec": {"template": {"spec": {"containers": [{"name": "n", "x": 1}]}}}}
    assert unknown_fields(DEPLOY, deploy) == ["spec.template.spec.containers[0].x"]


def test_every_lab_kind_has_a_model():
    for res in RESOURCES:
        assert unknown_fields(res, {"apiVersion": res.api_version, "kind": res.kind, "metadata": {}}) == []
        assert kind_schema(res), res.key


def test_strict_error_message():
    assert strict_error_message(PODS, ["spec.foo"]) == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"')


def test_kind_schema_components():
    schemas = kind_schema(PODS)
    assert schemas["V1Pod"]["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]
    containers = schemas["V1PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert "containers" in schemas["V1PodSpec"]["required"]
    assert schemas["V1Container"]["properties"]["image"]["type"] == "string"
