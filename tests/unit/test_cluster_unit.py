"""k8snet.cluster's pure parts: manifest parsing, cluster kind detection, Status errors."""

import json

import pytest
from kubernetes.client.exceptions import ApiException

from k8snet.cluster import cluster_kind, documents, api_error

DEPLOY_AND_SVC = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 2}
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Service
metadata: {name: web}
"""


def test_documents_from_yaml_text_path_dict_and_list(tmp_path):
    objs = documents(DEPLOY_AND_SVC)
    assert [o["kind"] for o in objs] == ["Deployment", "Service"]
    path = tmp_path / "m.yaml"
    path.write_text(DEPLOY_AND_SVC)
    assert documents(path) == objs and documents(str(path)) == objs
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert documents([pod, DEPLOY_AND_SVC]) == [pod, *objs]
    assert documents({"apiVersion": "v1", "kind": "List", "items": [pod]}) == [pod]


def test_documents_rejects_non_objects():
    with pytest.raises(ValueError, match="apiVersion and kind"):
        documents("just: data\n")


def node(name, provider="", labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"providerID": provider}}


@pytest.mark.parametrize(("nodes", "version", "kind"), [
    ([node("k8snet-control-plane", "k8snet://k8snet/k8snet-control-plane")], "v1.32.0", "k8snet-lab"),
    ([node("kind-control-plane", "kind://docker/kind/kind-control-plane")], "v1.32.0", "kind"),
    ([node("minikube", labels={"minikube.k8s.io/name": "minikube"})], "v1.32.0", "minikube"),
    ([node("k3d-dev-server-0")], "v1.31.4+k3s1", "k3d"),
    ([node("pi")], "v1.31.4+k3s1", "k3s"),
    ([node("gke-x", "gce://proj/zone/gke-x")], "v1.30.5-gke.1", "gke"),
    ([node("ip-10-0-0-1", "aws:///eu-west-1a/i-0abc")], "v1.30.5-eks-1", "eks"),
    ([node("box")], "v1.32.0", "other"),
])
def test_cluster_kind(nodes, version, kind):
    assert cluster_kind(nodes, version) == kind


def test_api_error_keeps_the_servers_status():
    err = ApiException(status=404, reason="Not Found")
    err.body = json.dumps({"kind": "Status", "code": 404, "reason": "NotFound",
                           "message": 'services "web" not found'})
    converted = api_error(err)
    assert (converted.code, converted.reason, converted.message) == (404, "NotFound", 'services "web" not found')
